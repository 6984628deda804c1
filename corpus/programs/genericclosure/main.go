// Command genericclosure pops from an empty generic stack inside a closure,
// so the panicking frame is a method of a generic type (printed with [...])
// called from a func literal (printed as main.main.func1).
package main

import "fmt"

// Stack is a last-in, first-out list of values of any type.
type Stack[T any] struct {
	items []T
}

// Push adds v on top.
func (s *Stack[T]) Push(v T) {
	s.items = append(s.items, v)
}

// Pop removes and returns the top value. It does not check for an empty
// stack, so an empty one indexes at -1.
//
//go:noinline
func (s *Stack[T]) Pop() T {
	top := s.items[len(s.items)-1]
	s.items = s.items[:len(s.items)-1]
	return top
}

// Drain pops n values from s.
//
//go:noinline
func Drain[T any](s *Stack[T], n int) []T {
	out := make([]T, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, s.Pop())
	}
	return out
}

func main() {
	pending := &Stack[string]{}
	pending.Push("alpha")
	pending.Push("beta")

	flush := func(count int) {
		fmt.Println(Drain(pending, count))
	}
	flush(3)
}
