// Command externalquit waits, as a hung service does, for the SIGQUIT an
// operator sends with kill(1) to get its goroutines. The runtime handles
// the signal itself: with GOTRACEBACK=crash, the thread that takes it
// prints every goroutine, then each other M in turn prints its registers
// after the runtime sends SIGQUIT again, from the process to itself.
//
// Linux gives a signal sent to a process to its main thread when that
// thread does not block it and has no other signal pending. The main
// goroutine is locked to the main thread and blocked in read(2) there, and
// no goroutine runs, so the main thread takes the operator's SIGQUIT and
// the dump starts with goroutine 1 in main.readCommands.
//
// The program creates the file named by $CORPUS_READY_FILE once the main
// thread is inside that read and the other goroutines are parked.
package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func init() {
	// Locking the OS thread in init runs main on the main thread, whose
	// thread id is the process id.
	runtime.LockOSThread()
}

// mainThreadReads reports whether the main thread is blocked in read(2) on
// fd, from the kernel's view in /proc. The second return value is false
// when /proc cannot tell.
func mainThreadReads(fd int) (reading, known bool) {
	pid := syscall.Getpid()
	data, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(pid) + "/syscall")
	if err != nil {
		return false, false
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return false, true
	}
	return fields[0] == strconv.Itoa(syscall.SYS_READ) && fields[1] == "0x"+strconv.FormatInt(int64(fd), 16), true
}

// awaitOrders parks on a channel no one sends on.
//
//go:noinline
func awaitOrders(orders <-chan int) {
	<-orders
}

// lockLedger parks on a mutex main holds.
//
//go:noinline
func lockLedger(ledger *sync.Mutex) {
	ledger.Lock()
}

// announce creates the ready file once the main thread blocks in read(2)
// and the other goroutines had time to park, then parks too.
//
//go:noinline
func announce(fd int, done <-chan struct{}) {
	if path := os.Getenv("CORPUS_READY_FILE"); path != "" {
		for waited := time.Duration(0); waited < 10*time.Second; waited += time.Millisecond {
			reading, known := mainThreadReads(fd)
			if reading {
				break
			}
			if !known {
				// Without /proc, a generous pause replaces the check.
				time.Sleep(500 * time.Millisecond)
				break
			}
			time.Sleep(time.Millisecond)
		}
		// The sleeps above leave the timer idle well before the signal.
		time.Sleep(20 * time.Millisecond)
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			panic(err)
		}
	}
	<-done
}

// readCommands blocks the calling thread in read(2) on a pipe that is never
// written. The pipe is blocking, so the runtime's poller is not involved.
//
//go:noinline
func readCommands(fd int) {
	var buf [1]byte
	for {
		syscall.Read(fd, buf[:])
	}
}

func main() {
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC); err != nil {
		panic(err)
	}
	var ledger sync.Mutex
	ledger.Lock()
	go awaitOrders(make(chan int))
	go lockLedger(&ledger)
	go announce(pipe[0], make(chan struct{}))
	readCommands(pipe[0])
}
