package main

import (
	"os"
	"runtime"
)

// tuneRuntime sets the Go runtime up for a daemon that sleeps almost all
// the time on a small machine (measured in docs/bench.md, "Wakeups"):
//
//   - GOMAXPROCS 1: imon's work comes in short bursts on the probe
//     engine's 250 ms grid; with two or more Ps every goroutine hand-off
//     wakes a second thread to spin for work (the agent at interval 1
//     context-switched 60 times a second with 2 Ps, 48 with 1; updown
//     alone 30 against 15).
//
// An explicit GOMAXPROCS environment variable wins.
func tuneRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
