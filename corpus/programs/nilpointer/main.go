// Command nilpointer calls a method on a nil *Config three calls below main,
// so the fault happens inside main.(*Config).Port and the runtime turns the
// SIGSEGV into a nil pointer panic.
package main

import (
	"fmt"
	"os"
)

// Config is the service configuration; a nil *Config means it was never loaded.
type Config struct {
	Host string
	port int
}

// Port reads a field through the receiver, so a nil receiver faults here.
//
//go:noinline
func (c *Config) Port() int {
	return c.port
}

// lookupConfig returns nil for an unknown environment, the way a missing
// entry in a registry would.
//
//go:noinline
func lookupConfig(env string) *Config {
	if env == "production" {
		return &Config{Host: "0.0.0.0", port: 8443}
	}
	return nil
}

//go:noinline
func listenAddress(cfg *Config) string {
	return fmt.Sprintf("%s:%d", "127.0.0.1", cfg.Port())
}

//go:noinline
func startServer(env string) {
	addr := listenAddress(lookupConfig(env))
	fmt.Fprintln(os.Stderr, "listening on", addr)
}

func main() {
	startServer("staging")
}
