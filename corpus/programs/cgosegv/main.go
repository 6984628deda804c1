// Command cgosegv calls a C function that follows a corrupt pointer inside a
// C struct. The fault happens in C code, where the runtime cannot turn it
// into a panic. Go 1.21 and later print "SIGSEGV: segmentation violation"
// and "signal arrived during cgo execution"; Go 1.19 stops with "fatal
// error: unexpected signal during runtime execution". Both then print the Go
// stack that called into C.
package main

/*
#include <stdint.h>

struct header {
	uint32_t length;
	uint32_t flags;
};

struct packet {
	uint64_t sequence;
	struct header *header;
};

// corrupt_header is volatile so the compiler cannot see that the pointer is
// bad and must emit the load. It points into the first page, which is never
// mapped.
static struct header *volatile corrupt_header = (struct header *)(uintptr_t)0x28;

// packet_length reads the length through the packet's header pointer.
__attribute__((noinline)) static uint32_t packet_length(const struct packet *p) {
	return p->header->length;
}

static uint32_t checksum_packet(uint64_t sequence) {
	struct packet p;
	p.sequence = sequence;
	p.header = corrupt_header;
	return packet_length(&p) + (uint32_t)sequence;
}
*/
import "C"

import "fmt"

//go:noinline
func verify(sequence uint64) uint32 {
	return uint32(C.checksum_packet(C.uint64_t(sequence)))
}

func main() {
	fmt.Println(verify(7))
}
