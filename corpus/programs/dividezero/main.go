// Command dividezero averages an empty list of latencies, so an integer
// division by zero panics. The compiler checks the divisor before dividing,
// so the panic comes from that check, not from a hardware trap.
package main

import "fmt"

// meanLatency returns the average of samples in microseconds.
//
//go:noinline
func meanLatency(samples []int) int {
	total := 0
	for _, s := range samples {
		total += s
	}
	return total / len(samples)
}

//go:noinline
func report(window map[string][]int, route string) {
	fmt.Printf("%s: %dus\n", route, meanLatency(window[route]))
}

func main() {
	window := map[string][]int{"/login": {120, 80, 95}}
	report(window, "/login")
	report(window, "/logout")
}
