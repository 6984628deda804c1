// Command nilmap records a hit in a zero-value Registry whose map was never
// made, so the runtime's map assignment panics.
package main

// Registry counts hits per route. Its zero value has a nil map: reads work,
// writes panic.
type Registry struct {
	hits map[string]int
}

// Record adds one hit for route.
//
//go:noinline
func (r *Registry) Record(route string) {
	r.hits[route]++
}

func main() {
	var routes Registry
	routes.Record("/healthz")
}
