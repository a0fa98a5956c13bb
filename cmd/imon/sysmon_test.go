package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"imon/internal/nettest"
)

// startTime is field 22 of a thread's stat: when it started, in clock
// ticks since boot.
func startTime(t *testing.T, tid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // field 3 on
	n, err := strconv.ParseInt(f[22-3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRelaxSysmon: the thread relaxSysmon picks is the first started
// after the main thread, and it gets 1 ms of timer slack while the main
// thread keeps its own; where the process may not (no CAP_SYS_NICE) the
// error says what is missing.
func TestRelaxSysmon(t *testing.T) {
	tid, err := sysmonThread()
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	st := startTime(t, tid)
	for _, e := range ents {
		other, _ := strconv.Atoi(e.Name())
		if other == os.Getpid() || other == tid {
			continue
		}
		if s := startTime(t, other); s < st {
			t.Errorf("thread %d started at %d, before the picked sysmon thread %d (%d)", other, s, tid, st)
		}
	}
	if !nettest.HasCap(t, nettest.CapSysNice) {
		// Without it another thread's slack can be neither read nor set.
		_, err := relaxSysmon()
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "CAP_SYS_NICE") {
			t.Errorf("relaxSysmon without CAP_SYS_NICE: %v, want a permission error naming it", err)
		}
		t.Skip("no CAP_SYS_NICE (as in the systemd unit, which sets TimerSlackNSec instead)")
	}
	mainSlack := nettest.TimerSlack(t, os.Getpid())
	old := nettest.TimerSlack(t, tid)
	// Start from the default slack (TestTuneRuntime may have set it).
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid), []byte("50000"), 0)
	got, err := relaxSysmon()
	if got != tid {
		t.Errorf("relaxSysmon changed thread %d, sysmonThread says %d", got, tid)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid), []byte(strconv.FormatInt(old, 10)), 0)
	})
	if s := nettest.TimerSlack(t, tid); s != sysmonSlack.Nanoseconds() {
		t.Errorf("sysmon thread %d: timer slack %d ns, want %d", tid, s, sysmonSlack.Nanoseconds())
	}
	if s := nettest.TimerSlack(t, os.Getpid()); s != mainSlack {
		t.Errorf("main thread: timer slack %d ns, was %d: only sysmon's changes", s, mainSlack)
	}
}
