package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestTuneRuntime: GOMAXPROCS 1, the memory limit and GOGC 25 unless the
// environment sets them.
func TestTuneRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})
	for _, v := range []string{"GOMAXPROCS", "GOMEMLIMIT", "GOGC"} {
		t.Setenv(v, "")
	}
	tuneRuntime()
	if p := runtime.GOMAXPROCS(0); p != 1 {
		t.Errorf("GOMAXPROCS %d, want 1", p)
	}
	if l := debug.SetMemoryLimit(-1); l != memLimit {
		t.Errorf("memory limit %d, want %d", l, memLimit)
	}
	if g := debug.SetGCPercent(77); g != gcPercent {
		t.Errorf("GOGC %d, want %d", g, gcPercent)
	}
	// An explicit GOGC wins (the runtime read it at start).
	t.Setenv("GOGC", "50")
	tuneRuntime()
	if g := debug.SetGCPercent(100); g != 77 {
		t.Errorf("GOGC %d after tuneRuntime with GOGC set, want it untouched (77)", g)
	}
}
