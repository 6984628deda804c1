// Command mapwrites lets two goroutines write one map without a lock until
// the runtime notices the overlap and stops with "concurrent map writes".
//
// The runtime only notices writes that overlap in time, so both writers loop
// forever. When both notice at once, runtimes before Go 1.24 print the fatal
// line and the second writer's goroutine twice.
package main

import "runtime"

// cache is shared by both writers on purpose, with no mutex.
var cache = make(map[int]int)

// fill writes forever within 1024 keys, so the map stops growing after the
// first pass and every later write is a plain assignment.
//
//go:noinline
func fill(start int) {
	for i := start; ; i += 2 {
		cache[i&1023] = i
	}
}

func main() {
	// The scheduler never preempts a goroutine inside the runtime's map
	// code, so on a single P the writes would take turns and never overlap.
	// Two Ps put the writers on two threads, which the kernel runs in
	// parallel or interrupts anywhere.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	go fill(0)
	go fill(1)
	select {}
}
