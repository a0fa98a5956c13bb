package main

import (
	"bytes"
	"strings"
	"testing"
)

// verbose is `go test -v -bench` output as deploy/bench.sh produces it: a
// skip with its reason, a failure, sub-benchmarks, a result printed after
// the benchmark wrote to stdout, and a second run with more iterations.
const verbose = `goos: linux
goarch: amd64
pkg: imon/journal
cpu: Test CPU
BenchmarkAppendConcurrent
BenchmarkAppendConcurrent/appenders=64
BenchmarkAppendConcurrent/appenders=64-2         	       1	123456 ns/op	    120000 events/s	        61.50 events/commit
BenchmarkAppendConcurrent/appenders=256
BenchmarkAppendConcurrent/appenders=256-2        	       1	    98000 events/s
BenchmarkReplay
BenchmarkReplay-2   	       1	         0.8123 s/replay	       262.1 disk-B/event	       240.0 live-B/event	       201.0 record-B
PASS
ok  	imon/journal	20.1s
goos: linux
goarch: amd64
pkg: imon/e2e
cpu: Test CPU
BenchmarkAgentStart
    bench_test.go:250: needs root (network namespaces)
--- SKIP: BenchmarkAgentStart
BenchmarkUpdownDetection
some line the benchmark printed
BenchmarkUpdownDetection-2   	       1	      1378 ms-median	  -118.8 since-after-cut-ms-max	5.000 cuts
PASS
ok  	imon/e2e	30.0s
goos: linux
goarch: amd64
pkg: imon/agent/monitor/ddns
cpu: Test CPU
BenchmarkTestbedConfirm
    testbed_test.go:275: median 62ms above the 50 ms target
--- FAIL: BenchmarkTestbedConfirm
BenchmarkConfirmOneBlackholed
BenchmarkConfirmOneBlackholed-2 	1	500.0 ms-timeout	12.00 ms-median-confirm	40.00 ms-max-confirm
FAIL
exit status 1
FAIL	imon/agent/monitor/ddns	3.0s
goos: linux
goarch: amd64
pkg: imon/agent/outbox
cpu: Test CPU
BenchmarkBacklogDrain
BenchmarkBacklogDrain/subscriber
BenchmarkBacklogDrain/subscriber-2         	       1	     31000 msg/s
BenchmarkAppendToReceive
BenchmarkAppendToReceive-2   	       1	         9.000 ms-median
PASS
ok  	imon/agent/outbox	1.0s
goos: linux
goarch: amd64
pkg: imon/agent/outbox
cpu: Test CPU
BenchmarkAppendToReceive
BenchmarkAppendToReceive-2   	     200	         2.500 ms-median
PASS
ok  	imon/agent/outbox	2.0s
`

func cellOf(t *testing.T, res *results, bench, unit string) cell {
	t.Helper()
	cs := res.cells()
	for i, r := range rows {
		if r.bench == bench && r.unit == unit {
			return cs[i]
		}
	}
	t.Fatalf("no row for %s [%s]", bench, unit)
	return cell{}
}

func TestParseVerbose(t *testing.T) {
	res, err := parse(strings.NewReader(verbose))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bench, unit, measured, verdict string
	}{
		{"BenchmarkAppendConcurrent/appenders=64", "events/s", "120,000 events/s", "✓"},
		{"BenchmarkAppendConcurrent/appenders=256", "events/s", "98,000 events/s", ""},
		{"BenchmarkReplay", "s/replay", "0.81 s", "✓"},
		{"BenchmarkReplay", "disk-B/event", "262 B", ""},
		{"BenchmarkAgentStart", "ms-status-1M", "not measured (skipped: needs root (network namespaces))", ""},
		{"BenchmarkUpdownDetection", "ms-median", "1378 ms", "✓"},
		{"BenchmarkUpdownDetection", "since-after-cut-ms-max", "-119 ms", "✓"},
		{"BenchmarkTestbedConfirm", "ms-median-confirm", "not measured (FAIL: median 62ms above the 50 ms target)", "✗"},
		{"BenchmarkConfirmOneBlackholed", "ms-max-confirm", "40 ms", "✓"},
		{"BenchmarkAppendToReceive", "ms-median", "2.50 ms", "✓"}, // the 200x run wins
		{"BenchmarkBacklogDrain", "msg/s", "31,000 msg/s", "✓"},   // found as the sub-benchmark
		{"BenchmarkBacklogDrainAlone", "msg/s", "not measured", ""},
	} {
		c := cellOf(t, res, tc.bench, tc.unit)
		if c.measured != tc.measured || c.verdict != tc.verdict {
			t.Errorf("%s [%s] = %q %q, want %q %q", tc.bench, tc.unit, c.measured, c.verdict, tc.measured, tc.verdict)
		}
	}
	if c := cellOf(t, res, "BenchmarkAppendConcurrent/appenders=64", "events/s"); !strings.Contains(c.figure, "(61.5 events/commit)") {
		t.Errorf("figure %q: placeholder not filled", c.figure)
	}
	if c := cellOf(t, res, "BenchmarkConfirmOneBlackholed", "ms-max-confirm"); !strings.Contains(c.target, "(500 ms)") {
		t.Errorf("target %q: placeholder not filled", c.target)
	}
	if res.cpu != "Test CPU" {
		t.Errorf("cpu %q", res.cpu)
	}
}

// Without -v, go test prints a failure before the package's "pkg:" line
// and nothing for a skip; a panic fails the package.
func TestParseQuiet(t *testing.T) {
	in := `--- FAIL: BenchmarkBacklogDrain
    bench_test.go:30: mosquitto refused
goos: linux
pkg: imon/agent/outbox
BenchmarkAppendToReceive-2   	       1	         3.000 ms-median
FAIL
FAIL	imon/agent/outbox	1.0s
goos: linux
pkg: imon/agent/monitor/failover
BenchmarkFailoverUpstreamCut-2   	1	900.0 switch-ms-median
panic: test timed out after 1m0s
FAIL	imon/agent/monitor/failover	60.0s
`
	res, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ bench, unit, measured string }{
		{"BenchmarkBacklogDrain", "msg/s", "not measured (FAIL: mosquitto refused)"},
		{"BenchmarkAppendToReceive", "ms-median", "3.00 ms"},
		{"BenchmarkFailoverUpstreamCut", "switch-ms-median", "900 ms"},
		{"BenchmarkFailoverCarrierLoss", "switch-ms-median", "not measured (package failed: panic: test timed out after 1m0s)"},
	} {
		if c := cellOf(t, res, tc.bench, tc.unit); c.measured != tc.measured {
			t.Errorf("%s [%s] = %q, want %q", tc.bench, tc.unit, c.measured, tc.measured)
		}
	}
}

// Every row is printed, measured or not, below the machine description.
func TestRenderEveryRow(t *testing.T) {
	var out bytes.Buffer
	res, _ := parse(strings.NewReader(""))
	render(&out, res)
	s := out.String()
	if !strings.HasPrefix(s, "Machine: ") || !strings.Contains(s, "\nKernel:  Linux ") || !strings.Contains(s, "\nGo:      go") {
		t.Errorf("machine header missing:\n%s", s)
	}
	if got := strings.Count(s, "| not measured "); got != len(rows) {
		t.Errorf("%d rows say not measured, want all %d:\n%s", got, len(rows), s)
	}
}
