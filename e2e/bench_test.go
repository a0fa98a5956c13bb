package e2e

// Benchmarks of the real imon binary: agent start with a large journal,
// updown detection and false outages in a network namespace, resident
// memory and CPU of the running agent, and manual failover on the testbed.
// They hold the targets of `make bench` (deploy/bench.sh prints them as one
// table with e2e/benchtable). Each needs root (network namespaces, raw ICMP
// sockets): without it it skips, and fails when CI=true.
//
//	go test -run '^$' -bench . -benchtime 1x ./e2e/
//
// One benchmark op is a fixed amount of work (several trials), so
// -benchtime 1x gives real figures and -benchtime Nx repeats the trials N
// times. IMON_FULL=1 selects the long variants (10 minutes of random loss,
// 5 minutes of resource sampling).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"imon/agent"
	"imon/agent/action"
	"imon/agent/command"
	"imon/agent/outbox"
	"imon/agent/route"
	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
	"imon/internal/testbed"
	"imon/journal"
	"imon/mqtt/mqtttest"
)

// The updown benchmarks' two namespaces: "host" runs imon, "tgt" holds the
// monitored target (and its DNS server), the ping target and the faults.
const (
	benchHostIP  = "10.98.0.1"
	benchTgtIP   = "10.98.0.2"
	benchTgtIP2  = "10.98.0.3"
	benchDNSName = "bench.imon.test"
	benchNode    = "bench" // mqtt node-id: BASE = imon/bench
)

// benchFull reports whether IMON_FULL=1 asks for the long variants.
func benchFull() bool { return os.Getenv("IMON_FULL") == "1" }

func benchMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchConfig writes a config for instance inst with the given sections
// (each a `"name": {...}` JSON member) and a journal and control socket in
// dir. The journal may grow to 2 GiB, so the large-journal benchmark's
// fixture is never trimmed by retention.
func benchConfig(tb testing.TB, dir, inst string, sections ...string) string {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"global\": {\"instance\": %q},\n", inst)
	for _, s := range sections {
		b.WriteString("  " + s + ",\n")
	}
	fmt.Fprintf(&b, "  \"journal\": {\"path\": %q, \"socket\": %q, \"max-bytes\": %d}\n}\n",
		filepath.Join(dir, inst+".db"), filepath.Join(dir, inst+".sock"), int64(2)<<30)
	return harness.WriteFile(tb, dir, "imon-"+inst, b.String(), 0o600)
}

// benchStatus asks the agent's control socket for its status, as `imon
// status` does.
func benchStatus(sock string, timeout time.Duration) (agent.Reply, error) {
	var r agent.Reply
	c, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return r, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(c).Encode(agent.Request{Cmd: "status"}); err != nil {
		return r, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, err
	}
	if !r.OK {
		return r, fmt.Errorf("status: %s", r.Error)
	}
	return r, nil
}

// benchWaitStatus polls the control socket until the agent answers a
// status request; it returns when it did and the agent's PID.
func benchWaitStatus(tb testing.TB, a *harness.Agent, sock string, within time.Duration) (time.Time, int) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		if r, err := benchStatus(sock, time.Second); err == nil {
			at := time.Now()
			var st struct {
				PID int `json:"pid"`
			}
			if err := json.Unmarshal(r.Status, &st); err != nil || st.PID == 0 {
				tb.Fatalf("status without a pid: %s (%v)", r.Status, err)
			}
			return at, st.PID
		}
		if time.Now().After(deadline) {
			tb.Fatalf("control socket %s did not answer within %v; output:\n%s", sock, within, a.Output())
		}
		select {
		case <-a.Done():
			tb.Fatalf("imon exited before its control socket answered; output:\n%s", a.Output())
		case <-time.After(500 * time.Microsecond): // polling another process's socket
		}
	}
}

// benchJournal reads cfg's whole journal (through the running agent).
func benchJournal(tb testing.TB, cfg string) []event.Event {
	tb.Helper()
	out, err := harness.Command(tb, "", "journal", "--config", cfg, "--json").Output()
	if err != nil {
		tb.Fatalf("imon journal: %v", err)
	}
	var evs []event.Event
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ev event.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			tb.Fatalf("journal line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func benchCount(evs []event.Event, kind string) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------
// Agent start with a 1,000,000-event journal.

const benchLargeEvents = 1_000_000

// benchBuildJournal writes n typical events (ping results, with a state
// snapshot of each monitor now and then) to a new journal at path, in
// batches, and moves every consumer cursor to the end, as a long-running
// agent leaves it.
func benchBuildJournal(tb testing.TB, path string, n int) time.Duration {
	tb.Helper()
	start := time.Now()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	const per = 10_000
	evs := make([]event.Event, per)
	monitors := []string{event.MonitorUpdown, event.MonitorPing, event.MonitorDDNS, event.MonitorFailover}
	for i := 0; i < n; i += per {
		for k := range evs {
			ev := event.New(event.MonitorPing, event.KindPingResult,
				"Ping 127.0.0.1: alive min 0.021 avg 0.035 max 0.052 loss 0.0 jitter 0.011",
				map[string]any{"ip": "127.0.0.1", "alive": true, "min_ms": 0.021, "avg_ms": 0.035, "max_ms": 0.052, "loss": 0.0, "jitter_ms": 0.011, "i": i + k}).
				WithArgs("127.0.0.1:True:0.021:0.035:0.052:0.0:0.011")
			ev.Instance = "start"
			evs[k] = ev
		}
		m := monitors[(i/per)%len(monitors)]
		st := event.New(m, "bench-state", "", nil).WithState(map[string]any{"status": "up", "up": true, "batch": i / per})
		st.Instance = "start"
		evs[0] = st
		if _, err := j.Append(ctx, evs...); err != nil {
			tb.Fatalf("append: %v", err)
		}
	}
	for _, c := range []string{"log", action.CursorName, outbox.CursorName} {
		if err := j.SyncCursor(ctx, c, j.LastSeq()); err != nil {
			tb.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// benchLastSeq is the last seq of the journal at path (0 when there is
// none yet).
func benchLastSeq(tb testing.TB, path string) uint64 {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	j, err := journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer j.Close()
	return j.LastSeq()
}

// benchStartOnce starts the agent on cfg, and returns the time from the
// exec to the control socket's first status answer and to the journaled
// agent-start event; then it stops the agent (once agent-start is
// journaled: the control socket may answer before).
func benchStartOnce(tb testing.TB, dir, inst string) (status, started time.Duration) {
	tb.Helper()
	cfg := filepath.Join(dir, "imon-"+inst)
	sock := filepath.Join(dir, inst+".sock")
	db := filepath.Join(dir, inst+".db")
	before := benchLastSeq(tb, db)
	t0 := time.Now()
	a := harness.Start(tb, "", cfg)
	at, _ := benchWaitStatus(tb, a, sock, 20*time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; {
		r, err := benchStatus(sock, time.Second)
		if err != nil {
			tb.Fatalf("status: %v", err)
		}
		var st struct {
			Journal struct {
				LastSeq uint64 `json:"last_seq"`
			} `json:"journal"`
		}
		if err := json.Unmarshal(r.Status, &st); err != nil {
			tb.Fatalf("status %s: %v", r.Status, err)
		}
		if st.Journal.LastSeq > before {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nothing journaled 10 s after the start; output:\n%s", a.Output())
		}
		time.Sleep(time.Millisecond) // polling another process
	}
	if err := a.Stop(); err != nil {
		tb.Fatalf("agent exit: %v; output:\n%s", err, a.Output())
	}
	j, err := journal.Open(db, journal.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer j.Close()
	evs, err := j.Read(before+1, 100)
	if err != nil {
		tb.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == event.KindAgentStart {
			return at.Sub(t0), ev.Time.Sub(t0)
		}
	}
	tb.Fatalf("no agent-start journaled after seq %d:\n%s", before, harness.Summary(evs))
	return 0, 0
}

// BenchmarkAgentStart measures `imon run` from its exec until the control
// socket answers a status request (what `imon status` sees) and until
// agent-start is journaled, with a 1,000,000-event journal and with an
// empty one (alternately, 5 starts each per op), plus the in-process
// journal.Open + LastSeq + Latest of 4 monitors on the same 1M file. The
// journal's share of the start is the difference of the two medians.
// Target: ≤ 100 ms with 1M events. The agent runs updown and ping on
// 127.0.0.1 at interval 10.
func BenchmarkAgentStart(b *testing.B) {
	nettest.NeedRoot(b, "network namespaces")
	dir := b.TempDir()
	build := benchBuildJournal(b, filepath.Join(dir, "large.db"), benchLargeEvents)
	monitors := []string{
		`"updown": {"enable": true, "monitorip": "127.0.0.1"}`,
		`"ping": {"enable": true, "monitorip": "127.0.0.1"}`,
	}
	benchConfig(b, dir, "large", monitors...)
	benchConfig(b, dir, "empty", monitors...)
	// Warm up (binary and journal pages in the page cache; the empty
	// journal created).
	benchStartOnce(b, dir, "empty")
	benchStartOnce(b, dir, "large")

	var stL, agL, stE, agE, open []float64
	for b.Loop() {
		for range 5 {
			s, a := benchStartOnce(b, dir, "empty")
			stE, agE = append(stE, benchMs(s)), append(agE, benchMs(a))
			s, a = benchStartOnce(b, dir, "large")
			stL, agL = append(stL, benchMs(s)), append(agL, benchMs(a))

			t0 := time.Now()
			j, err := journal.Open(filepath.Join(dir, "large.db"), journal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if j.LastSeq() < benchLargeEvents {
				b.Fatalf("large journal has %d events", j.LastSeq())
			}
			for _, m := range []string{event.MonitorUpdown, event.MonitorPing, event.MonitorDDNS, event.MonitorFailover} {
				j.Latest(m)
			}
			open = append(open, benchMs(time.Since(t0)))
			if err := j.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchMedian(stL), "ms-status-1M")
	b.ReportMetric(benchMedian(agL), "ms-agentstart-1M")
	b.ReportMetric(benchMedian(stE), "ms-status-empty")
	b.ReportMetric(benchMedian(agE), "ms-agentstart-empty")
	b.ReportMetric(benchMedian(stL)-benchMedian(stE), "ms-journal-share")
	b.ReportMetric(benchMedian(open), "ms-journal-open-1M")
	b.ReportMetric(build.Seconds(), "s-fixture-build")
	b.Logf("exec→status with 1M events (ms): %v; empty: %v; journal open: %v", stL, stE, open)
}

// ---------------------------------------------------------------------
// updown in a network namespace.

// benchUpdownBed is two namespaces linked by a veth: imon runs in host;
// tgt owns benchTgtIP and benchTgtIP2 and drops what the faults say in its
// prerouting hook (so the host's own stack is untouched, as when the real
// target dies).
type benchUpdownBed struct {
	host, tgt *harness.NS
	dir       string
}

func benchNewUpdownBed(tb testing.TB) *benchUpdownBed {
	tb.Helper()
	testbed.Require(tb)
	bed := &benchUpdownBed{host: harness.NewNS(tb, "host"), tgt: harness.NewNS(tb, "tgt"), dir: tb.TempDir()}
	harness.Link(tb, bed.host, "wan0", benchHostIP+"/24", bed.tgt, "eth0", benchTgtIP+"/24")
	bed.tgt.Sh(tb, "ip", "addr", "add", benchTgtIP2+"/24", "dev", "eth0")
	bed.tgt.Nft(tb, "table ip imbench {\n chain in { type filter hook prerouting priority -300; }\n}\n")
	return bed
}

// cut drops every packet to ip from now on.
func (bed *benchUpdownBed) cut(tb testing.TB, ip string) {
	bed.tgt.Sh(tb, "nft", "add", "rule", "ip", "imbench", "in", "ip", "daddr", ip, "drop")
}

// loss drops percent % of the packets to ip, counted.
func (bed *benchUpdownBed) loss(tb testing.TB, ip string, percent int) {
	bed.tgt.Sh(tb, "nft", "add", "rule", "ip", "imbench", "in", "ip", "daddr", ip,
		"numgen", "random", "mod", "100", "<", strconv.Itoa(percent), "counter", "drop")
}

// dropped is the packet count of the loss rules.
func (bed *benchUpdownBed) dropped(tb testing.TB) int {
	out := bed.tgt.Sh(tb, "nft", "list", "chain", "ip", "imbench", "in")
	n := 0
	for _, m := range regexp.MustCompile(`counter packets (\d+)`).FindAllStringSubmatch(out, -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}

func (bed *benchUpdownBed) heal(tb testing.TB) {
	bed.tgt.Sh(tb, "nft", "flush", "chain", "ip", "imbench", "in")
}

// serveDNS answers A queries for benchDNSName on benchTgtIP:53 in tgt.
func (bed *benchUpdownBed) serveDNS(tb testing.TB) {
	pc := bed.tgt.ListenPacket(tb, "udp", benchTgtIP+":53")
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Name == dns.Fqdn(benchDNSName) && r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(benchTgtIP2)})
		}
		_ = w.WriteMsg(m)
	})}
	benchServe(tb, srv)
}

// benchServe runs a DNS server until the test ends.
func benchServe(tb testing.TB, srv *dns.Server) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ActivateAndServe() }()
	<-started
	tb.Cleanup(func() { _ = srv.Shutdown(); <-done })
}

const benchFastUpdown = `"interval": 1, "pingcount": 2, "pingwait": 1, "monitorip": "` + benchTgtIP + `"`

// BenchmarkUpdownDetection black-holes the target at a random moment (1 to
// 2 s after it is up again) and measures, from just before the nft command
// that cuts (and from its return), until updown-offline is journaled (the
// event's time; both clocks are this machine's). Interval 1, pingcount 2,
// pingwait 1, no DNS check; 5 cuts per op. Target: median ≤ 1.5 s. The
// outage must be dated back to the last reply: data.since no later than
// the cut (since-after-cut-ms-max ≤ 0, with 5 ms allowed for clocks).
func BenchmarkUpdownDetection(b *testing.B) {
	bed := benchNewUpdownBed(b)
	cfg := benchConfig(b, bed.dir, "udlat", `"updown": {"enable": true, `+benchFastUpdown+`}`)
	harness.Start(b, bed.host.Name, cfg)
	w := harness.Watch(b, cfg)
	w.WaitFor(20*time.Second, "updown-status", harness.Kind("updown-status"))
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var lat, after []float64
	sinceOver := math.Inf(-1)
	for b.Loop() {
		for range 5 {
			time.Sleep(time.Second + time.Duration(rnd.Int64N(int64(time.Second)))) // the random moment
			cut := time.Now()
			bed.cut(b, benchTgtIP)
			active := time.Now()
			off := w.Next(10*time.Second, "updown-offline", harness.Kind(event.KindUpdownOffline))
			lat, after = append(lat, benchMs(off.Time.Sub(cut))), append(after, benchMs(off.Time.Sub(active)))
			var d struct {
				Since time.Time `json:"since"`
			}
			if err := off.DecodeData(&d); err != nil || d.Since.IsZero() {
				b.Fatalf("updown-offline data %s: no since (%v)", off.Data, err)
			}
			over := benchMs(d.Since.Sub(active))
			sinceOver = max(sinceOver, over)
			if over > 5 {
				b.Errorf("outage dated %v after the cut: since %s, cut done %s", over, d.Since.Format(event.TimeFormat), active.Format(event.TimeFormat))
			}
			bed.heal(b)
			w.Next(10*time.Second, "updown-online", harness.Kind(event.KindUpdownOnline))
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchMedian(lat), "ms-median")
	b.ReportMetric(slices.Max(lat), "ms-max")
	b.ReportMetric(benchMedian(after), "ms-median-from-nft-return")
	b.ReportMetric(sinceOver, "since-after-cut-ms-max")
	b.ReportMetric(float64(len(lat)), "cuts")
	b.Logf("cut → updown-offline (ms): %v", lat)
}

// BenchmarkUpdownFalseOutages runs the agent with the DNS check configured
// (a DNS server on the target) while the target drops 5 % of its packets
// at random (nftables numgen random): 60 s per op, 10 minutes with
// IMON_FULL=1. Target: 0 updown-offline.
func BenchmarkUpdownFalseOutages(b *testing.B) {
	bed := benchNewUpdownBed(b)
	bed.serveDNS(b)
	cfg := benchConfig(b, bed.dir, "udloss", fmt.Sprintf(`"updown": {"enable": true, %s, "dnsserver": %q, "dnslookup": %q}`,
		benchFastUpdown, benchTgtIP, benchDNSName))
	harness.Start(b, bed.host.Name, cfg)
	w := harness.Watch(b, cfg)
	w.WaitFor(20*time.Second, "updown-status", harness.Kind("updown-status"))
	d := time.Minute
	if benchFull() {
		d = 10 * time.Minute
	}
	bed.loss(b, benchTgtIP, 5)
	start := time.Now()
	for b.Loop() {
		time.Sleep(d) // the benchmark is this long: nothing may happen meanwhile
	}
	elapsed := time.Since(start)
	dropped := bed.dropped(b)
	evs := benchJournal(b, cfg)
	offline, refuted := benchCount(evs, event.KindUpdownOffline), benchCount(evs, "updown-refuted")
	if dropped == 0 {
		b.Error("the loss rule dropped nothing")
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(offline), "false-offline")
	b.ReportMetric(float64(refuted), "refuted")
	b.ReportMetric(float64(dropped), "dropped-pkts")
	b.ReportMetric(elapsed.Seconds(), "loss-s")
}

// ---------------------------------------------------------------------
// Resident memory and CPU.

// benchClockTick is the kernel's USER_HZ (the unit of utime and stime).
func benchClockTick() float64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// benchCPUTicks is utime+stime of pid (all its threads).
func benchCPUTicks(tb testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// After the command: state(3) ... utime(14) stime(15), i.e. f[11], f[12].
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return u + st
}

// benchMemKiB reads a "VmXXX:  N kB" line of /proc/pid/status.
func benchMemKiB(tb testing.TB, pid int, key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, key+":"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// benchResources waits warm, then samples pid's VmRSS every second for d
// and reports RSS (median and max of the samples, MiB), the peak (VmHWM)
// and CPU as a percentage of one core over d.
func benchResources(b *testing.B, pid int, warm, d time.Duration) {
	b.Helper()
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(comm)) != "imon" {
		b.Fatalf("pid %d is not imon (%q, %v)", pid, comm, err)
	}
	time.Sleep(warm)
	hz := benchClockTick()
	var rss []float64
	t0, c0, s0 := time.Now(), benchCPUTicks(b, pid), ctxSwitches(b, pid)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for b.Loop() {
		for end := time.Now().Add(d); time.Now().Before(end); {
			<-tick.C
			rss = append(rss, benchMemKiB(b, pid, "VmRSS")/1024)
		}
	}
	cpu := (benchCPUTicks(b, pid) - c0) / hz / time.Since(t0).Seconds() * 100
	cs := (ctxSwitches(b, pid) - s0) / time.Since(t0).Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchMedian(rss), "rss-MiB")
	b.ReportMetric(slices.Max(rss), "rss-max-MiB")
	b.ReportMetric(benchMemKiB(b, pid, "VmHWM")/1024, "rss-peak-MiB")
	b.ReportMetric(cpu, "cpu-%")
	b.ReportMetric(cs, "cs/s")
	b.ReportMetric(time.Since(t0).Seconds(), "sampled-s")
}

// benchResourceTimes are the warm-up and the sampling time.
func benchResourceTimes() (warm, d time.Duration) {
	if benchFull() {
		return 30 * time.Second, 5 * time.Minute
	}
	return 15 * time.Second, time.Minute
}

// BenchmarkResourcesUpdownPing runs the agent with updown and ping at
// interval 1 (pingcount 2, pingwait 1) on live targets, no action script,
// no MQTT, and samples its resident memory and CPU for 60 s after a 15 s
// warm-up (5 minutes with IMON_FULL=1). Targets: RSS ≤ 15 MiB, CPU ≤ 0.15 %
// of a core.
func BenchmarkResourcesUpdownPing(b *testing.B) {
	bed := benchNewUpdownBed(b)
	cfg := benchConfig(b, bed.dir, "res2",
		`"updown": {"enable": true, `+benchFastUpdown+`}`,
		`"ping": {"enable": true, "interval": 1, "pingcount": 2, "pingwait": 1, "monitorip": "`+benchTgtIP2+`"}`)
	a := harness.Start(b, bed.host.Name, cfg)
	_, pid := benchWaitStatus(b, a, filepath.Join(bed.dir, "res2.sock"), 20*time.Second)
	warm, d := benchResourceTimes()
	benchResources(b, pid, warm, d)
	evs := benchJournal(b, cfg)
	if n := benchCount(evs, event.KindPingResult); float64(n) < (warm+d).Seconds()/2 {
		b.Errorf("only %d ping results in %v", n, warm+d)
	}
	if n := benchCount(evs, event.KindMonitorError) + benchCount(evs, event.KindUpdownOffline); n > 0 {
		b.Errorf("%d monitor errors or outages while measuring:\n%s", n, harness.Summary(evs))
	}
}

// benchWhoami answers A and TXT questions with the querier's address, as
// the whoami services do.
var benchWhoami = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	var src net.IP
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		src = a.IP
	case *net.TCPAddr:
		src = a.IP
	}
	if len(r.Question) == 1 {
		q := r.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: q.Qclass, Ttl: 0}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: src.To4()})
		case dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{src.String()}})
		}
	}
	_ = w.WriteMsg(m)
})

// benchDDNSProviders starts three whoami DNS operators in the testbed's
// inet and returns them as ddns providers.
func benchDDNSProviders(b testing.TB, bed *testbed.Bed) []string {
	addrs := []netip.Addr{testbed.DNSAddr, netip.MustParseAddr("203.0.113.54"), netip.MustParseAddr("203.0.113.55")}
	var ps []string
	for i, a := range addrs {
		if i > 0 {
			bed.Run(bed.Inet, "ip", "addr", "add", a.String()+"/32", "dev", "lo")
		}
		hp := net.JoinHostPort(a.String(), "53")
		var pc net.PacketConn
		var ln net.Listener
		testbed.Do(b, bed.Inet, func() (err error) {
			if pc, err = net.ListenPacket("udp", hp); err != nil {
				return err
			}
			ln, err = net.Listen("tcp", hp)
			return err
		})
		benchServe(b, &dns.Server{PacketConn: pc, Handler: benchWhoami})
		benchServe(b, &dns.Server{Listener: ln, Handler: benchWhoami})
		ps = append(ps, fmt.Sprintf("dns://%s/%c.whoami.test?type=%s", a, 'a'+i, []string{"A", "TXT", "A"}[i]))
	}
	return ps
}

// benchMosquitto starts a local Mosquitto with a unix-socket listener (the
// agent runs in a network namespace; a unix socket is reachable from any)
// and returns it with the agent's mqtt config section, or nil and "" when
// Mosquitto is not installed (and CI is not set).
func benchMosquitto(b testing.TB) (*mqtttest.Broker, string) {
	if _, err := os.Stat(mqtttest.Binary); err != nil && os.Getenv("CI") != "true" {
		b.Logf("mosquitto not installed: measured without MQTT")
		return nil, ""
	}
	dir, err := os.MkdirTemp("", "imb-mq-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "mqtt.sock")
	br := mqtttest.Start(b, mqtttest.Options{Extra: []string{"listener 0 " + sock}})
	return br, fmt.Sprintf(`"mqtt": {"enable": true, "server": "unix://%s", "node-id": %q}`, sock, benchNode)
}

// benchFailoverSection is the testbed's failover section: both WANs probe
// the internet target; interval 0 keeps the default.
func benchFailoverSection(interval int, hold int) string {
	iv := ""
	if interval > 0 {
		iv = fmt.Sprintf(`"interval": %d, "pingcount": 2, "pingwait": 1, `, interval)
	}
	return fmt.Sprintf(`"failover": {"enable": true, %s"prefer-primary": true,
    "primary-if": %q, "primary-name": "pnet", "primary-gw": %q, "primary-ping": %q,
    "standby-if": %q, "standby-name": "snet", "standby-gw": %q, "standby-ping": %q,
    "failback-hold": %d}`, iv, testbed.WANIf[0], testbed.Gateway[0], testbed.Target,
		testbed.WANIf[1], testbed.Gateway[1], testbed.Target, hold)
}

// BenchmarkResourcesAllMonitors runs the agent with all four monitors at
// their default intervals on the failover testbed (updown and ping on
// internet targets, failover over both WANs, ddns asking three whoami DNS
// operators in the testbed with allow-private) and, when Mosquitto is
// installed, MQTT with Home Assistant discovery to a local broker; it
// samples resident memory and CPU for 60 s after a 15 s warm-up (5 minutes
// with IMON_FULL=1), then, with the agent stopped, the floor of the same
// probe plan without imon (measureFloorDefaults).
func BenchmarkResourcesAllMonitors(b *testing.B) {
	bed := testbed.New(b)
	dir := b.TempDir()
	providers, _ := json.Marshal(benchDDNSProviders(b, bed))
	sections := []string{
		`"updown": {"enable": true, "monitorip": "` + testbed.Target.String() + `"}`,
		`"ping": {"enable": true, "monitorip": "` + testbed.Target2.String() + `"}`,
		`"ddns": {"enable": true, "allow-private": true, "providers": ` + string(providers) + `}`,
		benchFailoverSection(0, 30),
	}
	br, mq := benchMosquitto(b)
	if br != nil {
		sections = append(sections, mq, `"homeassistant": {"enable": true}`)
	}
	cfg := benchConfig(b, dir, "res4", sections...)
	a := harness.Start(b, bed.Host.Name, cfg)
	_, pid := benchWaitStatus(b, a, filepath.Join(dir, "res4.sock"), 20*time.Second)
	warm, d := benchResourceTimes()
	benchResources(b, pid, warm, d)
	b.ReportMetric(map[bool]float64{false: 0, true: 1}[br != nil], "mqtt")
	evs := benchJournal(b, cfg)
	want := []string{event.KindFailoverPrimary, event.KindDDNSIPUpdate, event.KindPingResult, "updown-status"}
	if br != nil {
		want = append(want, "mqtt-connected")
	}
	for _, k := range want {
		if benchCount(evs, k) == 0 {
			b.Errorf("no %s while measuring: a monitor did not run as configured:\n%s", k, harness.Summary(evs))
		}
	}
	if n := benchCount(evs, event.KindMonitorError); n > 0 {
		b.Errorf("%d monitor errors:\n%s", n, harness.Summary(evs))
	}
	if err := a.Stop(); err != nil {
		b.Errorf("stop: %v", err)
	}
	cpu, cs := measureFloorDefaults(b, bed, d)
	b.ReportMetric(cpu, "cpu-%-floor")
	b.ReportMetric(cs, "cs/s-floor")
}

// measureFloorDefaults runs the probe plan of the default intervals without
// imon (e2e/cpufloor -mode grid) in the testbed's host namespace: one
// request a second per WAN, bound to it (failover: interval 10, pingcount
// 2), updown's and the ping monitor's two requests every 10 s, both
// carriers read at each tick, on a 1 s grid (imon's engine ticks only
// when something is due: about 1.2 times a second with this plan).
func measureFloorDefaults(tb testing.TB, bed *testbed.Bed, d time.Duration) (cpu, cs float64) {
	tb.Helper()
	args := []string{"-mode", "grid", "-tick", "1s",
		"-round", testbed.Gateway[0].String() + ",count=2,every=10s",
		"-round", testbed.Gateway[1].String() + ",count=2,every=10s",
		"-carrier", testbed.WANIf[0], "-carrier", testbed.WANIf[1]}
	for i := range 2 {
		args = append(args, "-stream", fmt.Sprintf("%s,src=%s,dev=%s,mark=%#x", testbed.Gateway[i], testbed.HostWAN[i], testbed.WANIf[i], 0x1c9+i))
	}
	return runFloor(tb, bed.Host.Name, tb.TempDir(), d, args...)
}

// ---------------------------------------------------------------------
// Manual failover.

// benchRoutes reports the host's default-route changes (netlink).
type benchRoutes struct {
	upd <-chan route.Update
	idx [2]int
}

func benchWatchRoutes(b *testing.B, bed *testbed.Bed) *benchRoutes {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	h := testbed.Handle(b, bed.Host)
	nl, err := route.NewNetlinkAt(h)
	if err != nil {
		b.Fatal(err)
	}
	defer nl.Close()
	r := &benchRoutes{upd: route.Watch(ctx, h, slog.New(slog.DiscardHandler))}
	for i, n := range testbed.WANIf {
		l, err := nl.LinkByName(n)
		if err != nil {
			b.Fatal(err)
		}
		r.idx[i] = l.Index
	}
	return r
}

// drain forgets the changes reported so far.
func (r *benchRoutes) drain() {
	for {
		select {
		case <-r.upd:
		default:
			return
		}
	}
}

// until returns when the kernel reports imon's main default route via WAN
// i (the zero time when it did not within timeout).
func (r *benchRoutes) until(i int, timeout time.Duration) time.Time {
	deadline := time.After(timeout)
	for {
		select {
		case u := <-r.upd:
			if u.Kind == route.RouteChanged && !u.Deleted && u.Route.Table == route.MainTable &&
				u.Route.IsDefault() && u.Route.Proto == route.Protocol && u.LinkIndex == r.idx[i] {
				return time.Now()
			}
		case <-deadline:
			return time.Time{}
		}
	}
}

// BenchmarkManualFailover pins the standby, then the primary, on the
// testbed (interval 1, pingcount 2, pingwait 1, both WANs up), twice each
// per op and way (mode changes are 10 s apart: the command budget), and measures from the command until the kernel reports the
// new default route (netlink, host namespace): with `imon failover
// standby|primary` (the CLI process included) and, when Mosquitto is
// installed, with a QoS 1 publish on BASE/failover/set. Target: ≤ 200 ms.
func BenchmarkManualFailover(b *testing.B) {
	bed := testbed.New(b)
	dir := b.TempDir()
	br, mq := benchMosquitto(b)
	sections := []string{benchFailoverSection(1, 3)}
	if mq != "" {
		sections = append(sections, mq)
	}
	cfg := benchConfig(b, dir, "manual", sections...)
	harness.Start(b, bed.Host.Name, cfg)
	w := harness.Watch(b, cfg)
	w.WaitFor(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	var pub *mqtttest.Sub
	if br != nil {
		pub = br.Subscribe(b, "imon/"+benchNode+"/status")
		w.WaitFor(20*time.Second, "mqtt-connected", harness.Kind("mqtt-connected"))
	}
	rt := benchWatchRoutes(b, bed)
	time.Sleep(2 * time.Second) // both WANs' probes settle (up-after)

	modes := []string{"standby", "primary"}
	var last time.Time // the last mode change: the next waits command.DefaultLimits.MinSwitch
	trial := func(send func(mode string)) (lat []float64) {
		for range 2 {
			for i, mode := range modes {
				time.Sleep(max(500*time.Millisecond, time.Until(last.Add(command.DefaultLimits.MinSwitch+200*time.Millisecond))))
				last = time.Now()
				rt.drain()
				start := time.Now()
				send(mode)
				at := rt.until(1-i, 5*time.Second) // standby is WAN 1, primary WAN 0
				if at.IsZero() {
					b.Fatalf("%s: no route change within 5 s", mode)
				}
				lat = append(lat, benchMs(at.Sub(start)))
			}
		}
		return lat
	}
	var cli, viaMQTT []float64
	for b.Loop() {
		cli = append(cli, trial(func(mode string) {
			if out, err := harness.Command(b, "", "failover", "--config", cfg, mode).CombinedOutput(); err != nil {
				b.Fatalf("imon failover %s: %v\n%s", mode, err, out)
			}
		})...)
		if pub != nil {
			viaMQTT = append(viaMQTT, trial(func(mode string) {
				pub.Publish("imon/"+benchNode+"/failover/set", []byte(mode), false)
			})...)
		}
	}
	time.Sleep(time.Until(last.Add(command.DefaultLimits.MinSwitch + 200*time.Millisecond)))
	if out, err := harness.Command(b, "", "failover", "--config", cfg, "auto").CombinedOutput(); err != nil {
		b.Errorf("imon failover auto: %v\n%s", err, out)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchMedian(cli), "cli-ms-median")
	b.ReportMetric(slices.Max(cli), "cli-ms-max")
	if len(viaMQTT) > 0 {
		b.ReportMetric(benchMedian(viaMQTT), "mqtt-ms-median")
		b.ReportMetric(slices.Max(viaMQTT), "mqtt-ms-max")
	}
	b.Logf("command → route (ms): cli %v, mqtt %v", cli, viaMQTT)
}

// BenchmarkCPUFloor measures what imon's CPU figure is made of, without
// imon: e2e/cpufloor run in the updown benchmarks' host namespace as (1)
// the probe engine's design alone (one goroutine on a 250 ms grid, raw
// sockets read without blocking) with updown's stream at interval 1 (4
// requests/s), (2) one bare pro-bing pinger doing the same (what imon used
// before the engine) and (3) a Go ticker firing 25 times a second (about
// the wakeups of pro-bing's receive loop). CPU and context switches over
// half the resource sampling time after 5 s; reported, no target.
func BenchmarkCPUFloor(b *testing.B) {
	bed := benchNewUpdownBed(b)
	_, d := benchResourceTimes()
	d /= 2
	var grid, probing, ticker [2]float64
	for b.Loop() {
		grid[0], grid[1] = runFloor(b, bed.host.Name, bed.dir, d, "-mode", "grid", "-stream", benchTgtIP)
		probing[0], probing[1] = runFloor(b, bed.host.Name, bed.dir, d, "-mode", "pro-bing", "-addr", benchTgtIP)
		ticker[0], ticker[1] = runFloor(b, bed.host.Name, bed.dir, d, "-mode", "ticker")
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(grid[0], "cpu-%-grid")
	b.ReportMetric(grid[1], "cs/s-grid")
	b.ReportMetric(probing[0], "cpu-%-pro-bing")
	b.ReportMetric(probing[1], "cs/s-pro-bing")
	b.ReportMetric(ticker[0], "cpu-%-ticker-25hz")
	b.ReportMetric(ticker[1], "cs/s-ticker-25hz")
	b.ReportMetric(d.Seconds(), "sampled-s")
}

// runFloor builds e2e/cpufloor into dir (once), runs it with args in
// namespace ns, waits 5 s and returns its CPU (% of a core) and context
// switches a second over d.
func runFloor(tb testing.TB, ns, dir string, d time.Duration, args ...string) (cpu, cs float64) {
	tb.Helper()
	bin := filepath.Join(dir, "cpufloor")
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command("go", "build", "-o", bin, "./cpufloor")
		if out, err := build.CombinedOutput(); err != nil {
			tb.Fatalf("go build ./cpufloor: %v\n%s", err, out)
		}
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	var out nettest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	// ip netns exec execs the program: the pid is cpufloor's.
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if err == nil && strings.TrimSpace(string(comm)) == "cpufloor" {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("cpufloor %q did not start: %s", args, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // warm-up
	hz := benchClockTick()
	pid := cmd.Process.Pid
	t0, c0, s0 := time.Now(), benchCPUTicks(tb, pid), ctxSwitches(tb, pid)
	time.Sleep(d)
	el := time.Since(t0).Seconds()
	cpu = (benchCPUTicks(tb, pid) - c0) / hz / el * 100
	cs = (ctxSwitches(tb, pid) - s0) / el
	if s := out.String(); s != "" {
		tb.Errorf("cpufloor %q said: %s", args, s)
	}
	return cpu, cs
}
