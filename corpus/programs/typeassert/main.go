// Command typeassert asserts that a value decoded as a string is an int, so
// the type assertion fails with an interface conversion panic.
package main

import "fmt"

// portOf reads the port from settings decoded from untyped input.
//
//go:noinline
func portOf(settings map[string]interface{}) int {
	return settings["port"].(int)
}

func main() {
	settings := map[string]interface{}{"host": "example.internal", "port": "8080"}
	fmt.Println(portOf(settings))
}
