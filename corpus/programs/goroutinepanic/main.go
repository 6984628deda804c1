// Command goroutinepanic panics in a worker goroutine while main is blocked
// receiving its result, so the crashing goroutine is not goroutine 1.
package main

import "fmt"

// job is one unit of work handed to the worker.
type job struct {
	id      int
	payload []byte
}

// checksum panics on an empty payload, the invariant the worker relies on.
//
//go:noinline
func checksum(j job) byte {
	if len(j.payload) == 0 {
		panic(fmt.Sprintf("job %d: empty payload", j.id))
	}
	var sum byte
	for _, b := range j.payload {
		sum += b
	}
	return sum
}

//go:noinline
func worker(jobs <-chan job, results chan<- byte) {
	for j := range jobs {
		results <- checksum(j)
	}
}

func main() {
	jobs := make(chan job, 2)
	results := make(chan byte)
	go worker(jobs, results)
	jobs <- job{id: 1, payload: []byte("ok")}
	jobs <- job{id: 2}
	var total int
	for i := 0; i < 2; i++ {
		total += int(<-results)
	}
	fmt.Println(total)
}
