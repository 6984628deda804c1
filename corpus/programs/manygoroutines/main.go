// Command manygoroutines parks 9,999 goroutines in thirteen different wait
// states, waits until they are all parked, and panics in main, so the dump
// holds exactly 10,000 goroutines of package main.
//
// Each worker calls parked.Done just before it blocks. Main waits for all of
// them and then sleeps 300 ms more, so the last ones are inside their
// blocking call when main panics.
package main

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"
)

const workers = 9999

// group is a number of workers that block the same way.
type group struct {
	count int
	start func(parked *sync.WaitGroup)
}

var (
	unreadSends   = make(chan int)      // nobody receives
	unsentRecvs   = make(chan int)      // nobody sends
	selectA       = make(chan int)      // nobody sends
	selectB       = make(chan int)      // nobody receives
	lockedRecvs   = make(chan struct{}) // nobody sends
	heldMutex     sync.Mutex            // locked by main
	heldRWMutex   sync.RWMutex          // read-locked by main
	condMu        sync.Mutex
	neverSignaled = sync.NewCond(&condMu)
	neverDone     sync.WaitGroup // one Add, no Done
	listener      net.Listener
	pipeReadFD    int // read end of a blocking pipe that is never written
)

//go:noinline
func sendForever(parked *sync.WaitGroup) {
	parked.Done()
	unreadSends <- 1
}

//go:noinline
func receiveForever(parked *sync.WaitGroup) {
	parked.Done()
	<-unsentRecvs
}

//go:noinline
func selectForever(parked *sync.WaitGroup) {
	parked.Done()
	select {
	case <-selectA:
	case selectB <- 1:
	}
}

//go:noinline
func receiveNilChannel(parked *sync.WaitGroup) {
	var never chan int
	parked.Done()
	<-never
}

//go:noinline
func selectNoCases(parked *sync.WaitGroup) {
	parked.Done()
	select {}
}

//go:noinline
func lockMutex(parked *sync.WaitGroup) {
	parked.Done()
	heldMutex.Lock()
}

//go:noinline
func lockRWMutex(parked *sync.WaitGroup) {
	parked.Done()
	heldRWMutex.Lock()
}

//go:noinline
func waitCond(parked *sync.WaitGroup) {
	condMu.Lock()
	parked.Done()
	neverSignaled.Wait()
}

//go:noinline
func waitGroup(parked *sync.WaitGroup) {
	parked.Done()
	neverDone.Wait()
}

//go:noinline
func sleepLong(parked *sync.WaitGroup) {
	parked.Done()
	time.Sleep(time.Hour)
}

// acceptForever blocks in Accept. One acceptor waits in the network poller;
// the others queue on the listener's descriptor lock.
//
//go:noinline
func acceptForever(parked *sync.WaitGroup) {
	parked.Done()
	conn, err := listener.Accept()
	if err == nil {
		conn.Close()
	}
	select {}
}

// receiveLocked blocks while locked to its thread, so each one keeps an OS
// thread asleep.
//
//go:noinline
func receiveLocked(parked *sync.WaitGroup) {
	runtime.LockOSThread()
	parked.Done()
	<-lockedRecvs
}

// readBlocking blocks its thread in read(2) on a blocking pipe, outside the
// runtime's poller, so the goroutine stays in the syscall state.
//
//go:noinline
func readBlocking(parked *sync.WaitGroup) {
	var buf [1]byte
	parked.Done()
	syscall.Read(pipeReadFD, buf[:])
	select {}
}

var groups = []group{
	{2000, sendForever},
	{2000, receiveForever},
	{1500, selectForever},
	{100, receiveNilChannel},
	{100, selectNoCases},
	{1000, lockMutex},
	{400, lockRWMutex},
	{1000, waitCond},
	{1000, waitGroup},
	{800, sleepLong},
	{50, acceptForever},
	{45, receiveLocked},
	{4, readBlocking},
}

func setUp() {
	heldMutex.Lock()
	heldRWMutex.RLock()
	neverDone.Add(1)

	var err error
	listener, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC); err != nil {
		panic(err)
	}
	pipeReadFD = pipe[0]
}

func main() {
	total := 0
	for _, g := range groups {
		total += g.count
	}
	if total != workers {
		panic(fmt.Sprintf("groups add up to %d workers, want %d", total, workers))
	}
	setUp()

	var parked sync.WaitGroup
	parked.Add(workers)
	for _, g := range groups {
		for i := 0; i < g.count; i++ {
			go g.start(&parked)
		}
	}
	parked.Wait()
	time.Sleep(300 * time.Millisecond)
	panic(fmt.Sprintf("%d workers parked in %d wait states", workers, len(groups)))
}
