// Command cgoabort calls C code that detects a broken invariant, writes a
// message to stderr and calls abort(3). The SIGABRT comes from C, not from
// the runtime, so the dump starts with "SIGABRT: abort", then "signal
// arrived during cgo execution" and the Go stack that called into C.
package main

/*
#include <stdio.h>
#include <stdlib.h>

struct ring {
	unsigned head;
	unsigned tail;
	unsigned capacity;
};

// ring_push aborts when the ring's indexes show more items than capacity,
// the way a C library's internal consistency check would.
static unsigned ring_push(struct ring *r) {
	if (r->head - r->tail >= r->capacity) {
		fputs("ring_push: ring overflow, head and tail are inconsistent\n", stderr);
		fflush(stderr);
		abort();
	}
	return r->head++;
}
*/
import "C"

import "fmt"

//go:noinline
func push(r *C.struct_ring) uint {
	return uint(C.ring_push(r))
}

func main() {
	ring := (*C.struct_ring)(C.calloc(1, C.sizeof_struct_ring))
	ring.capacity = 4
	ring.head = 9 // corrupted: five items ahead of tail in a ring of four
	ring.tail = 4
	fmt.Println(push(ring))
}
