// Command nestedpanic ends a worker goroutine with runtime.Goexit, whose
// deferred calls panic twice: the first deferred call panics, and the next
// one recovers that panic and panics again with a new value. Nothing
// recovers the second panic, so the program crashes with a panic chain:
//
//	panic: close journal: 3 records unflushed [recovered]
//		panic: abort transaction: close journal: 3 records unflushed
//
// The Goexit itself prints no line of the chain.
package main

import (
	"fmt"
	"runtime"
)

// closeJournal is deferred last, so it runs first during Goexit.
//
//go:noinline
func closeJournal() {
	panic(fmt.Errorf("close journal: %d records unflushed", 3))
}

// abortTransaction is deferred first, so it runs after closeJournal
// panicked. It recovers that panic and replaces it with its own.
func abortTransaction() {
	if r := recover(); r != nil {
		panic(fmt.Sprintf("abort transaction: %v", r))
	}
}

//go:noinline
func worker() {
	defer abortTransaction()
	defer closeJournal()
	runtime.Goexit()
}

func main() {
	go worker()
	done := make(chan struct{})
	<-done
}
