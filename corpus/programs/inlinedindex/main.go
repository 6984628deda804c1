// Command inlinedindex reads past the end of a slice inside a one-line
// method that the compiler inlines, so the traceback shows the inlined frame
// main.(*Window).At(...) above the physical frame of its caller.
package main

import "fmt"

// Window is a fixed set of recent samples.
type Window struct {
	samples []int
}

// At is small enough for the compiler to inline into every caller; the
// bounds check stays at this line in the inline tree.
func (w *Window) At(i int) int {
	return w.samples[i]
}

// sumLast adds the last n samples, counting back from an index that is off
// by one.
//
//go:noinline
func sumLast(w *Window, n int) int {
	total := 0
	for k := 0; k < n; k++ {
		total += w.At(len(w.samples) - n + k + 1)
	}
	return total
}

func main() {
	w := &Window{samples: []int{4, 8, 15}}
	fmt.Println(sumLast(w, 2))
}
