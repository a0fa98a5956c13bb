package nettest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// CapSysNice is the capability number of CAP_SYS_NICE.
const CapSysNice = 23

// HasCap tells whether this process has capability c (a number such as
// CapSysNice) in its effective set; a process it starts as root inherits
// the same.
func HasCap(tb testing.TB, c uint) bool {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				tb.Fatalf("CapEff %q: %v", v, err)
			}
			return n&(1<<c) != 0
		}
	}
	tb.Fatal("no CapEff in /proc/self/status")
	return false
}

// TimerSlack reads thread tid's timer slack in nanoseconds (another
// process's or thread's needs CAP_SYS_NICE).
func TimerSlack(tb testing.TB, tid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid))
	if err != nil {
		tb.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		tb.Fatalf("timer slack of thread %d: %v", tid, err)
	}
	return n
}
