// Command mapwrites lets two goroutines write one map without a lock until
// the runtime notices the overlap and stops with "concurrent map writes".
//
// The runtime only notices writes that overlap in time, so both writers loop
// forever. When both notice at once, runtimes before Go 1.24 print the fatal
// line and the second writer's goroutine twice.
package main

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
	go fill(0)
	go fill(1)
	select {}
}
