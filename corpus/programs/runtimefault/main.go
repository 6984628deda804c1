// Command runtimefault overwrites the buffer pointer in a channel's runtime
// header through unsafe, then sends on the channel. The runtime's chansend
// faults while it holds the channel's lock, a state in which a fault cannot
// become a panic, so the runtime stops with "unexpected signal during
// runtime execution".
//
// The runtime's channel header (hchan in runtime/chan.go) starts with the
// queued count, the buffer capacity and the buffer pointer, in that order,
// in every release from Go 1.19 to Go 1.27.
package main

import (
	"fmt"
	"unsafe"
)

// hchanPrefix mirrors the first three words of the runtime's hchan.
type hchanPrefix struct {
	qcount   uint
	dataqsiz uint
	buf      unsafe.Pointer
}

// corruptBuffer makes the channel's buffer pointer point into the first
// page, which is never mapped. It stores the address as a uintptr, so the
// compiler emits no write barrier. For an int element the runtime
// allocates the header without pointer metadata, so the garbage collector
// never reads the bad pointer either.
//
//go:noinline
func corruptBuffer(ch chan int) {
	header := *(**hchanPrefix)(unsafe.Pointer(&ch))
	*(*uintptr)(unsafe.Pointer(&header.buf)) = 0x40
}

//go:noinline
func enqueue(ch chan int, v int) {
	ch <- v
}

func main() {
	queue := make(chan int, 8)
	enqueue(queue, 1)
	corruptBuffer(queue)
	enqueue(queue, 2)
	fmt.Println(len(queue))
}
