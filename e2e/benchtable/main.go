// Command benchtable turns the output of `go test -bench` over imon's
// packages into one table: each figure of the project's targets, the value
// measured, the target, and the benchmark (package, name and metric unit)
// it comes from. A figure whose benchmark did not run, was skipped or
// failed is printed as "not measured" with the reason, never dropped. The
// machine (CPU count and model, memory, kernel, Go version) is printed
// above the table.
//
//	go test -run '^$' -bench . -benchtime 1x ./... > bench.out
//	go run ./e2e/benchtable < bench.out
//
// deploy/bench.sh (`make bench`) does both. When a benchmark appears more
// than once in the input, the run with the most iterations counts (so a
// supplementary run with a larger -benchtime overrides the 1x one).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// result is one benchmark's outcome in the input.
type result struct {
	n       int                // iterations
	metrics map[string]float64 // by unit
	status  string             // "", "SKIP" or "FAIL"
	reason  string             // first message line of a skip or failure
}

// key names a benchmark: import path and name without the -GOMAXPROCS
// suffix.
type key struct{ pkg, name string }

// results is everything parsed from the input.
type results struct {
	byKey map[key]*result
	cpu   string            // the "cpu:" line of go test
	fail  map[string]string // packages that failed as a whole (build, panic, timeout): pkg -> reason
}

var (
	procsSuffix = regexp.MustCompile(`-\d+$`)
	nameLine    = regexp.MustCompile(`^(Benchmark\S+)$`)
	benchLine   = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(.*)$`)
	resultLine  = regexp.MustCompile(`^\s+(\d+)\s+(\d.*)$`)
	statusLine  = regexp.MustCompile(`--- (SKIP|FAIL): (Benchmark\S+)`)
	endLine     = regexp.MustCompile(`^(ok|FAIL)\s+(\S+)(.*)$`)
)

func benchName(s string) string { return procsSuffix.ReplaceAllString(s, "") }

// entry is a benchmark outcome whose package is known only at the end of
// the package's output (without -v, go test prints failures before the
// "pkg:" line).
type entry struct {
	name string
	r    result
}

// parse reads go test -bench output (with or without -v).
func parse(r io.Reader) (*results, error) {
	res := &results{byKey: map[key]*result{}, fail: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var (
		block    []entry
		current  string   // the benchmark running (-v prints its name first)
		msgs     []string // its indented log lines so far
		status   *entry   // the last SKIP/FAIL without a message yet
		panicked string
		lastPkg  string // of the last "pkg:" line
	)
	metrics := func(rest string) map[string]float64 {
		fields := strings.Fields(rest)
		m := map[string]float64{}
		for i := 0; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				m[fields[i+1]] = v
			}
		}
		return m
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			lastPkg = strings.TrimSpace(line[5:])
		case strings.HasPrefix(line, "cpu: "):
			res.cpu = strings.TrimSpace(line[5:])
		case strings.HasPrefix(line, "panic: "):
			panicked = strings.TrimSpace(line)
		case nameLine.MatchString(line):
			current, msgs, status = benchName(line), nil, nil
		case benchLine.MatchString(line):
			m := benchLine.FindStringSubmatch(line)
			n, _ := strconv.Atoi(m[2])
			block = append(block, entry{benchName(m[1]), result{n: n, metrics: metrics(m[3])}})
			current, msgs, status = "", nil, nil
		case current != "" && resultLine.MatchString(line):
			// The result of a benchmark that printed to stdout.
			m := resultLine.FindStringSubmatch(line)
			n, _ := strconv.Atoi(m[1])
			block = append(block, entry{current, result{n: n, metrics: metrics(m[2])}})
			current, msgs, status = "", nil, nil
		case statusLine.MatchString(line):
			m := statusLine.FindStringSubmatch(line)
			e := entry{name: benchName(m[2]), r: result{n: -1, status: m[1]}}
			if benchName(m[2]) == current && len(msgs) > 0 {
				e.r.reason = msgs[len(msgs)-1] // -v: the messages came first
				if m[1] == "FAIL" {
					e.r.reason = msgs[0]
				}
			}
			block = append(block, e)
			status = &block[len(block)-1]
			if e.r.reason != "" {
				status = nil
			}
		case strings.HasPrefix(line, "    "):
			if status != nil {
				status.r.reason, status = strings.TrimSpace(line), nil
			} else if current != "" {
				msgs = append(msgs, strings.TrimSpace(line))
			}
		case endLine.MatchString(line):
			m := endLine.FindStringSubmatch(line)
			pkg := m[2]
			for _, e := range block {
				res.add(pkg, e)
			}
			if m[1] == "FAIL" && (panicked != "" || strings.Contains(m[3], "failed]")) {
				res.fail[pkg] = panicked
				if panicked == "" {
					res.fail[pkg] = strings.TrimSpace(m[3])
				}
			}
			block, current, msgs, status, panicked = nil, "", nil, nil, ""
		}
	}
	// Output cut short (an interrupted run): what was measured still counts.
	for _, e := range block {
		res.add(lastPkg, e)
	}
	return res, sc.Err()
}

// add records e for pkg: a measured run replaces a skip and a run with
// fewer iterations; a failure always counts.
func (res *results) add(pkg string, e entry) {
	k := key{pkg, e.name}
	old := res.byKey[k]
	switch {
	case old == nil:
	case e.r.status == "FAIL":
	case old.status == "FAIL":
		return
	case e.r.status == "SKIP" && old.n >= 0:
		return
	case e.r.n < old.n:
		return
	}
	r := e.r
	res.byKey[k] = &r
}

// row is one figure of the table.
type row struct {
	figure string // may name other metrics of the same benchmark: {unit}
	pkg    string
	bench  string
	alt    []string // other names of the benchmark (renamed, or a sub-benchmark), tried in order when bench is absent
	unit   string
	target string // may name metrics: {unit}
	// ok tells whether v meets the target (nil: no target, only reported);
	// m holds the benchmark's other metrics.
	ok     func(v float64, m map[string]float64) bool
	format func(v float64) string
}

func atMost(limit float64) func(float64, map[string]float64) bool {
	return func(v float64, _ map[string]float64) bool { return v <= limit }
}

func atLeast(limit float64) func(float64, map[string]float64) bool {
	return func(v float64, _ map[string]float64) bool { return v >= limit }
}

// commas formats an integer with thousands separators.
func commas(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func unitf(unit string, prec int) func(float64) string {
	return func(v float64) string {
		if prec < 0 {
			return commas(v) + unit
		}
		return strconv.FormatFloat(v, 'f', prec, 64) + unit
	}
}

const (
	pJournal  = "imon/journal"
	pE2E      = "imon/e2e"
	pUpdown   = "imon/agent/monitor/updown"
	pFailover = "imon/agent/monitor/failover"
	pDDNS     = "imon/agent/monitor/ddns"
	pOutbox   = "imon/agent/outbox"
	pConfig   = "imon/config"
	pHA       = "imon/homeassistant"
	pHistory  = "imon/history"
)

var (
	ms0   = unitf(" ms", 0)
	ms1   = unitf(" ms", 1)
	count = unitf("", -1)
	mib   = unitf(" MiB", 1)
	zero  = atMost(0)
)

// rows are the figures of the targets in issues 2 to 5 and 7, in order.
var rows = []row{
	{figure: "durable appends, 64 concurrent appenders ({events/commit} events/commit)", pkg: pJournal, bench: "BenchmarkAppendConcurrent/appenders=64", unit: "events/s",
		target: "≥ 100,000 events/s", ok: atLeast(100_000), format: unitf(" events/s", -1)},
	{figure: "durable appends, 256 concurrent appenders ({events/commit} events/commit)", pkg: pJournal, bench: "BenchmarkAppendConcurrent/appenders=256", unit: "events/s",
		target: "—", format: unitf(" events/s", -1)},
	{figure: "durable appends, one appender (one commit each)", pkg: pJournal, bench: "BenchmarkAppendSingle", unit: "events/s",
		target: "— (bbolt: ~4,000 commits/s)", format: unitf(" events/s", -1)},
	{figure: "replay of 1,000,000 events, decoded", pkg: pJournal, bench: "BenchmarkReplay", unit: "s/replay",
		target: "≤ 1 s", ok: atMost(1), format: unitf(" s", 2)},
	{figure: "bytes of file per event (1M-event journal)", pkg: pJournal, bench: "BenchmarkReplay", unit: "disk-B/event",
		target: "stated (record {record-B} B)", format: unitf(" B", 0)},
	{figure: "bytes in use per event (1M-event journal)", pkg: pJournal, bench: "BenchmarkReplay", unit: "live-B/event",
		target: "stated", format: unitf(" B", 0)},
	{figure: "open 1M-event journal + last seq + 4 monitors' state (in process)", pkg: pJournal, bench: "BenchmarkOpenLarge", unit: "ms/open",
		target: "≤ 100 ms", ok: atMost(100), format: ms1},
	{figure: "imon report of 30 days of a busy instance ({events} events), from the rollups", pkg: pHistory, bench: "BenchmarkReport30Days", unit: "s/report",
		target: "≤ 1 s", ok: atMost(1), format: unitf(" s", 3)},
	{figure: "rollups rebuilt from the raw journal ({events} events)", pkg: pHistory, bench: "BenchmarkRebuild", unit: "events/s",
		target: "≥ 1,000,000 events/s", ok: atLeast(1_000_000), format: unitf(" events/s", -1)},
	{figure: "rollup rebuild per CPU-second (its own cost on a loaded machine)", pkg: pHistory, bench: "BenchmarkRebuild", unit: "events/cpu-s",
		target: "—", format: unitf(" events/s", -1)},
	{figure: "folding events into rollups alone (no journal read)", pkg: pHistory, bench: "BenchmarkFold", unit: "events/s",
		target: "—", format: unitf(" events/s", -1)},
	{figure: "agent start, 1M-event journal: exec → control socket answers status", pkg: pE2E, bench: "BenchmarkAgentStart", unit: "ms-status-1M",
		target: "≤ 100 ms", ok: atMost(100), format: ms1},
	{figure: "agent start, 1M-event journal: exec → agent-start journaled", pkg: pE2E, bench: "BenchmarkAgentStart", unit: "ms-agentstart-1M",
		target: "≤ 100 ms", ok: atMost(100), format: ms1},
	{figure: "agent start, empty journal: exec → status answers (reference)", pkg: pE2E, bench: "BenchmarkAgentStart", unit: "ms-status-empty",
		target: "—", format: ms1},
	{figure: "journal's share of the start (1M − empty)", pkg: pE2E, bench: "BenchmarkAgentStart", unit: "ms-journal-share",
		target: "≤ 100 ms", ok: atMost(100), format: ms1},
	{figure: "target blackholed → updown-offline journaled, real binary, median of {cuts} cuts", pkg: pE2E, bench: "BenchmarkUpdownDetection", unit: "ms-median",
		target: "≤ 1,500 ms (Python imon: 5,300 ms)", ok: atMost(1500), format: ms0},
	{figure: "outage dated back to the last reply: max(since − cut)", pkg: pE2E, bench: "BenchmarkUpdownDetection", unit: "since-after-cut-ms-max",
		target: "≤ 0 ms (+5 ms clock slack)", ok: atMost(5), format: ms0},
	{figure: "target blackholed → updown-offline, monitor in a netns (package), median", pkg: pUpdown, bench: "BenchmarkNetnsDetection", unit: "ms-median",
		target: "≤ 1,500 ms", ok: atMost(1500), format: ms0},
	{figure: "false outages, 5 % random loss, DNS check, real binary, {loss-s} s", pkg: pE2E, bench: "BenchmarkUpdownFalseOutages", unit: "false-offline",
		target: "0 (over 10 min: IMON_FULL=1)", ok: zero, format: count},
	{figure: "false outages, 5 % loss, DNS answers, simulated 10 min", pkg: pUpdown, bench: "BenchmarkFalseOutages/dns-answers", unit: "false-offline/10min",
		target: "0", ok: zero, format: count},
	{figure: "false outages, 5 % loss on the DNS path too, simulated 10 min", pkg: pUpdown, bench: "BenchmarkFalseOutages/dns-lossy-link", unit: "false-offline/10min",
		target: "0", ok: zero, format: count},
	{figure: "RSS, agent with updown + ping at interval 1 (median of {sampled-s} s)", pkg: pE2E, bench: "BenchmarkResourcesUpdownPing", unit: "rss-MiB",
		target: "≤ 15 MiB (Python imon: 31 MiB)", ok: atMost(15), format: mib},
	{figure: "CPU, agent with updown + ping at interval 1", pkg: pE2E, bench: "BenchmarkResourcesUpdownPing", unit: "cpu-%",
		target: "≤ 0.15 % of a core (Python: 0.32 %)", ok: atMost(0.15), format: unitf(" %", 3)},
	{figure: "CPU floor, no imon code: the engine's grid with updown's stream, 4 requests/s ({sampled-s} s)", pkg: pE2E, bench: "BenchmarkCPUFloor", unit: "cpu-%-grid",
		target: "reference", format: unitf(" %", 3)},
	{figure: "CPU floor, no imon code: one bare pro-bing pinger, 4 requests/s ({sampled-s} s)", pkg: pE2E, bench: "BenchmarkCPUFloor", unit: "cpu-%-pro-bing",
		target: "reference", format: unitf(" %", 3)},
	{figure: "context switches/s of the same bare pro-bing pinger", pkg: pE2E, bench: "BenchmarkCPUFloor", unit: "cs/s-pro-bing",
		target: "reference", format: unitf("/s", 1)},
	{figure: "CPU, all four monitors at interval 1 + MQTT + HA (ddns 2 s, ping 5 s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-all",
		target: "≤ 0.15 % of a core (Python: 0.32 %)", ok: atMost(0.15), format: unitf(" %", 3)},
	{figure: "context switches/s, same (voluntary: {vcs/s-all})", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cs/s-all",
		target: "≤ 30/s", ok: atMost(30), format: unitf("/s", 1)},
	{figure: "RSS, same, after the warm-up and sampling", pkg: pE2E, bench: "BenchmarkWakeups", unit: "rss-MiB-all",
		target: "≤ 12 MiB", ok: atMost(12), format: mib},
	{figure: "floor of the same probe plan without imon (CPU; {cs/s-floor} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-floor",
		target: "reference", format: unitf(" %", 3)},
	{figure: "same floor on imon's 200 ms grid, 5 requests/s a stream (CPU; {cs/s-floor200} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-floor200",
		target: "reference", format: unitf(" %", 3)},
	{figure: "… updown alone at interval 1 (CPU; {cs/s-updown} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-updown",
		target: "printed", format: unitf(" %", 3)},
	{figure: "… failover alone at interval 1, two WANs (CPU; {cs/s-failover} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-failover",
		target: "printed", format: unitf(" %", 3)},
	{figure: "… ping alone every 5 s (CPU; {cs/s-ping} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-ping",
		target: "printed", format: unitf(" %", 3)},
	{figure: "… ddns alone every 2 s (CPU; {cs/s-ddns} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-ddns",
		target: "printed", format: unitf(" %", 3)},
	{figure: "… MQTT + HA alone, no monitor (CPU; {cs/s-mqtt} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-mqtt",
		target: "printed", format: unitf(" %", 3)},
	{figure: "… all four without MQTT (CPU; {cs/s-all-no-mqtt} cs/s)", pkg: pE2E, bench: "BenchmarkWakeups", unit: "cpu-%-all-no-mqtt",
		target: "printed", format: unitf(" %", 3)},
	{figure: "CPU floor, no imon code: a Go ticker firing 25 times a second", pkg: pE2E, bench: "BenchmarkCPUFloor", unit: "cpu-%-ticker-25hz",
		target: "reference", format: unitf(" %", 3)},
	{figure: "upstream cut → default route switched, median", pkg: pFailover, bench: "BenchmarkFailoverUpstreamCut", unit: "switch-ms-median",
		target: "≤ 1,500 ms (Python imon: 5,600 ms)", ok: atMost(1500), format: ms0},
	{figure: "carrier loss → default route switched, median", pkg: pFailover, bench: "BenchmarkFailoverCarrierLoss", unit: "switch-ms-median",
		target: "≤ 300 ms (Python imon: 5,400 ms)", ok: atMost(300), format: ms0},
	{figure: "failback after heal (upstream cut), median", pkg: pFailover, bench: "BenchmarkFailoverUpstreamCut", unit: "failback-ms-median",
		target: "printed (hold {hold-s} s)", format: ms0},
	{figure: "failback after heal (carrier loss), median", pkg: pFailover, bench: "BenchmarkFailoverCarrierLoss", unit: "failback-ms-median",
		target: "printed (hold {hold-s} s)", format: ms0},
	{figure: "switches under 10 % random probe loss on the primary, 2 min", pkg: pFailover, bench: "BenchmarkFailoverRandomLoss", unit: "switches",
		target: "0", ok: zero, format: count},
	{figure: "confirmed address, 3 DNS providers through the testbed, median", pkg: pDDNS, bench: "BenchmarkTestbedConfirm", unit: "ms-median-confirm",
		target: "≤ 50 ms", ok: atMost(50), format: ms1},
	{figure: "confirmed address, 3 DNS providers on loopback, median", pkg: pDDNS, bench: "BenchmarkConfirmThreeProviders", unit: "ms-median-confirm",
		target: "≤ 50 ms", ok: atMost(50), format: ms1},
	{figure: "confirmed address, one of 3 providers blackholed, max", pkg: pDDNS, bench: "BenchmarkConfirmOneBlackholed", unit: "ms-max-confirm",
		target: "≤ its timeout ({ms-timeout} ms)", ok: func(v float64, m map[string]float64) bool {
			t, ok := m["ms-timeout"]
			return ok && v <= t
		}, format: ms0},
	{figure: "false change events, 10,000 rounds, one provider lying", pkg: pDDNS, bench: "BenchmarkSimulatedRounds/honest-failure-0%", unit: "false-changes/10k-rounds",
		target: "0", ok: zero, format: count},
	{figure: "false change events, 10,000 rounds, one lying, others failing 20 %", pkg: pDDNS, bench: "BenchmarkSimulatedRounds/honest-failure-20%", unit: "false-changes/10k-rounds",
		target: "0", ok: zero, format: count},
	{figure: "backlog of 100,000 events drained to Mosquitto, QoS 1, a subscriber receiving", pkg: pOutbox, bench: "BenchmarkBacklogDrain", alt: []string{"BenchmarkBacklogDrain/subscriber"}, unit: "msg/s",
		target: "≥ 25,000 msg/s", ok: atLeast(25_000), format: unitf(" msg/s", -1)},
	{figure: "backlog of 100,000 events drained to Mosquitto, QoS 1, no subscriber", pkg: pOutbox, bench: "BenchmarkBacklogDrainAlone", alt: []string{"BenchmarkBacklogDrain/alone"}, unit: "msg/s",
		target: "—", format: unitf(" msg/s", -1)},
	{figure: "journal append → subscriber receives, median", pkg: pOutbox, bench: "BenchmarkAppendToReceive", unit: "ms-median",
		target: "≤ 10 ms", ok: atMost(10), format: unitf(" ms", 2)},
	{figure: "Home Assistant recorder rows a day, one instance at the defaults (per-round wiring: {rows/day-per-round})", pkg: pHA, bench: "BenchmarkRecorderRowsPerDay", unit: "rows/day",
		target: "≤ 10,000", ok: atMost(10_000), format: count},
	{figure: "manual failover: `imon failover` → route switched, median", pkg: pE2E, bench: "BenchmarkManualFailover", unit: "cli-ms-median",
		target: "≤ 200 ms", ok: atMost(200), format: ms1},
	{figure: "manual failover: MQTT BASE/failover/set → route switched, median", pkg: pE2E, bench: "BenchmarkManualFailover", unit: "mqtt-ms-median",
		target: "≤ 200 ms", ok: atMost(200), format: ms1},
	{figure: "config check of the worst file under the 1 MiB limit (80,000 unknown keys)", pkg: pConfig, bench: "BenchmarkParseWorstCase", unit: "ms/parse",
		target: "≤ 1,000 ms (a 25 MB file took 24 s before the limit)", ok: atMost(1000), format: ms0},
	{figure: "memory allocated by that check", pkg: pConfig, bench: "BenchmarkParseWorstCase", unit: "MB-alloc/parse",
		target: "≤ 128 MB (1.4 GB before)", ok: atMost(128), format: unitf(" MB", 0)},
	{figure: "RSS, agent with all four monitors at default intervals (+ MQTT: {mqtt})", pkg: pE2E, bench: "BenchmarkResourcesAllMonitors", unit: "rss-MiB",
		target: "printed", format: mib},
	{figure: "CPU, agent with all four monitors at default intervals", pkg: pE2E, bench: "BenchmarkResourcesAllMonitors", unit: "cpu-%",
		target: "≤ 0.05 % of a core", ok: atMost(0.05), format: unitf(" %", 3)},
	{figure: "context switches/s, same", pkg: pE2E, bench: "BenchmarkResourcesAllMonitors", unit: "cs/s",
		target: "≤ 8/s", ok: atMost(8), format: unitf("/s", 1)},
	{figure: "floor of the default intervals' probe plan without imon, 1 s grid (CPU; {cs/s-floor} cs/s)", pkg: pE2E, bench: "BenchmarkResourcesAllMonitors", unit: "cpu-%-floor",
		target: "reference", format: unitf(" %", 3)},
}

var placeholder = regexp.MustCompile(`\{([^}]+)\}`)

// fill replaces {unit} by that metric of m ("?" when missing).
func fill(s string, m map[string]float64) string {
	return placeholder.ReplaceAllStringFunc(s, func(p string) string {
		u := p[1 : len(p)-1]
		v, ok := m[u]
		if !ok {
			return "?"
		}
		if u == "mqtt" {
			return map[bool]string{true: "yes", false: "no"}[v != 0]
		}
		if v == float64(int64(v)) || v >= 100 {
			return commas(v)
		}
		return strconv.FormatFloat(v, 'f', 1, 64)
	})
}

// cell is one table row, formatted.
type cell struct{ figure, measured, target, verdict, source string }

func (res *results) cells() []cell {
	var out []cell
	for _, r := range rows {
		name := r.bench
		got := res.byKey[key{r.pkg, name}]
		for _, a := range r.alt {
			if got != nil {
				break
			}
			if got = res.byKey[key{r.pkg, a}]; got != nil {
				name = a
			}
		}
		src := fmt.Sprintf("%s %s [%s]", strings.TrimPrefix(r.pkg, "imon/"), name, r.unit)
		c := cell{figure: r.figure, target: r.target, source: src}
		var m map[string]float64
		if got != nil {
			m = got.metrics
		}
		c.figure, c.target = fill(r.figure, m), fill(r.target, m)
		v, have := m[r.unit]
		switch {
		case got != nil && got.status == "FAIL":
			c.measured = "not measured (FAIL: " + short(got.reason) + ")"
			if have {
				c.measured = r.format(v) + " (benchmark FAILED: " + short(got.reason) + ")"
			}
			c.verdict = "✗"
		case have:
			c.measured = r.format(v)
			if r.ok != nil {
				c.verdict = map[bool]string{true: "✓", false: "✗"}[r.ok(v, m)]
			}
		case got != nil && got.status == "SKIP":
			c.measured = "not measured (skipped: " + short(got.reason) + ")"
		case res.fail[r.pkg] != "":
			c.measured = "not measured (package failed: " + short(res.fail[r.pkg]) + ")"
		default:
			c.measured = "not measured"
		}
		out = append(out, c)
	}
	return out
}

// short trims a message to a table cell (and drops the file:line prefix).
func short(s string) string {
	if i := strings.Index(s, ".go:"); i >= 0 {
		if j := strings.Index(s[i:], ": "); j >= 0 {
			s = s[i+j+2:]
		}
	}
	s = strings.ReplaceAll(s, "|", "/")
	if utf8.RuneCountInString(s) > 70 {
		s = string([]rune(s)[:67]) + "..."
	}
	if s == "" {
		s = "see bench.out"
	}
	return s
}

// machine describes this machine in one line each.
func machine(goCPU string) []string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			k = strings.TrimSpace(k)
			if ok && (k == "model name" || k == "Model" || k == "Hardware") && model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	if goCPU != "" && goCPU != model {
		model = strings.TrimSpace(model + " (" + goCPU + ")")
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				mem = fmt.Sprintf("%.1f GiB", kb/1024/1024)
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return []string{
		fmt.Sprintf("Machine: %d CPUs (nproc), %s, %s RAM", runtime.NumCPU(), model, mem),
		fmt.Sprintf("Kernel:  Linux %s %s", kernel, runtime.GOARCH),
		fmt.Sprintf("Go:      %s", runtime.Version()),
		fmt.Sprintf("Date:    %s", time.Now().UTC().Format("2006-01-02 15:04 UTC")),
	}
}

// render prints the machine and the table (markdown, aligned).
func render(w io.Writer, res *results) {
	for _, l := range machine(res.cpu) {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	cs := append([]cell{{"figure", "measured", "target", "ok", "source benchmark [metric]"}}, res.cells()...)
	width := make([]int, 5)
	for _, c := range cs {
		for i, s := range []string{c.figure, c.measured, c.target, c.verdict, c.source} {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	line := func(fs ...string) {
		var b strings.Builder
		for i, s := range fs {
			b.WriteString("| " + s + strings.Repeat(" ", width[i]-utf8.RuneCountInString(s)) + " ")
		}
		fmt.Fprintln(w, b.String()+"|")
	}
	for i, c := range cs {
		line(c.figure, c.measured, c.target, c.verdict, c.source)
		if i == 0 {
			var seps []string
			for _, n := range width {
				seps = append(seps, strings.Repeat("-", n))
			}
			line(seps...)
		}
	}
	missed, unmeasured := 0, 0
	for _, c := range cs[1:] {
		if c.verdict == "✗" {
			missed++
		}
		if strings.HasPrefix(c.measured, "not measured") {
			unmeasured++
		}
	}
	fmt.Fprintf(w, "\n%d figures: %d targets missed (✗), %d not measured.\n", len(cs)-1, missed, unmeasured)
}

func main() {
	var in io.Reader = os.Stdin
	if len(os.Args) > 1 {
		var rs []io.Reader
		for _, p := range os.Args[1:] {
			f, err := os.Open(p)
			if err != nil {
				fmt.Fprintln(os.Stderr, "benchtable:", err)
				os.Exit(1)
			}
			defer f.Close()
			rs = append(rs, f)
		}
		in = io.MultiReader(rs...)
	}
	res, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable: reading go test output:", err)
		os.Exit(1)
	}
	render(os.Stdout, res)
}
