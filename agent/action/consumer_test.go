package action_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/action"
	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
)

// fakeJournal is an in-memory journal: a slice of events, a channel closed
// on every append, and cursors split into the lazily set value and the
// durable one, so that a test can simulate a crash (crash drops the lazy).
type fakeJournal struct {
	mu      sync.Mutex // guards all following
	evs     []event.Event
	first   uint64        // FirstSeq (retention)
	changed chan struct{} // closed and replaced on every append and cursor change
	lazy    map[string]uint64
	durable map[string]uint64
	syncs   []uint64 // SyncCursor calls for the action cursor
}

func newFakeJournal() *fakeJournal {
	return &fakeJournal{changed: make(chan struct{}), lazy: map[string]uint64{}, durable: map[string]uint64{}, first: 1}
}

func (j *fakeJournal) Append(_ context.Context, evs ...event.Event) ([]event.Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]event.Event, 0, len(evs))
	for _, ev := range evs {
		ev.Seq = uint64(len(j.evs)) + 1
		if ev.Time.IsZero() {
			ev.Time = time.Now().UTC()
		}
		j.evs = append(j.evs, ev)
		out = append(out, ev)
	}
	// An append is a commit: lazily set cursors become durable.
	for k, v := range j.lazy {
		j.durable[k] = v
	}
	j.signal()
	return out, nil
}

// Follow is the journal's Follow on the fake.
func (j *fakeJournal) Follow(ctx context.Context, from uint64, f event.Follower) (uint64, error) {
	return journal.Follow(ctx, j, from, f)
}

// signal wakes Wait and waitCursor; j.mu must be held.
func (j *fakeJournal) signal() {
	close(j.changed)
	j.changed = make(chan struct{})
}

func (j *fakeJournal) Read(from uint64, max int) ([]event.Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	from = maxU(from, j.first)
	if from == 0 || from > uint64(len(j.evs)) {
		return nil, nil
	}
	end := min(uint64(len(j.evs)), from-1+uint64(max))
	return slices.Clone(j.evs[from-1 : end]), nil
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func (j *fakeJournal) Wait(ctx context.Context, after uint64) error {
	for {
		j.mu.Lock()
		n, changed := uint64(len(j.evs)), j.changed
		j.mu.Unlock()
		if n > after {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func (j *fakeJournal) FirstSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.first
}

func (j *fakeJournal) Cursor(name string) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lazy[name]
}

func (j *fakeJournal) SetCursor(name string, seq uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lazy[name] = seq
	j.signal()
}

func (j *fakeJournal) SyncCursor(_ context.Context, name string, seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lazy[name] = seq
	j.durable[name] = seq
	if name == action.CursorName {
		j.syncs = append(j.syncs, seq)
	}
	j.signal()
	return nil
}

// crash forgets everything that was not durable.
func (j *fakeJournal) crash() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lazy = map[string]uint64{}
	for k, v := range j.durable {
		j.lazy[k] = v
	}
}

func (j *fakeJournal) durableCursor() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.durable[action.CursorName]
}

// kinds returns the journaled events of the given kind.
func (j *fakeJournal) ofKind(kind string) []event.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []event.Event
	for _, ev := range j.evs {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// fakeRunner records every run; result decides each run's outcome.
type fakeRunner struct {
	mu     sync.Mutex // guards runs
	runs   []action.Command
	result func(ctx context.Context, c action.Command) action.Result
}

func (r *fakeRunner) Run(ctx context.Context, c action.Command) action.Result {
	r.mu.Lock()
	r.runs = append(r.runs, c)
	r.mu.Unlock()
	if r.result != nil {
		return r.result(ctx, c)
	}
	return action.Result{}
}

// commands returns "COMMAND ARGS" of every run (argv[3:]).
func (r *fakeRunner) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.runs {
		out = append(out, strings.Join(c.Argv[3:], " "))
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runConsumer starts c in the synctest bubble and returns a stop function
// that cancels it and returns Run's error.
func runConsumer(t *testing.T, c *action.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	return func() error {
		cancel()
		return <-errc
	}
}

func ev(monitor, kind string, args ...string) event.Event {
	e := event.New(monitor, kind, "", nil).WithArgs(args...)
	e.Instance = "main"
	return e
}

// mixed is a journal with action and non-action events.
func mixed() []event.Event {
	return []event.Event{
		ev(event.MonitorAgent, event.KindAgentStart),
		ev(event.MonitorUpdown, event.KindUpdownOffline, "192.0.2.1"),
		ev(event.MonitorPing, event.KindPingResult, "192.0.2.1:False:0.000:0.000:0.000:1.0:0.000"),
		ev(event.MonitorUpdown, event.KindMonitorError),
		ev(event.MonitorUpdown, event.KindUpdownOnline, "192.0.2.1", "0:00:00:12"),
		ev(event.MonitorFailover, event.KindFailoverCommand),
		ev(event.MonitorDDNS, event.KindDDNSIPUpdate, "203.0.113.9", "unknown"),
		ev(event.MonitorDDNS, event.KindDDNSNoUpdate),
		ev(event.MonitorAgent, event.KindAgentStop),
	}
}

var mixedWant = []string{
	"updown-offline 192.0.2.1",
	"ping-result 192.0.2.1:False:0.000:0.000:0.000:1.0:0.000",
	"updown-online 192.0.2.1 0:00:00:12",
	"ddns-ip-update 203.0.113.9 unknown",
	"ddns-no-update",
}

// TestConsumerOrder: every action event runs once, in journal order, with
// the full argv; non-action events never reach the script; the cursor is
// synced after each run and ends at the last event.
func TestConsumerOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newFakeJournal()
		r := &fakeRunner{}
		c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Action: "/act", Instance: "main", Logger: testLogger(t)}
		evs := mixed()
		// Some events exist before the start, the rest arrive while it runs.
		if _, err := j.Append(t.Context(), evs[:4]...); err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, c)
		synctest.Wait()
		for _, e := range evs[4:] {
			if _, err := j.Append(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := r.commands(); !slices.Equal(got, mixedWant) {
			t.Errorf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(mixedWant, "\n"))
		}
		r.mu.Lock()
		first := r.runs[0]
		r.mu.Unlock()
		if want := []string{"/act", "main", "0", "updown-offline", "192.0.2.1"}; !slices.Equal(first.Argv, want) {
			t.Errorf("argv %q, want %q", first.Argv, want)
		}
		if !slices.Contains(first.Env, "IMON_SEQ=2") || !slices.Contains(first.Env, "IMON_MONITOR=updown") {
			t.Errorf("env %q", first.Env)
		}
		if want := []uint64{2, 3, 5, 7, 8}; !slices.Equal(j.syncs, want) {
			t.Errorf("durable cursor syncs %v, want one after each run %v", j.syncs, want)
		}
		if got := j.Cursor(action.CursorName); got != 9 {
			t.Errorf("cursor %d, want 9", got)
		}
	})
}

// TestConsumerAtLeastOnce: a crash while a script runs re-runs exactly that
// event on the next start; the events before it are not run again.
func TestConsumerAtLeastOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newFakeJournal()
		if _, err := j.Append(t.Context(), mixed()...); err != nil {
			t.Fatal(err)
		}
		ctx, crash := context.WithCancel(t.Context())
		r := &fakeRunner{result: func(_ context.Context, c action.Command) action.Result {
			if c.Argv[3] == event.KindUpdownOnline { // the process dies during this run
				crash()
				return action.Result{Exit: -1, Canceled: true}
			}
			return action.Result{}
		}}
		c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Action: "/act", Instance: "main", Logger: testLogger(t)}
		if err := c.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := j.durableCursor(); got != 3 {
			t.Fatalf("durable cursor after the crash %d, want 3 (the last finished run)", got)
		}
		j.crash()

		r.result = nil
		c2 := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Action: "/act", Instance: "main", Logger: testLogger(t)}
		stop := runConsumer(t, c2)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		want := []string{mixedWant[0], mixedWant[1], mixedWant[2], mixedWant[2], mixedWant[3], mixedWant[4]}
		if got := r.commands(); !slices.Equal(got, want) {
			t.Errorf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestConsumerSkipsOld: action events older than MaxAge when read are
// journaled as action-skipped (the first ones each, a long run as a summary)
// and not run; fresh events after them run.
func TestConsumerSkipsOld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newFakeJournal()
		now := time.Now()
		var old []event.Event
		for i := range 50 {
			e := ev(event.MonitorPing, event.KindPingResult, fmt.Sprintf("192.0.2.1:True:1.0:1.0:1.0:0.0:0.%d", i))
			e.Time = now.Add(-3 * time.Hour).Add(time.Duration(i) * time.Second)
			old = append(old, e)
		}
		old[10].Kind = event.KindAgentStart // a non-action event among them
		fresh := ev(event.MonitorUpdown, event.KindUpdownOffline, "192.0.2.1")
		fresh.Time = now.Add(-59 * time.Minute) // younger than MaxAge
		if _, err := j.Append(t.Context(), append(old, fresh)...); err != nil {
			t.Fatal(err)
		}
		r := &fakeRunner{}
		c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Action: "/act", Instance: "main",
			MaxAge: time.Hour, Logger: testLogger(t)}
		stop := runConsumer(t, c)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := r.commands(), []string{"updown-offline 192.0.2.1"}; !slices.Equal(got, want) {
			t.Errorf("runs %q, want only %q", got, want)
		}
		skipped := j.ofKind(event.KindActionSkipped)
		if len(skipped) != 21 {
			t.Fatalf("%d action-skipped events, want 20 detailed + 1 summary", len(skipped))
		}
		var d struct {
			Seq     uint64  `json:"seq"`
			Kind    string  `json:"kind"`
			AgeS    float64 `json:"age_s"`
			LastSeq uint64  `json:"last_seq"`
			Count   int     `json:"count"`
		}
		if err := skipped[0].DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if d.Seq != 1 || d.Kind != event.KindPingResult || d.AgeS != (3*time.Hour).Seconds() {
			t.Errorf("first skip data %+v", d)
		}
		if skipped[0].Level != event.LevelWarn || skipped[0].Monitor != event.MonitorAction || skipped[0].Instance != "main" {
			t.Errorf("skip event %+v", skipped[0])
		}
		if err := skipped[19].DecodeData(&d); err != nil || d.Seq != 21 {
			t.Errorf("20th detailed skip is seq %d (err %v), want 21 (seq 11 is not an action)", d.Seq, err)
		}
		d = struct {
			Seq     uint64  `json:"seq"`
			Kind    string  `json:"kind"`
			AgeS    float64 `json:"age_s"`
			LastSeq uint64  `json:"last_seq"`
			Count   int     `json:"count"`
		}{}
		if err := skipped[20].DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if d.Seq != 22 || d.LastSeq != 50 || d.Count != 29 {
			t.Errorf("summary %+v, want seq 22..50, count 29", d)
		}
		if got := j.Cursor(action.CursorName); got < 51 {
			t.Errorf("cursor %d, want past the fresh event 51", got)
		}
	})
}

// TestConsumerFailures: a failing or timed-out script is journaled as
// action-failed (level error, with exit, reason and output) and the next
// event still runs.
func TestConsumerFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newFakeJournal()
		if _, err := j.Append(t.Context(), mixed()...); err != nil {
			t.Fatal(err)
		}
		r := &fakeRunner{result: func(_ context.Context, c action.Command) action.Result {
			switch c.Argv[3] {
			case event.KindUpdownOffline:
				return action.Result{Exit: 3, Output: "no route\n"}
			case event.KindPingResult:
				return action.Result{Exit: -1, Signal: "killed", TimedOut: true, Duration: 30 * time.Second}
			}
			return action.Result{}
		}}
		c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Action: "/act", Instance: "main", Logger: testLogger(t)}
		stop := runConsumer(t, c)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := r.commands(); !slices.Equal(got, mixedWant) {
			t.Errorf("runs %q, want all of %q", got, mixedWant)
		}
		failed := j.ofKind(event.KindActionFailed)
		if len(failed) != 2 {
			t.Fatalf("%d action-failed events, want 2", len(failed))
		}
		var d struct {
			Seq    uint64 `json:"seq"`
			Kind   string `json:"kind"`
			Exit   int    `json:"exit"`
			Reason string `json:"reason"`
			Output string `json:"output"`
		}
		if err := failed[0].DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if d.Seq != 2 || d.Kind != event.KindUpdownOffline || d.Exit != 3 || d.Reason != "exit status 3" || d.Output != "no route\n" {
			t.Errorf("action-failed data %+v", d)
		}
		if failed[0].Level != event.LevelError || !strings.Contains(failed[0].Msg, "/act failed for updown-offline") {
			t.Errorf("action-failed event %+v", failed[0])
		}
		if err := failed[1].DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if d.Seq != 3 || !strings.Contains(d.Reason, "timed out") {
			t.Errorf("timeout action-failed data %+v", d)
		}
	})
}

// TestConsumerNoAction: without an action script nothing runs, but the
// cursor follows the journal.
func TestConsumerNoAction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newFakeJournal()
		if _, err := j.Append(t.Context(), mixed()...); err != nil {
			t.Fatal(err)
		}
		r := &fakeRunner{}
		c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Instance: "main", Logger: testLogger(t)}
		stop := runConsumer(t, c)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := r.commands(); len(got) != 0 {
			t.Errorf("script ran without an action configured: %q", got)
		}
		if got := j.Cursor(action.CursorName); got != 9 {
			t.Errorf("cursor %d, want 9", got)
		}
	})
}

// TestConsumerRetention: a cursor behind the journal's first event (removed
// by retention) continues at the first event.
func TestConsumerRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newFakeJournal()
		if _, err := j.Append(t.Context(), mixed()...); err != nil {
			t.Fatal(err)
		}
		j.first = 5
		r := &fakeRunner{}
		c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Action: "/act", Instance: "main", Logger: testLogger(t)}
		stop := runConsumer(t, c)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := r.commands(), mixedWant[2:]; !slices.Equal(got, want) {
			t.Errorf("runs %q, want %q", got, want)
		}
		sk := j.ofKind(event.KindActionSkipped)
		if len(sk) != 1 || !strings.Contains(string(sk[0].Data), `"count":4`) || !strings.Contains(string(sk[0].Data), `"last_seq":4`) {
			t.Errorf("action-skipped %v, want one for seq 1-4", sk)
		}
	})
}

// TestConsumerRetentionReported (issue 11.5): 20,000 action events are
// pending behind a slow script when retention (a small max-bytes) deletes
// most of them. The deleted range is journaled as one action-skipped event
// with its count and seq range (before: silently gone).
func TestConsumerRetentionReported(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"), journal.Options{MaxBytes: 1 << 20, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := t.Context()
	const pending = 20000
	for i := 0; i < pending; i += 1000 {
		evs := make([]event.Event, 1000)
		for k := range evs {
			evs[k] = ev(event.MonitorUpdown, event.KindUpdownOffline, fmt.Sprintf("192.0.2.%d", (i+k)%250+1))
		}
		if _, err := j.Append(ctx, evs...); err != nil {
			t.Fatal(err)
		}
	}
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := &fakeRunner{result: func(ctx context.Context, _ action.Command) action.Result {
		once.Do(func() { close(started) })
		select { // the slow script: the first run waits for retention
		case <-release:
		case <-ctx.Done():
		}
		return action.Result{}
	}}
	c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Runner: r, Action: "/act", Instance: "main", Logger: testLogger(t)}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(cctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-started // event 1 is running
	deleted, err := j.Retain(ctx)
	if err != nil || deleted < 1000 {
		t.Fatalf("Retain = %d, %v; want most of the backlog deleted", deleted, err)
	}
	first := j.FirstSeq()
	close(release)
	// Wait for the action-skipped event, bounded.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	var skipped []event.Event
	for after := uint64(pending); len(skipped) == 0; {
		if err := j.Wait(wctx, after); err != nil {
			t.Fatalf("no action-skipped journaled: %v", err)
		}
		evs, err := j.Read(after+1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind == event.KindActionSkipped {
				skipped = append(skipped, e)
			}
			after = e.Seq
		}
	}
	var data struct {
		Seq, LastSeq, Count uint64
		Reason              string
	}
	if err := json.Unmarshal(skipped[0].Data, &struct {
		Seq     *uint64 `json:"seq"`
		LastSeq *uint64 `json:"last_seq"`
		Count   *uint64 `json:"count"`
		Reason  *string `json:"reason"`
	}{&data.Seq, &data.LastSeq, &data.Count, &data.Reason}); err != nil {
		t.Fatal(err)
	}
	// The consumer had taken a first batch (read before retention) into
	// memory: the range starts after it, and ends before FirstSeq.
	if data.Seq < 2 || data.Seq > 257 || data.LastSeq != first-1 || data.Count != data.LastSeq-data.Seq+1 || data.Reason != "retention" || skipped[0].Level != event.LevelWarn {
		t.Errorf("action-skipped %s (level %q), want seq 2..257 to %d, its count, reason retention, level warn", skipped[0].Data, skipped[0].Level, first-1)
	}
}

// TestConsumerRealScript runs the real Exec through the consumer: the
// script records its argv; deleted while the agent runs, it gives
// action-failed and the consumer goes on with the next event.
func TestConsumerRealScript(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	s := writeScript(t, dir, "imon-action", `echo "$*" >> `+log+"\necho ran $4\n")
	j := newFakeJournal()
	c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Action: s, Instance: "main", NoSyslog: true,
		Timeout: 20 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	appendAndWait := func(e event.Event) {
		t.Helper()
		out, err := j.Append(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		waitCursor(t, j, out[0].Seq)
	}
	appendAndWait(ev(event.MonitorUpdown, event.KindUpdownOffline, "192.0.2.1"))
	if err := os.Remove(s); err != nil {
		t.Fatal(err)
	}
	appendAndWait(ev(event.MonitorUpdown, event.KindUpdownOnline, "192.0.2.1", "0:00:00:03"))
	writeScript(t, dir, "imon-action", `echo "$*" >> `+log+"\n")
	appendAndWait(ev(event.MonitorDDNS, event.KindDDNSNoUpdate))

	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if want := "main 1 updown-offline 192.0.2.1\nmain 1 ddns-no-update\n"; string(calls) != want {
		t.Errorf("script calls:\n%s\nwant:\n%s", calls, want)
	}
	failed := j.ofKind(event.KindActionFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].Msg, "no such file or directory") {
		t.Fatalf("action-failed events: %+v", failed)
	}
}

// waitCursor waits until the consumer's cursor reached seq.
func waitCursor(t *testing.T, j *fakeJournal, seq uint64) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		j.mu.Lock()
		got, changed := j.lazy[action.CursorName], j.changed
		j.mu.Unlock()
		if got >= seq {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("cursor stuck at %d, want %d", got, seq)
		}
	}
}
