// Command oncepanic panics inside the function passed to sync.Once.Do, so
// frames of package sync sit between the panicking function and its caller.
package main

import (
	"fmt"
	"strings"
	"sync"
)

// defaultSettings is the content of a settings file that turned out empty.
const defaultSettings = ""

var (
	loadOnce sync.Once
	settings map[string]string
)

// loadSettings parses key=value lines and panics when there are none.
//
//go:noinline
func loadSettings() {
	settings = make(map[string]string)
	for _, line := range strings.Split(defaultSettings, "\n") {
		if key, value, ok := strings.Cut(line, "="); ok {
			settings[key] = value
		}
	}
	if len(settings) == 0 {
		panic("settings: no key=value lines in the settings file")
	}
}

//go:noinline
func setting(key string) string {
	loadOnce.Do(loadSettings)
	return settings[key]
}

func main() {
	fmt.Println(setting("listen"))
}
