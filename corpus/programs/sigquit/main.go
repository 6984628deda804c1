// Command sigquit keeps four goroutines busy on the runtime's threads and
// blocks the main goroutine in read(2) on the main thread, then waits for an
// external SIGQUIT. The runtime prints every goroutine and, with
// GOTRACEBACK=crash, each thread's registers, then aborts.
//
// Linux queues a signal sent to a process for all of its threads, and any
// thread that does not block the signal may take it. Under load that is
// often a busy thread returning from a preemption signal, or an idle runtime
// thread, so the dump would start with a different goroutine from run to run. To make the dump repeatable, the
// program catches the external SIGQUIT with os/signal, gives SIGQUIT back to
// the runtime and sends it again with tgkill(2) to the main thread alone.
// The dump then always starts with goroutine 1 in main.waitForQuit, and its
// PC line shows sigcode=18446744073709551610 (SI_TKILL) in place of the 0 of
// a kill(2).
//
// The program creates the file named by $CORPUS_READY_FILE once the main
// thread is inside that read and the SIGQUIT handler is registered.
package main

import (
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const spinners = 4

// sink keeps the busy loops from being optimised away.
var sink [spinners]uint64

func init() {
	// Locking the OS thread in init runs main on the main thread, whose
	// thread id is the process id.
	runtime.LockOSThread()
}

// spin computes forever without calls, so only preemption takes it off its
// thread.
//
//go:noinline
func spin(slot int) {
	x := uint64(slot) + 1
	for {
		x = x*6364136223846793005 + 1442695040888963407
		sink[slot] = x
	}
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

// announceThenSpin creates the ready file once the main thread blocks in
// read(2), then becomes one more busy goroutine.
//
//go:noinline
func announceThenSpin(fd int, slot int) {
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
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			panic(err)
		}
	}
	spin(slot)
}

// relayQuit waits for the external SIGQUIT, hands SIGQUIT back to the
// runtime's default handling and sends it to the main thread only. It then
// blocks, so it is still there when the runtime prints the goroutines.
//
//go:noinline
func relayQuit(quit <-chan os.Signal) {
	<-quit
	signal.Reset(syscall.SIGQUIT)
	pid := syscall.Getpid()
	if err := syscall.Tgkill(pid, pid, syscall.SIGQUIT); err != nil {
		panic(err)
	}
	select {}
}

// waitForQuit blocks the calling thread in read(2) on a pipe that is never
// written. The pipe is blocking, so the runtime's poller is not involved.
//
//go:noinline
func waitForQuit(fd int) {
	var buf [1]byte
	for {
		syscall.Read(fd, buf[:])
	}
}

func main() {
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGQUIT)
	go relayQuit(quit)

	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC); err != nil {
		panic(err)
	}
	for slot := 0; slot < spinners-1; slot++ {
		go spin(slot)
	}
	go announceThenSpin(pipe[0], spinners-1)
	waitForQuit(pipe[0])
}
