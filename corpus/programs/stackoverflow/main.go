// Command stackoverflow lowers the maximum goroutine stack to 64 KiB and
// then recurses without end, so the runtime stops with "stack overflow"
// after a few thousand frames and the core stays small.
package main

import (
	"fmt"
	"runtime/debug"
)

// node is a tree whose parent link was made into a cycle by mistake.
type node struct {
	name   string
	parent *node
}

// depth follows parent links until the root; on a cycle it never gets there.
//
//go:noinline
func depth(n *node) int {
	if n.parent == nil {
		return 0
	}
	return depth(n.parent) + 1
}

func main() {
	debug.SetMaxStack(64 << 10)
	root := &node{name: "root"}
	child := &node{name: "child", parent: root}
	root.parent = child
	fmt.Println(depth(child))
}
