// Command longwait parks three goroutines, keeps them parked for more than a
// minute and then panics, so their goroutine headers carry ", 1 minutes".
//
// The runtime stamps a goroutine's wait start only while a garbage
// collection scans its stack, and prints the minutes only for a stamped
// goroutine. So main forces a collection as soon as the workers are parked,
// sleeps 70 seconds, forces another one, and panics.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

const (
	waiters = 3
	stalled = 70 * time.Second
)

var reload = make(chan struct{}) // nobody sends

// awaitReload blocks until a reload that never comes.
//
//go:noinline
func awaitReload(parked *sync.WaitGroup) {
	parked.Done()
	<-reload
}

func main() {
	var parked sync.WaitGroup
	parked.Add(waiters)
	for i := 0; i < waiters; i++ {
		go awaitReload(&parked)
	}
	parked.Wait()
	// Give the last waiter time to block after its Done call.
	time.Sleep(100 * time.Millisecond)
	runtime.GC()

	time.Sleep(stalled)
	runtime.GC()
	panic(fmt.Sprintf("no reload for %v", stalled))
}
