// Command deeprecursion sums the sizes of a directory tree in which a
// subdirectory links back to the root, so the recursion never ends. With
// the stack limit at 16 MiB it overflows after about 700,000 frames (on
// amd64, Go 1.19 to 1.27): more than the 10,000 a walk keeps, so a rebuilt stack shows
// its innermost and outermost frames and counts the ones between, as the
// runtime prints 100 of them and the count of those it elided.
package main

import (
	"fmt"
	"runtime/debug"
)

type dir struct {
	name  string
	size  int64
	child *dir
}

// totalSize returns the size of d and everything below it.
//
//go:noinline
func totalSize(d *dir) int64 {
	if d == nil {
		return 0
	}
	return d.size + totalSize(d.child)
}

func main() {
	debug.SetMaxStack(16 << 20)
	root := &dir{name: "/", size: 4096}
	etc := &dir{name: "/etc", size: 4096}
	root.child = etc
	// A bind mount of / under /etc, followed as a plain directory.
	etc.child = root
	fmt.Println(totalSize(root))
}
