// Command closedchan sends a result on a channel that the collector has
// already closed, so the late worker goroutine panics with "send on closed
// channel" while main is blocked.
package main

import "fmt"

// result is the value one worker computed.
type result struct {
	worker int
	value  int
}

// produce sends one result; the collector closed the channel before it
// could.
//
//go:noinline
func produce(worker int, results chan<- result) {
	results <- result{worker: worker, value: worker * worker}
}

func main() {
	results := make(chan result)
	// The collector gave up before the worker started, the way a timeout
	// would, and closed the channel to release its readers.
	close(results)

	done := make(chan struct{})
	go produce(7, results)
	<-done
	fmt.Println("unreachable")
}
