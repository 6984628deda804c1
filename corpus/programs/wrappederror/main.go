// Command wrappederror fails to parse a setting, wraps the error with %w
// twice, and panics with the wrapped error value.
package main

import (
	"fmt"
	"strconv"
)

//go:noinline
func parsePort(text string) (int, error) {
	port, err := strconv.Atoi(text)
	if err != nil {
		return 0, fmt.Errorf("parse port setting: %w", err)
	}
	return port, nil
}

//go:noinline
func mustLoadSettings(settings map[string]string) int {
	port, err := parsePort(settings["port"])
	if err != nil {
		panic(fmt.Errorf("load settings: %w", err))
	}
	return port
}

func main() {
	mustLoadSettings(map[string]string{"port": "eighty"})
}
