package history

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"imon/agent/monitor/ping"
	"imon/agent/probe"
	"imon/event"
	"imon/journal"
)

// Benchmarks hold the history targets (docs/report.md, docs/bench.md):
//
//	Rebuild        rollups rebuilt from the raw journal at >= 1,000,000 events/s
//	Report30Days   imon report of 30 days of a busy instance (about 2 million
//	               events: all monitors at interval 1) in <= 1 s, from the rollups
//
//	go test -run '^$' -bench . -benchtime 1x ./history/

const busyDays = 30

// busy is the journal of 30 days of a busy instance, built once.
var busy struct {
	once   sync.Once
	dir    string
	path   string
	events uint64
	end    time.Time
	err    error
}

// busyJournal writes 30 days of ping rounds every 1.3 s (real ping-result
// records, as the ping monitor writes them) with updown and failover
// transitions and an IP change now and then: about 2 million events.
func busyJournal(b *testing.B) string {
	b.Helper()
	busy.once.Do(func() {
		if p := os.Getenv("IMON_BENCH_BUSY"); p != "" {
			// Developers: keep the journal between runs (built when missing).
			if j, err := journal.Open(p, journal.Options{ReadOnly: true}); err == nil {
				busy.path, busy.events = p, j.LastSeq()
				evs, _ := j.Read(busy.events, 1)
				busy.err = j.Close()
				if len(evs) == 1 {
					busy.end = evs[0].Time
					return
				}
			}
			os.Remove(p)
			busy.path = p
		} else {
			busy.dir, busy.err = os.MkdirTemp("", "imon-history-bench-")
			busy.path = filepath.Join(busy.dir, "busy.db")
		}
		if busy.err != nil {
			return
		}
		start := time.Now().Add(-busyDays * 24 * time.Hour)
		var t time.Time
		now := func() time.Time { return t }
		j, err := journal.Open(busy.path, journal.Options{Now: now})
		if err != nil {
			busy.err = err
			return
		}
		defer j.Close()
		t = start
		const step = 1300 * time.Millisecond
		n := int(busyDays * 24 * time.Hour / step)
		batch := make([]event.Event, 0, 10000)
		flush := func() {
			if len(batch) == 0 || busy.err != nil {
				return
			}
			if _, err := j.Append(context.Background(), batch...); err != nil {
				busy.err = err
			}
			batch = batch[:0]
		}
		batch = append(batch, event.New(event.MonitorAgent, event.KindAgentStart, "Starting imon",
			map[string]any{"monitors": []string{"ddns", "updown", "failover", "ping"}}))
		rtts := []time.Duration{11 * time.Millisecond, 12 * time.Millisecond, 14 * time.Millisecond}
		for i := range n {
			// Each batch shares one time: the journal stamps events at Append.
			if len(batch) == cap(batch) {
				flush()
				t = start.Add(time.Duration(i) * step)
			}
			r := probe.PingResult{Sent: 3, Recv: 3, RTTs: rtts, Min: rtts[0], Avg: rtts[1], Max: rtts[2], Jitter: time.Millisecond}
			batch = append(batch, ping.Result("9.9.9.9", r, t))
			if i%50000 == 25000 {
				st := Down
				if i%100000 == 75000 {
					st = Up
				}
				batch = append(batch, event.New(event.MonitorUpdown, event.KindUpdownOffline, "", nil).WithState(
					map[string]any{"target": "9.9.9.9", "status": st, "since": t.UTC()}))
				batch = append(batch, event.New(event.MonitorFailover, event.KindFailoverStandby, "",
					map[string]any{"from": "primary", "to": "standby"}).WithState(map[string]any{"active": "standby",
					"wans": []map[string]any{{"role": "primary", "status": "down"}, {"role": "standby", "status": "up"}}}))
				batch = append(batch, event.New(event.MonitorDDNS, event.KindDDNSIPUpdate, "", nil).WithArgs("203.0.113.2", "203.0.113.1"))
			}
		}
		flush()
		busy.events = j.LastSeq()
		busy.end = t
	})
	if busy.err != nil {
		b.Fatal(busy.err)
	}
	return busy.path
}

// caughtUp wraps a journal: done is closed when the consumer waits after
// the last event.
type caughtUp struct {
	*journal.Journal
	once sync.Once
	done chan struct{}
}

func (c *caughtUp) Wait(ctx context.Context, after uint64) error {
	if after >= c.LastSeq() {
		c.once.Do(func() { close(c.done) })
	}
	return c.Journal.Wait(ctx, after)
}

// rebuild runs the consumer on an empty rollup file until it has folded in
// the whole journal and written the rollups.
func rebuild(b *testing.B, jpath, hpath string) time.Duration {
	b.Helper()
	os.Remove(hpath)
	j, err := journal.Open(jpath, journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	cj := &caughtUp{Journal: j, done: make(chan struct{})}
	c := &Consumer{J: cj, Path: hpath, Loc: time.Local}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	t0 := time.Now()
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-cj.done:
	case err := <-errc:
		b.Fatal(err)
	}
	d := time.Since(t0)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return d
}

func BenchmarkRebuild(b *testing.B) {
	jpath := busyJournal(b)
	hpath := PathFor(jpath)
	b.ResetTimer()
	var total time.Duration
	cpu0, flt0 := cpuTime(), minorFaults()
	for range b.N {
		total += rebuild(b, jpath, hpath)
	}
	per := total / time.Duration(b.N)
	cpu := (cpuTime() - cpu0) / time.Duration(b.N)
	// Most of a rebuild's CPU is the first touch of the mapped file's pages.
	b.ReportMetric(float64(minorFaults()-flt0)/float64(b.N), "page-faults/rebuild")
	b.ReportMetric(float64(busy.events)/per.Seconds(), "events/s")
	// On a shared machine the wall time measures the others too: the CPU
	// time the process spent is the rebuild's own cost.
	b.ReportMetric(float64(busy.events)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(busy.events), "events")
	b.ReportMetric(per.Seconds(), "s/rebuild")
	if fi, err := os.Stat(hpath); err == nil {
		b.ReportMetric(float64(fi.Size())/busyDays, "rollup-B/day")
	}
}

func BenchmarkReport30Days(b *testing.B) {
	jpath := busyJournal(b)
	if _, err := os.Stat(PathFor(jpath)); err != nil {
		rebuild(b, jpath, PathFor(jpath))
	}
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		t0 := time.Now()
		now := busy.end
		snap, err := FromFiles(jpath, now.AddDate(0, 0, -30).UnixMilli(), now, time.Local)
		if err != nil {
			b.Fatal(err)
		}
		snap.Finalize(time.Local)
		r := BuildReport(snap, time.Local, ReportOptions{Instance: "busy", From: now.AddDate(0, 0, -30)})
		if err := WriteText(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		if err := WriteHTML(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		if r.Latency == nil || r.Latency.Rounds < 1_900_000 {
			b.Fatalf("the report covers %+v rounds, want about 2 million", r.Latency)
		}
	}
	b.ReportMetric((total / time.Duration(b.N)).Seconds(), "s/report")
	b.ReportMetric(float64(busy.events), "events")
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// minorFaults is the process's count of minor page faults.
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

func TestMain(m *testing.M) {
	code := m.Run()
	if busy.dir != "" {
		os.RemoveAll(busy.dir)
	}
	os.Exit(code)
}

// BenchmarkFold measures folding events into rollups alone (no journal
// read): 2 million ping results and transitions, as in BenchmarkRebuild.
func BenchmarkFold(b *testing.B) {
	const n, passes = 100_000, 20
	start := time.Now().Add(-busyDays * 24 * time.Hour)
	step := 1300 * time.Millisecond
	evs := make([]event.Event, n)
	rtts := []time.Duration{11 * time.Millisecond, 12 * time.Millisecond, 14 * time.Millisecond}
	for i := range evs {
		r := probe.PingResult{Sent: 3, Recv: 3, RTTs: rtts, Min: rtts[0], Avg: rtts[1], Max: rtts[2], Jitter: time.Millisecond}
		evs[i] = ping.Result("9.9.9.9", r, start)
		if i%50000 == 25000 {
			evs[i] = event.New(event.MonitorUpdown, event.KindUpdownOffline, "", nil).WithState(
				map[string]any{"target": "9.9.9.9", "status": []string{Down, Up}[i/50000%2], "since": start.UTC()})
		}
	}
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		p := NewProjector(time.Local, State{})
		for k := range passes {
			for i := range evs {
				evs[i].Seq = uint64(k*n + i + 1)
				evs[i].Time = start.Add(time.Duration(k*n+i) * step)
			}
			t0 := time.Now()
			for i := range evs {
				p.Apply(&evs[i])
			}
			total += time.Since(t0)
		}
	}
	b.ReportMetric(float64(n*passes*b.N)/total.Seconds(), "events/s")
}
