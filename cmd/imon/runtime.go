package main

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// tuneRuntime sets the Go runtime up for a daemon that sleeps almost all
// the time on a small machine (measured in docs/bench.md, "Wakeups and
// memory"):
//
//   - GOMAXPROCS 1: imon's work comes in short bursts on the probe
//     engine's 200 ms grid; with two or more Ps every goroutine hand-off
//     wakes a second thread to spin for work (the agent at interval 1
//     context-switched 60 times a second with 2 Ps, 48 with 1; updown
//     alone 30 against 15).
//   - a soft memory limit of memLimit: it bounds what a burst (a long
//     journal replay to a reconnecting broker) leaves behind, without
//     making the GC run more often in normal operation.
//   - GOGC gcPercent: the live heap is under 1 MiB, and with the default
//     100 the runtime's minimum heap goal (4 MiB) kept about 3.7 MiB of
//     free heap resident. With 25 the goal is about 1 MiB: at interval 1
//     with all monitors, MQTT and Home Assistant, anonymous RSS at 3.5
//     minutes was 5.3 MiB against 7.0 MiB, for the same CPU (0.31 %
//     against 0.33 %) and context switches (18–20 a second); 10 saved
//     nothing more (docs/bench.md).
//   - 1 ms of timer slack for the runtime's sysmon thread (relaxSysmon):
//     it naps in 20 µs steps while goroutines run, about half of the
//     agent's wakeups before. Best effort: without CAP_SYS_NICE it stays
//     as it is (the systemd unit sets TimerSlackNSec instead).
//
// An explicit GOMAXPROCS, GOMEMLIMIT or GOGC environment variable wins.
func tuneRuntime() {
	_, _ = relaxSysmon()
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

const (
	memLimit  = 12 << 20
	gcPercent = 25
	// releaseFirst and releaseEvery time releaseColdPages: once the start
	// (config, journal check, discovery) is over, then now and then.
	releaseFirst = 30 * time.Second
	releaseEvery = 10 * time.Minute
)

// releasePages runs releaseColdPages after releaseFirst and then every
// releaseEvery until ctx ends.
func releasePages(ctx context.Context) {
	t := time.NewTimer(releaseFirst)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			releaseColdPages()
			t.Reset(releaseEvery)
		}
	}
}

// releaseColdPages drops the page-table entries of imon's clean read-only
// file mappings: the binary's code and read-only data (about 9 MB, nearly
// all of it resident after the start because the kernel maps 64 KiB around
// every fault) and the journal's read-only shared mmap. The pages stay in
// the page cache; what is used again comes back on a minor fault, so RSS
// settles at the working set (measured: 12.4 → see docs/bench.md). Only
// mappings without private dirty pages are touched: dropping those would
// lose data. It also collects the heap and returns its free pages
// (debug.FreeOSMemory): the heap's headroom otherwise stays resident until
// the scavenger gets to it, and the collection gives `imon status` a live
// heap figure (heap_live_bytes) soon after the start.
func releaseColdPages() {
	debug.FreeOSMemory()
	exe, _ := os.Readlink("/proc/self/exe")
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	type region struct {
		start, end uintptr
		ok         bool
	}
	var (
		cur  region
		todo []region
	)
	flush := func() {
		if cur.ok {
			todo = append(todo, cur)
		}
		cur = region{}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		fields := strings.Fields(l)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			flush()
			a, b, _ := strings.Cut(fields[0], "-")
			s, err1 := strconv.ParseUint(a, 16, 64)
			e, err2 := strconv.ParseUint(b, 16, 64)
			path := ""
			if len(fields) >= 6 {
				path = fields[5]
			}
			perm := fields[1]
			clean := perm == "r--s" || (path == exe && exe != "" && (perm == "r-xp" || perm == "r--p"))
			cur = region{start: uintptr(s), end: uintptr(e), ok: err1 == nil && err2 == nil && clean}
			continue
		}
		if v, ok := strings.CutPrefix(l, "Private_Dirty:"); ok && strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) != "0" {
			cur.ok = false
		}
	}
	flush()
	for _, r := range todo {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED)
	}
}
