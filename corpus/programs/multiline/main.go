// Command multiline panics with a message of several lines. Go 1.23 and
// later indent every line after the first with a tab, so the continuation
// lines cannot be mistaken for the start of a goroutine block; Go 1.22 and
// earlier print them as they are.
package main

import (
	"fmt"
	"strings"
)

// listenerConfig is one listener of a service's configuration.
type listenerConfig struct {
	Name string
	Port int
	TLS  bool
	Cert string
}

// problems lists what is wrong with each listener, one line per problem.
//
//go:noinline
func problems(listeners []listenerConfig) []string {
	var found []string
	for _, l := range listeners {
		if l.Port <= 0 || l.Port > 65535 {
			found = append(found, fmt.Sprintf("listener %s: port %d out of range", l.Name, l.Port))
		}
		if l.TLS && l.Cert == "" {
			found = append(found, fmt.Sprintf("listener %s: tls without a certificate", l.Name))
		}
	}
	return found
}

//go:noinline
func mustValidate(listeners []listenerConfig) {
	if found := problems(listeners); len(found) > 0 {
		panic("invalid configuration:\n" + strings.Join(found, "\n"))
	}
}

func main() {
	mustValidate([]listenerConfig{
		{Name: "public", Port: 443, TLS: true},
		{Name: "admin", Port: 70000},
	})
}
