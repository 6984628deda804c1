// Command deadlock blocks main and three workers so that no goroutine can
// run again, and the scheduler stops the program with "all goroutines are
// asleep - deadlock!".
//
// The runtime only reports a deadlock when nothing could wake a goroutine,
// so the program uses no timers and no network.
package main

import "sync"

var (
	results = make(chan int) // unbuffered, and nobody receives from it
	stateMu sync.Mutex       // held by main while it waits
	flushed sync.WaitGroup   // counts one flush that never happens
)

// publish blocks on a send that no goroutine receives.
//
//go:noinline
func publish(value int) {
	results <- value
}

// snapshot blocks on the mutex main holds.
//
//go:noinline
func snapshot() {
	stateMu.Lock()
	defer stateMu.Unlock()
}

// awaitFlush blocks on a WaitGroup whose counter never reaches zero.
//
//go:noinline
func awaitFlush() {
	flushed.Wait()
}

// waitForShutdown blocks on a channel that no goroutine closes.
//
//go:noinline
func waitForShutdown(shutdown <-chan struct{}) {
	<-shutdown
}

func main() {
	stateMu.Lock()
	flushed.Add(1)
	go publish(42)
	go snapshot()
	go awaitFlush()
	waitForShutdown(make(chan struct{}))
}
