package journal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"imon/event"
	"imon/journal"
)

// Benchmarks hold the journal's speed targets (see docs/journal.md):
//
//	AppendConcurrent  >= 100,000 durable events/s from 64 appenders
//	Replay            1,000,000 events decoded in <= 1 s
//	OpenLarge         Open + LastSeq + 4 x Latest on 1,000,000 events <= 100 ms
//
// One op is a fixed amount of work, so `-benchtime 1x` gives real figures:
//
//	go test -run '^$' -bench . -benchtime 1x ./journal/

const (
	largeEvents  = 1_000_000
	benchWorkers = 64
)

var benchMonitors = []string{"updown", "ping", "ddns", "failover"}

// benchEvents are prebuilt sample events, so that the append benchmarks
// measure the journal, not json.Marshal.
var benchEvents = func() []event.Event {
	evs := make([]event.Event, 1024)
	for i := range evs {
		evs[i] = sampleEvent(i)
	}
	return evs
}()

// fixture is the 1,000,000-event journal, built once per process.
var fixture struct {
	once sync.Once
	dir  string
	path string
	took time.Duration
	err  error
}

// largeJournal returns the path of the closed 1M-event journal.
func largeJournal(b *testing.B) string {
	b.Helper()
	fixture.once.Do(func() {
		start := time.Now()
		fixture.dir, fixture.err = os.MkdirTemp("", "imon-journal-bench-")
		if fixture.err != nil {
			return
		}
		fixture.path = filepath.Join(fixture.dir, "large.db")
		j, err := journal.Open(fixture.path, journal.Options{})
		if err != nil {
			fixture.err = err
			return
		}
		const per = 10000
		evs := make([]event.Event, per)
		for i := 0; i < largeEvents; i += per {
			for k := range evs {
				evs[k] = benchEvents[(i+k)%len(benchEvents)]
			}
			// A snapshot of each monitor now and then.
			m := benchMonitors[(i/per)%len(benchMonitors)]
			evs[0] = event.New(m, "state", "", nil).WithState(map[string]any{"seq": i, "online": true})
			if _, err := j.Append(context.Background(), evs...); err != nil {
				fixture.err = err
				return
			}
		}
		fixture.err = j.Close()
		fixture.took = time.Since(start)
	})
	if fixture.err != nil {
		b.Fatalf("building the 1M-event journal: %v", fixture.err)
	}
	return fixture.path
}

// removeFixture deletes the 1M-event journal (called by TestMain).
func removeFixture() {
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
}

// reportRate reports events/s and ns/event for n events in d.
func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "events/s")
	b.ReportMetric(float64(d.Nanoseconds())/float64(n), "ns/event")
}

// cpuTime is the process's user+system CPU time so far. The benchmarks
// report it beside wall time: on a shared machine, wall time depends on
// the other processes, CPU time much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportDisk reports the file's bytes per event (the file grows in 16 MiB
// steps: live-B/event is the part in use) and the record size.
func reportDisk(b *testing.B, j *journal.Journal) {
	st := j.Stats()
	if st.Events == 0 {
		return
	}
	b.ReportMetric(float64(st.FileBytes)/float64(st.Events), "disk-B/event")
	b.ReportMetric(float64(st.LiveBytes)/float64(st.Events), "live-B/event")
	b.ReportMetric(float64(len(journal.EncodeEvent(sampleEvent(123456)))), "record-B")
}

// BenchmarkAppendConcurrent: 64 goroutines (the target) append one event
// per call, each call waiting for its fsync; group commit shares the
// fsyncs, so the rate is at most appenders / commit latency. 256 appenders
// show how it scales. One op is appenders x 1000 events.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, workers := range []int{benchWorkers, 4 * benchWorkers} {
		b.Run(fmt.Sprintf("appenders=%d", workers), func(b *testing.B) { benchAppendConcurrent(b, workers) })
	}
}

func benchAppendConcurrent(b *testing.B, benchWorkers int) {
	j, err := journal.Open(filepath.Join(b.TempDir(), "j.db"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	const perWorker = 1000
	var total time.Duration
	c0 := j.Stats().Commits
	cpu0 := cpuTime()
	for b.Loop() {
		start := time.Now()
		var wg sync.WaitGroup
		for w := range benchWorkers {
			wg.Go(func() {
				for i := range perWorker {
					if _, err := j.Append(context.Background(), benchEvents[(w*perWorker+i)%len(benchEvents)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
	}
	n := b.N * benchWorkers * perWorker
	reportRate(b, n, total)
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/event")
	b.ReportMetric(float64(n)/float64(j.Stats().Commits-c0), "events/commit")
	reportDisk(b, j)
}

// BenchmarkAppendSingle: one goroutine, one event per call: every append
// pays a whole commit (two fdatasyncs). One op is 500 events.
func BenchmarkAppendSingle(b *testing.B) {
	j, err := journal.Open(filepath.Join(b.TempDir(), "j.db"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	const per = 500
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		for i := range per {
			if _, err := j.Append(context.Background(), benchEvents[i%len(benchEvents)]); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
	}
	reportRate(b, b.N*per, total)
}

// BenchmarkReplay reads the 1M-event journal from the start, decoding
// every event, 10,000 per Read. One op is the whole replay.
func BenchmarkReplay(b *testing.B) {
	path := largeJournal(b)
	j, err := journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	var total time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		start := time.Now()
		n := 0
		for from := j.FirstSeq(); ; {
			evs, err := j.Read(from, 10000)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			n += len(evs)
			from = evs[len(evs)-1].Seq + 1
		}
		total += time.Since(start)
		if n != largeEvents {
			b.Fatalf("replayed %d events, want %d", n, largeEvents)
		}
	}
	cpu := cpuTime() - cpu0
	reportRate(b, b.N*largeEvents, total)
	b.ReportMetric(total.Seconds()/float64(b.N), "s/replay")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/replay")
	b.ReportMetric(fixture.took.Seconds(), "s-fixture-build")
	reportDisk(b, j)
}

// BenchmarkScan is BenchmarkReplay with Scan: every record of the
// 1M-event journal lent to a callback that reads its kind (no decode).
func BenchmarkScan(b *testing.B) {
	path := largeJournal(b)
	j, err := journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	var total time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		start := time.Now()
		n := 0
		if _, err := j.Scan(j.FirstSeq(), 0, func(r *journal.Record) bool {
			if len(r.Kind) > 0 {
				n++
			}
			return true
		}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if n != largeEvents {
			b.Fatalf("scanned %d events, want %d", n, largeEvents)
		}
	}
	cpu := cpuTime() - cpu0
	reportRate(b, b.N*largeEvents, total)
	b.ReportMetric(total.Seconds()/float64(b.N), "s/scan")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/scan")
}

// BenchmarkOpenLarge opens the 1M-event journal read-write as the agent
// does, and asks LastSeq and Latest of 4 monitors (Close is not timed).
func BenchmarkOpenLarge(b *testing.B) {
	path := largeJournal(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		j, err := journal.Open(path, journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if j.LastSeq() != largeEvents {
			b.Fatalf("LastSeq %d", j.LastSeq())
		}
		for _, m := range benchMonitors {
			if _, ok := j.Latest(m); !ok {
				b.Fatalf("no Latest(%s)", m)
			}
		}
		total += time.Since(start)
		b.StopTimer()
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/open")
}

// BenchmarkDecode decodes one typical record.
func BenchmarkDecode(b *testing.B) {
	rec := journal.EncodeEvent(sampleEvent(1))
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := journal.DecodeEvent(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleJournal_Append() {
	dir, _ := os.MkdirTemp("", "journal-example-")
	defer os.RemoveAll(dir)
	j, err := journal.Open(filepath.Join(dir, "main.db"), journal.Options{MaxAge: 30 * 24 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()
	evs, err := j.Append(context.Background(),
		event.New("updown", "updown-offline", "Monitored IP 192.0.2.1 is offline", map[string]string{"ip": "192.0.2.1"}).
			WithArgs("192.0.2.1").WithState(map[string]bool{"online": false}))
	if err != nil {
		fmt.Println(err)
		return
	}
	last, _ := j.Latest("updown")
	fmt.Println(evs[0].Seq, evs[0].Kind, last.Seq, string(last.State))
	// Output: 1 updown-offline 1 {"online":false}
}
