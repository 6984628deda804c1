// Command states parks goroutines in many states, then crashes in the way
// named by its first argument.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

type celsius int

type point struct{ x, y int }

var (
	never   = make(chan int)
	mu      sync.Mutex
	ready   sync.WaitGroup
	sink    int
	readFds [2]int
)

//go:noinline
func receive() { <-never }

func selectTwo() {
	other := make(chan string)
	select {
	case <-never:
	case <-other:
	}
}

//go:noinline
func lockTwice() {
	mu.Lock()
}

func lockedReceive() {
	runtime.LockOSThread()
	ready.Done()
	<-never
}

func blockingRead() {
	var b [1]byte
	ready.Done()
	syscall.Read(readFds[0], b[:])
}

func spin() {
	ready.Done()
	for {
		sink++
	}
}

func grandchild() {
	ready.Add(1)
	go func() {
		ready.Done()
		receive()
	}()
	ready.Done()
	receive()
}

// depth3 and depth2 are small enough to be inlined into depth1.
func depth3(kind string) { crash(kind) }
func depth2(kind string) { depth3(kind) }

//go:noinline
func depth1(kind string) { depth2(kind) }

//go:noinline
func crash(kind string) {
	switch kind {
	case "panic":
		panic(fmt.Errorf("wrapped: %w", errors.New("disk full")))
	case "segv":
		var p *point
		sink = p.y
	case "index":
		s := make([]int, 3)
		i := len(kind) + 3
		sink = s[i]
	case "value":
		panic(celsius(-40))
	case "struct":
		panic(point{1, 2})
	case "throw":
		var m sync.Mutex
		m.Unlock()
	case "nested":
		defer func() {
			panic("second")
		}()
		panic("first")
	case "recovered":
		defer func() {
			recover()
			panic("after recover")
		}()
		panic("first")
	}
}

func main() {
	kind := "panic"
	if len(os.Args) > 1 {
		kind = os.Args[1]
	}
	if kind == "deadlock" {
		go receive()
		time.Sleep(10 * time.Millisecond)
		<-never
	}
	if err := syscall.Pipe(readFds[:]); err != nil {
		panic(err)
	}
	mu.Lock()
	ready.Add(3)
	go receive()
	go selectTwo()
	go lockTwice()
	go lockedReceive()
	go blockingRead()
	go grandchild()
	go time.Sleep(time.Hour)
	if kind != "nospin" {
		ready.Add(1)
		go spin()
	}
	ready.Wait()
	time.Sleep(20 * time.Millisecond)
	depth1(kind)
}
