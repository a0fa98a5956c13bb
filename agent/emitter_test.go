package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/monitor"
	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
)

// fakeJournal is an in-memory Journal whose appends fail with failErr while
// set, or block until unblocked while hang is set. It keeps the Time the
// emitter set, as the journal does.
type fakeJournal struct {
	mu      sync.Mutex
	evs     []event.Event
	failErr error
	hang    chan struct{} // non-nil: Append waits for it (or ctx)
	deaf    bool          // while hanging, ignore ctx (a commit stuck in fsync)
	appends int
}

func (f *fakeJournal) Follow(ctx context.Context, from uint64, fl event.Follower) (uint64, error) {
	return journal.Follow(ctx, f, from, fl)
}

func (f *fakeJournal) fail(err error) { f.mu.Lock(); f.failErr = err; f.mu.Unlock() }

func (f *fakeJournal) Append(ctx context.Context, evs ...event.Event) ([]event.Event, error) {
	f.mu.Lock()
	hang, deaf := f.hang, f.deaf
	f.mu.Unlock()
	if hang != nil && deaf {
		<-hang
	} else if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, fmt.Errorf("append: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends++
	if f.failErr != nil {
		return nil, f.failErr
	}
	out := make([]event.Event, len(evs))
	for i, ev := range evs {
		ev.Seq = uint64(len(f.evs) + 1)
		f.evs = append(f.evs, ev)
		out[i] = ev
	}
	return out, nil
}

func (f *fakeJournal) all() []event.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event.Event(nil), f.evs...)
}

func (f *fakeJournal) Read(from uint64, max int) ([]event.Event, error) { return nil, nil }
func (f *fakeJournal) Wait(ctx context.Context, after uint64) error {
	<-ctx.Done()
	return ctx.Err()
}
func (f *fakeJournal) FirstSeq() uint64 { return 1 }
func (f *fakeJournal) LastSeq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.evs))
}
func (f *fakeJournal) SeqAt(time.Time) (uint64, error)                          { return 0, nil }
func (f *fakeJournal) Latest(string) (event.Event, bool)                        { return event.Event{}, false }
func (f *fakeJournal) Cursor(string) uint64                                     { return 0 }
func (f *fakeJournal) SetCursor(string, uint64)                                 {}
func (f *fakeJournal) SyncCursor(ctx context.Context, n string, s uint64) error { return nil }

// recDirect records the events logged directly.
type recDirect struct {
	mu        sync.Mutex
	now, gone []event.Event
}

func (r *recDirect) Now(ev event.Event)    { r.mu.Lock(); r.now = append(r.now, ev); r.mu.Unlock() }
func (r *recDirect) Forget(ev event.Event) { r.mu.Lock(); r.gone = append(r.gone, ev); r.mu.Unlock() }
func (r *recDirect) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.now), len(r.gone)
}

var errROFS = fmt.Errorf("journal x: commit: write x: %w", syscall.EROFS)

func newTestAgent(j Journal, d DirectLogger, logs *nettest.Buffer, queueMax int) *Agent {
	return New(Options{Instance: "t", Journal: j, Direct: d, QueueMax: queueMax, FailoverEnabled: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), JournalSettle: time.Nanosecond})
}

// waitFlushed makes the emitter try at once until its queue is empty.
func waitFlushed(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for a.em.flush(ctx) > 0 {
		if ctx.Err() != nil {
			t.Fatal("queue not flushed")
		}
	}
	// Wait for the writer to end the episode (settle time 1 ns).
	for {
		a.em.mu.Lock()
		done := !a.em.busy && len(a.em.queue) == 0
		a.em.mu.Unlock()
		if done {
			return
		}
		a.em.mu.Lock()
		att := a.em.attempt
		a.em.mu.Unlock()
		select {
		case <-att:
		case <-ctx.Done():
			t.Fatal("writer did not finish")
		}
	}
}

// TestEmitQueuesWhileUnwritable: with the journal on a read-only file
// system Emit succeeds at once, every event is logged directly, health is
// degraded, a command is refused; once writable the queue is journaled in
// emission order with the original times, framed by journal-unwritable and
// journal-writable, and nothing is logged twice.
func TestEmitQueuesWhileUnwritable(t *testing.T) {
	j := &fakeJournal{}
	d := &recDirect{}
	var logs nettest.Buffer
	a := newTestAgent(j, d, &logs, 100)
	defer a.em.close()
	ctx := context.Background()
	if ev, err := a.Emit(ctx, event.New("ping", event.KindPingResult, "r0", nil)); err != nil || ev.Seq != 1 {
		t.Fatalf("healthy emit: seq %d err %v", ev.Seq, err)
	}
	j.fail(errROFS)
	var times []time.Time
	for i := range 10 {
		ev, err := a.Emit(ctx, event.New("failover", event.KindFailoverWANDown, fmt.Sprintf("down %d", i), nil))
		if err != nil || ev.Seq != 0 {
			t.Fatalf("emit %d while read-only: seq %d err %v", i, ev.Seq, err)
		}
		times = append(times, ev.Time)
	}
	if h := a.Health(); !h.Degraded || len(h.Problems) != 1 || h.Problems[0].What != "journal" || h.Problems[0].Queued != 11 {
		t.Errorf("health while read-only: %+v", h)
	}
	if _, err := a.FailoverCommand(ctx, []byte("primary"), "cli"); !errors.Is(err, ErrJournalUnwritable) {
		t.Errorf("command while read-only: %v, want ErrJournalUnwritable", err)
	}
	if n, _ := d.counts(); n != 11 { // 10 + journal-unwritable
		d.mu.Lock()
		for _, ev := range d.now {
			t.Logf("logged: %s %s", ev.Kind, ev.Msg)
		}
		d.mu.Unlock()
		t.Errorf("%d events logged directly, want 11", n)
	}
	if n := strings.Count(logs.String(), "journal not writable"); n != 1 {
		t.Errorf(`"journal not writable" logged %d times, want once:\n%s`, n, logs.String())
	}

	j.fail(nil)
	waitFlushed(t, a)
	evs := j.all()
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	want := []string{event.KindPingResult, event.KindFailoverWANDown, event.KindJournalUnwritable}
	for range 9 {
		want = append(want, event.KindFailoverWANDown)
	}
	want = append(want, event.KindJournalWritable)
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("journal kinds\n%v\nwant\n%v", kinds, want)
	}
	k := 0
	for _, ev := range evs {
		if ev.Kind != event.KindFailoverWANDown {
			continue
		}
		if ev.Msg != fmt.Sprintf("down %d", k) || !ev.Time.Equal(times[k]) {
			t.Errorf("queued event %d: %q at %v, want %q at %v", k, ev.Msg, ev.Time, fmt.Sprintf("down %d", k), times[k])
		}
		k++
	}
	if h := a.Health(); h.Degraded {
		t.Errorf("health after the episode: %+v", h)
	}
	if !strings.Contains(logs.String(), "journal writable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestEmitQueueBound: beyond QueueMax the oldest queued events are dropped
// and reported as one events-dropped event (count and kinds), journaled
// before the events that were kept; the directly logged dropped events
// are forgotten by the log.
func TestEmitQueueBound(t *testing.T) {
	j := &fakeJournal{}
	d := &recDirect{}
	var logs nettest.Buffer
	a := newTestAgent(j, d, &logs, 5)
	defer a.em.close()
	ctx := context.Background()
	j.fail(fmt.Errorf("commit: %w", journal.ErrNoSpace))
	for i := range 20 {
		kind := event.KindPingResult
		if i%4 == 0 {
			kind = event.KindUpdownOffline
		}
		if _, err := a.Emit(ctx, event.New("m", kind, fmt.Sprintf("e%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs.String(), "journal full") {
		t.Errorf("ENOSPC not logged as journal full:\n%s", logs.String())
	}
	h := a.Health()
	if len(h.Problems) != 1 || h.Problems[0].Queued != 5 || h.Problems[0].Dropped != 16 {
		t.Errorf("health: %+v, want 5 queued, 16 dropped (20 + journal-unwritable - 5)", h)
	}
	if _, gone := d.counts(); gone != 16 {
		t.Errorf("%d dropped events forgotten by the log, want 16", gone)
	}
	j.fail(nil)
	waitFlushed(t, a)
	evs := j.all()
	if len(evs) != 7 {
		t.Fatalf("journaled %d events, want events-dropped + 5 kept + journal-writable: %v", len(evs), evs)
	}
	if evs[0].Kind != event.KindEventsDropped {
		t.Fatalf("first event %s, want events-dropped", evs[0].Kind)
	}
	var data struct {
		Dropped int            `json:"dropped"`
		Kinds   map[string]int `json:"kinds"`
	}
	if err := json.Unmarshal(evs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	// Dropped: journal-unwritable was queued after e0, so the oldest 16
	// are e0, journal-unwritable, e1..e14.
	if data.Dropped != 16 || data.Kinds[event.KindUpdownOffline] != 4 || data.Kinds[event.KindPingResult] != 11 || data.Kinds[event.KindJournalUnwritable] != 1 {
		t.Errorf("events-dropped data %s", evs[0].Data)
	}
	for i, ev := range evs[1:6] {
		if want := fmt.Sprintf("e%d", 15+i); ev.Msg != want {
			t.Errorf("kept event %d: %q, want %q", i, ev.Msg, want)
		}
	}
	if !evs[0].Time.After(evs[0].Time.Add(-time.Hour)) || evs[0].Time.After(evs[1].Time) {
		t.Errorf("events-dropped at %v after the first kept event %v", evs[0].Time, evs[1].Time)
	}
	if evs[6].Kind != event.KindJournalWritable {
		t.Errorf("last event %s, want journal-writable", evs[6].Kind)
	}
}

// TestEmitHungJournal: an append that hangs (ignoring its deadline, as a
// commit stuck in fsync) holds a monitor for EmitWait at most; once it has
// hung for AppendTimeout the agent is degraded and later events are queued
// at once; all are journaled in order once it returns.
func TestEmitHungJournal(t *testing.T) {
	j := &fakeJournal{hang: make(chan struct{}), deaf: true}
	var logs nettest.Buffer
	d := &recDirect{}
	a := New(Options{Instance: "t", Journal: j, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Direct: d,
		EmitWait: 50 * time.Millisecond, AppendTimeout: 100 * time.Millisecond, JournalSettle: time.Nanosecond})
	defer a.em.close()
	ctx := context.Background()
	start := time.Now()
	if ev, err := a.Emit(ctx, event.New("failover", event.KindFailoverStandby, "0", nil)); err != nil || ev.Seq != 0 {
		t.Fatalf("emit: seq %d err %v", ev.Seq, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("emit on a hung journal took %v, want about EmitWait", d)
	}
	for !a.Health().Degraded {
		if time.Since(start) > 10*time.Second {
			t.Fatal("not degraded after the append hung for AppendTimeout")
		}
		time.Sleep(10 * time.Millisecond) // polling Health, which checks the clock
	}
	for i := 1; i < 3; i++ {
		t0 := time.Now()
		if ev, err := a.Emit(ctx, event.New("failover", event.KindFailoverStandby, fmt.Sprint(i), nil)); err != nil || ev.Seq != 0 {
			t.Fatalf("emit %d: seq %d err %v", i, ev.Seq, err)
		}
		if d := time.Since(t0); d > 40*time.Millisecond {
			t.Errorf("emit %d while degraded took %v, want no wait", i, d)
		}
	}
	if n, _ := d.counts(); n != 4 { // the event in flight, journal-unwritable, 2 queued
		t.Errorf("%d events logged directly, want 4", n)
	}
	if !strings.Contains(logs.String(), "journal write hung") {
		t.Errorf("hung journal not logged:\n%s", logs.String())
	}
	j.mu.Lock()
	close(j.hang)
	j.hang = nil
	j.mu.Unlock()
	waitFlushed(t, a)
	var got []string
	for _, ev := range j.all() {
		got = append(got, ev.Kind+":"+ev.Msg)
	}
	want := []string{event.KindFailoverStandby + ":0", event.KindJournalUnwritable, event.KindFailoverStandby + ":1", event.KindFailoverStandby + ":2", event.KindJournalWritable}
	if len(got) != len(want) {
		t.Fatalf("journal after the hang: %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("journal[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestWatchdogLiveness: Alive is called while every monitor loop answers
// its liveness requests, and stops when one loop is stuck.
func TestWatchdogLiveness(t *testing.T) {
	j := &fakeJournal{}
	stuck := make(chan struct{})
	alive := make(chan struct{}, 100)
	answering := monitorFunc{name: "a", run: func(ctx context.Context, env monitor.Env) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case f := <-env.Liveness:
				f()
			}
		}
	}}
	stuckMon := monitorFunc{name: "b", run: func(ctx context.Context, env monitor.Env) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case f := <-env.Liveness:
				f()
			case <-stuck:
				<-ctx.Done() // stuck in a call: answers nothing more
				return nil
			}
		}
	}}
	a := New(Options{Instance: "t", Journal: j, Monitors: []monitor.Monitor{answering, stuckMon},
		Alive: func() { alive <- struct{}{} }, WatchdogInterval: 20 * time.Millisecond, DrainTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for range 3 {
		select {
		case <-alive:
		case <-time.After(5 * time.Second):
			t.Fatal("no watchdog ping while both loops answer")
		}
	}
	close(stuck)
	// Pings stop once the loop has not answered for two intervals.
	deadline := time.After(500 * time.Millisecond)
	late := 0
	for {
		select {
		case <-alive:
			late++
		case <-deadline:
			if late > 4 {
				t.Errorf("%d watchdog pings after a loop got stuck, want at most 4", late)
			}
			return
		}
	}
}

type monitorFunc struct {
	name string
	run  func(ctx context.Context, env monitor.Env) error
}

func (m monitorFunc) Name() string                                   { return m.name }
func (m monitorFunc) Run(ctx context.Context, env monitor.Env) error { return m.run(ctx, env) }

// timedJournal is a fakeJournal that notes when each Append began.
type timedJournal struct {
	*fakeJournal
	mu sync.Mutex
	at []time.Time
}

func (j *timedJournal) Append(ctx context.Context, evs ...event.Event) ([]event.Event, error) {
	j.mu.Lock()
	j.at = append(j.at, time.Now())
	j.mu.Unlock()
	return j.fakeJournal.Append(ctx, evs...)
}

// TestEmitRetrySchedule: while the journal cannot be written, the writer
// tries again after 1 s, 1 s, then doubling to 10 s (internal/backoff's
// schedule); an append that succeeds starts it again.
func TestEmitRetrySchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fj := &fakeJournal{}
		fj.fail(errROFS)
		j := &timedJournal{fakeJournal: fj}
		a := New(Options{Instance: "t", Journal: j, Direct: &recDirect{}, Logger: slog.New(slog.DiscardHandler), JournalSettle: time.Hour})
		defer a.em.close()
		gaps := func() []time.Duration {
			j.mu.Lock()
			defer j.mu.Unlock()
			var d []time.Duration
			for i := 1; i < len(j.at); i++ {
				d = append(d, j.at[i].Sub(j.at[i-1]))
			}
			return d
		}
		if _, err := a.Emit(t.Context(), event.New("ping", event.KindPingResult, "r", nil)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Second)
		synctest.Wait()
		s := time.Second
		if got, want := gaps(), []time.Duration{s, s, 2 * s, 4 * s, 8 * s, 10 * s, 10 * s}; !slices.Equal(got, want) {
			t.Fatalf("retries after %v, want %v", got, want)
		}
		// One success (the queue drains), then a failure: 1 s again.
		fj.fail(nil)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		fj.fail(errROFS)
		j.mu.Lock()
		j.at = nil
		j.mu.Unlock()
		if _, err := a.Emit(t.Context(), event.New("ping", event.KindPingResult, "r", nil)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if got, want := gaps(), []time.Duration{s, 2 * s}; !slices.Equal(got, want) {
			t.Fatalf("after a success, retries after %v, want %v", got, want)
		}
	})
}
