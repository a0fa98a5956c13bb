package journal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"imon/event"
	"imon/journal"
	"imon/journal/journaltest"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func mustAppend(t testing.TB, j *journal.Journal, evs ...event.Event) []event.Event {
	t.Helper()
	out, err := j.Append(context.Background(), evs...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return out
}

func mustRead(t testing.TB, j *journal.Journal, from uint64, max int) []event.Event {
	t.Helper()
	evs, err := j.Read(from, max)
	if err != nil {
		t.Fatalf("read from %d: %v", from, err)
	}
	return evs
}

func seqs(evs []event.Event) []uint64 {
	var s []uint64
	for _, ev := range evs {
		s = append(s, ev.Seq)
	}
	return s
}

func TestAppendRead(t *testing.T) {
	clock := newClock(t0.Add(1234567 * time.Nanosecond))
	j := journaltest.Open(t, journal.Options{Now: clock.Now})
	if got := [2]uint64{j.FirstSeq(), j.LastSeq()}; got != [2]uint64{1, 0} {
		t.Fatalf("empty journal: FirstSeq, LastSeq = %v, want [1 0]", got)
	}
	in := []event.Event{sampleEvent(1), sampleEvent(2)}
	in[0].Seq = 99                                          // ignored: the journal assigns it
	in[1].Time = t0.Add(-time.Hour + 1500*time.Microsecond) // kept (to the ms): an event queued by the agent
	out := mustAppend(t, j, in...)
	if in[0].Seq != 99 {
		t.Errorf("Append modified the caller's slice")
	}
	wantTimes := []time.Time{t0.Add(time.Millisecond), t0.Add(-time.Hour + time.Millisecond)} // truncated to ms
	for i, ev := range out {
		if ev.Seq != uint64(i+1) || !ev.Time.Equal(wantTimes[i]) || ev.Time.Location() != time.UTC {
			t.Errorf("event %d stored with seq %d time %s, want %d %s UTC", i, ev.Seq, ev.Time, i+1, wantTimes[i])
		}
	}
	clock.Add(time.Second)
	out = append(out, mustAppend(t, j, sampleEvent(3))...)

	got := mustRead(t, j, 1, 0)
	if !reflect.DeepEqual(got, out) {
		t.Fatalf("Read(1, 0):\n got %v\nwant %v", got, out)
	}
	for _, tc := range []struct {
		from uint64
		max  int
		want []uint64
	}{
		{0, 0, []uint64{1, 2, 3}},
		{2, 0, []uint64{2, 3}},
		{2, 1, []uint64{2}},
		{3, 5, []uint64{3}},
		{4, 0, nil},
		{1000, 10, nil},
	} {
		if got := seqs(mustRead(t, j, tc.from, tc.max)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Read(%d, %d) = %v, want %v", tc.from, tc.max, got, tc.want)
		}
	}
	if st := j.Stats(); st.Events != 3 || st.FirstSeq != 1 || st.LastSeq != 3 || st.FileBytes == 0 || st.Path != j.Path() {
		t.Errorf("Stats = %+v", st)
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	j := journaltest.Open(t)
	for name, ev := range map[string]event.Event{
		"no monitor":   {Kind: "k"},
		"no kind":      {Monitor: "m"},
		"long monitor": {Monitor: strings.Repeat("m", 300), Kind: "k"},
		"huge":         {Monitor: "m", Kind: "k", Data: json.RawMessage(`"` + strings.Repeat("x", journal.MaxRecordBytes) + `"`)},
		"bad data":     {Monitor: "m", Kind: "k", Data: json.RawMessage(`{"a":`)},
		"bad state":    {Monitor: "m", Kind: "k", State: json.RawMessage(`nope`)},
	} {
		_, err := j.Append(context.Background(), sampleEvent(1), ev)
		if !errors.Is(err, journal.ErrInvalidEvent) {
			t.Errorf("%s: Append = %v, want ErrInvalidEvent", name, err)
		}
	}
	if j.LastSeq() != 0 {
		t.Errorf("LastSeq = %d after rejected appends, want 0 (nothing of a rejected Append is stored)", j.LastSeq())
	}
	if err := j.SyncCursor(context.Background(), strings.Repeat("c", 300), 1); err == nil {
		t.Errorf("SyncCursor with a 300-byte name succeeded")
	}
	j.SetCursor(strings.Repeat("c", 300), 1) // ignored: it would fail every commit
	if err := j.SyncCursor(context.Background(), "ok", 1); err != nil {
		t.Errorf("SyncCursor after an invalid SetCursor = %v", err)
	}
	if out, err := j.Append(context.Background()); err != nil || out != nil {
		t.Errorf("Append() = %v, %v, want nil, nil", out, err)
	}
}

// twoClocks is a fake wall clock and a fake monotonic clock, moved
// together by Add and apart by Jump.
type twoClocks struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func (c *twoClocks) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *twoClocks) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

func (c *twoClocks) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall, c.mono = c.wall.Add(d), c.mono+d
}

func (c *twoClocks) Jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
}

// kinds returns the kinds of evs, "ping" for sampleEvent's.
func kinds(evs []event.Event) []string {
	var k []string
	for _, ev := range evs {
		if ev.Kind == event.KindPingResult {
			k = append(k, "ping")
			continue
		}
		k = append(k, ev.Kind)
	}
	return k
}

// TestClockJump: the wall clock jumps a year ahead, then a year behind,
// while the agent runs. Every event carries the real wall time (no frozen
// stamps), each jump is journaled once as clock-jump, and retention by age
// deletes nothing (the clock looks wrong), not even the old events.
func TestClockJump(t *testing.T) {
	const year = 365 * 24 * time.Hour
	for _, jump := range []time.Duration{year, -year} {
		t.Run(fmt.Sprint(jump), func(t *testing.T) {
			c := &twoClocks{wall: t0}
			path := filepath.Join(t.TempDir(), "j.db")
			j, err := journal.Open(path, journal.Options{Now: c.Now, Mono: c.Mono, MaxAge: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			// An earlier run's event, 12 hours old.
			mustAppend(t, j, sampleEvent(1))
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			c.Add(12 * time.Hour)
			j = journaltest.OpenPath(t, path, journal.Options{Now: c.Now, Mono: c.Mono, MaxAge: 24 * time.Hour})
			mustAppend(t, j, sampleEvent(2)) // 2
			c.Add(time.Second)
			c.Jump(jump)
			ev := mustAppend(t, j, sampleEvent(3))[0] // clock-jump 3, then 4
			if want := t0.Add(12*time.Hour + time.Second + jump); ev.Seq != 4 || !ev.Time.Equal(want) {
				t.Errorf("after the jump: seq %d at %s, want 4 at %s (the clock's time)", ev.Seq, ev.Time, want)
			}
			c.Add(time.Second)
			ev = mustAppend(t, j, sampleEvent(5))[0]
			if want := t0.Add(12*time.Hour + 2*time.Second + jump); ev.Seq != 5 || !ev.Time.Equal(want) {
				t.Errorf("a second later: seq %d at %s, want 5 at %s (time not frozen)", ev.Seq, ev.Time, want)
			}
			evs := mustRead(t, j, 1, 0)
			if got, want := kinds(evs), []string{"ping", "ping", event.KindClockJump, "ping", "ping"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("kinds %v, want %v", got, want)
			}
			var data struct {
				JumpS float64 `json:"jump_s"`
			}
			if err := json.Unmarshal(evs[2].Data, &data); err != nil || data.JumpS != jump.Seconds() {
				t.Errorf("clock-jump data %s, want jump_s %v", evs[2].Data, jump.Seconds())
			}
			c.Add(48 * time.Hour) // every event is past MaxAge by the clock
			if n, err := j.Retain(context.Background()); err != nil || n != 0 {
				t.Errorf("Retain after a clock jump = %d, %v, want 0 (only the size bound deletes)", n, err)
			}
		})
	}
}

// TestClockBehindAtOpen: the journal's last event is a year in the future
// when it is opened (the previous run had the clock a year ahead). One
// clock-jump event says so; new events carry the clock's time; retention
// by age keeps everything.
func TestClockBehindAtOpen(t *testing.T) {
	const year = 365 * 24 * time.Hour
	path := filepath.Join(t.TempDir(), "j.db")
	clock := newClock(t0.Add(year))
	j, err := journal.Open(path, journal.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, sampleEvent(1))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0)
	j = journaltest.OpenPath(t, path, journal.Options{Now: clock.Now, MaxAge: time.Hour})
	evs := mustAppend(t, j, sampleEvent(2), sampleEvent(3))
	if evs[0].Seq != 3 || !evs[0].Time.Equal(t0) || !evs[1].Time.Equal(t0) {
		t.Errorf("events %d at %s, %d at %s; want 3 and 4 at %s", evs[0].Seq, evs[0].Time, evs[1].Seq, evs[1].Time, t0)
	}
	all := mustRead(t, j, 1, 0)
	if got, want := kinds(all), []string{"ping", event.KindClockJump, "ping", "ping"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	clock.Set(t0.Add(2 * year))
	if n, err := j.Retain(context.Background()); err != nil || n != 0 {
		t.Errorf("Retain = %d, %v, want 0", n, err)
	}
}

// TestRetentionKeepsThisRun: retention by age deletes an earlier run's
// old events, but none of this run's before this run has lasted MaxAge by
// the monotonic clock, even when the wall clock (stepped less than a jump)
// says they are older.
func TestRetentionKeepsThisRun(t *testing.T) {
	c := &twoClocks{wall: t0}
	path := filepath.Join(t.TempDir(), "j.db")
	opt := journal.Options{Now: c.Now, Mono: c.Mono, MaxAge: 2 * time.Second}
	j, err := journal.Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, sampleEvent(1), sampleEvent(2))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	j = journaltest.OpenPath(t, path, opt)
	ev := mustAppend(t, j, sampleEvent(3))[0]
	c.Add(time.Second)
	c.Jump(4 * time.Second) // under the jump threshold: event 3 looks 5 s old
	if _, err := j.Retain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if j.FirstSeq() != ev.Seq {
		t.Errorf("FirstSeq %d, want %d: an event of this run was deleted", j.FirstSeq(), ev.Seq)
	}
	c.Add(2 * time.Second) // this run is 3 s old now: its old events go
	if n, err := j.Retain(context.Background()); err != nil || n != 1 {
		t.Errorf("Retain = %d, %v, want 1", n, err)
	}
}

func TestSeqAt(t *testing.T) {
	clock := newClock(t0)
	j := journaltest.Open(t, journal.Options{Now: clock.Now})
	// Seqs 1-3 at t0, 4 at t0+1s, 5-6 at t0+3s.
	mustAppend(t, j, sampleEvent(1), sampleEvent(2), sampleEvent(3))
	clock.Add(time.Second)
	mustAppend(t, j, sampleEvent(4))
	clock.Add(2 * time.Second)
	mustAppend(t, j, sampleEvent(5), sampleEvent(6))
	for _, tc := range []struct {
		at   time.Time
		want uint64
	}{
		{time.Time{}, 1},
		{t0.Add(-time.Hour), 1},
		{t0, 1},
		{t0.Add(time.Nanosecond), 4},
		{t0.Add(time.Second), 4},
		{t0.Add(1500 * time.Millisecond), 5},
		{t0.Add(3 * time.Second), 5},
		{t0.Add(3*time.Second + time.Millisecond), 7},
		{t0.Add(time.Hour), 7},
	} {
		got, err := j.SeqAt(tc.at)
		if err != nil || got != tc.want {
			t.Errorf("SeqAt(%s) = %d, %v, want %d", tc.at, got, err, tc.want)
		}
	}
}

func TestLatest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Latest("ddns"); ok {
		t.Fatal("Latest on an empty journal found something")
	}
	mustAppend(t, j,
		event.New("ddns", "ddns-ip-update", "", nil).WithState(map[string]string{"ip": "192.0.2.1"}),
		event.New("ddns", "ddns-check", "", nil), // no state: not a snapshot
		event.New("updown", "updown-offline", "", nil).WithState(map[string]bool{"online": false}),
	)
	mustAppend(t, j,
		event.New("ddns", "ddns-ip-update", "", nil).WithState(map[string]string{"ip": "192.0.2.2"}),
		event.New("ddns", "ddns-check", "", nil),
	)
	check := func(j *journal.Journal) {
		t.Helper()
		ev, ok := j.Latest("ddns")
		if !ok || ev.Seq != 4 || string(ev.State) != `{"ip":"192.0.2.2"}` {
			t.Errorf("Latest(ddns) = %+v, %v, want seq 4 with ip .2", ev, ok)
		}
		ev.State[0] = 'X' // callers get a copy
		if ev, _ := j.Latest("ddns"); string(ev.State) != `{"ip":"192.0.2.2"}` {
			t.Errorf("Latest shares its State with callers")
		}
		if ev, ok := j.Latest("updown"); !ok || ev.Seq != 3 || ev.Kind != "updown-offline" {
			t.Errorf("Latest(updown) = %+v, %v", ev, ok)
		}
		if _, ok := j.Latest("ping"); ok {
			t.Errorf("Latest(ping) found something")
		}
		if got := j.Snapshots(); len(got) != 2 || got[0].Monitor != "ddns" || got[1].Monitor != "updown" {
			t.Errorf("Snapshots = %v", got)
		}
	}
	check(j)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	check(j)
}

func TestCursors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Cursor("mqtt"); got != 0 {
		t.Errorf("Cursor of an unknown name = %d, want 0", got)
	}
	j.SetCursor("mqtt", 7)
	j.SetCursor("action", 3)
	j.SetCursor("mqtt", 9)
	if got := j.Cursor("mqtt"); got != 9 {
		t.Errorf("Cursor(mqtt) = %d, want 9", got)
	}
	if err := j.SyncCursor(context.Background(), "log", 5); err != nil {
		t.Fatal(err)
	}
	j.SetCursor("action", 4) // lazy: written at Close
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for name, want := range map[string]uint64{"mqtt": 9, "action": 4, "log": 5} {
		if got := j.Cursor(name); got != want {
			t.Errorf("after reopen, Cursor(%s) = %d, want %d", name, got, want)
		}
	}
}

func TestConcurrentAppends(t *testing.T) {
	j := journaltest.Open(t)
	const workers, calls = 32, 100
	type call struct {
		w, c int
		evs  []event.Event
	}
	results := make(chan call, workers*calls)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for c := range calls {
				n := 1 + (w+c)%3
				var evs []event.Event
				for k := range n {
					evs = append(evs, event.New("ping", "ping-result", fmt.Sprintf("%d/%d/%d", w, c, k), nil))
				}
				out, err := j.Append(context.Background(), evs...)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				results <- call{w, c, out}
			}
		})
	}
	// Readers and waiters run meanwhile.
	wg.Go(func() {
		var seen uint64
		for seen < 10 {
			if err := j.Wait(context.Background(), seen); err != nil {
				t.Error(err)
				return
			}
			seen = j.LastSeq()
			if _, err := j.Read(1, 50); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	close(results)
	bySeq := map[uint64]string{}
	total := 0
	for r := range results {
		for k, ev := range r.evs {
			if k > 0 && ev.Seq != r.evs[k-1].Seq+1 {
				t.Errorf("one Append's events are not contiguous: %v", seqs(r.evs))
			}
			if _, dup := bySeq[ev.Seq]; dup {
				t.Fatalf("seq %d assigned twice", ev.Seq)
			}
			bySeq[ev.Seq] = ev.Msg
			if want := fmt.Sprintf("%d/%d/%d", r.w, r.c, k); ev.Msg != want {
				t.Errorf("event %d: msg %q, want %q", ev.Seq, ev.Msg, want)
			}
			total++
		}
	}
	if j.LastSeq() != uint64(total) {
		t.Fatalf("LastSeq = %d, want %d", j.LastSeq(), total)
	}
	for _, ev := range mustRead(t, j, 1, 0) {
		if bySeq[ev.Seq] != ev.Msg {
			t.Errorf("stored event %d has msg %q, acknowledged %q", ev.Seq, ev.Msg, bySeq[ev.Seq])
		}
	}
	if c := j.Stats().Commits; c >= uint64(workers*calls) {
		t.Logf("no group commit happened: %d commits for %d appends", c, workers*calls)
	}
}

func TestWait(t *testing.T) {
	j := journaltest.Open(t)
	ctx := context.Background()
	mustAppend(t, j, sampleEvent(1))
	if err := j.Wait(ctx, 0); err != nil {
		t.Fatalf("Wait(0) with LastSeq 1 = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Wait(ctx, 1) }()
	select {
	case err := <-done:
		t.Fatalf("Wait(1) returned %v before any new event", err)
	default:
	}
	mustAppend(t, j, sampleEvent(2))
	if err := <-done; err != nil {
		t.Fatalf("Wait(1) = %v after an append", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- j.Wait(cctx, 5) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with cancelled ctx = %v", err)
	}

	go func() { done <- j.Wait(ctx, 5) }()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Wait across Close = %v, want ErrClosed", err)
	}
}

func TestClose(t *testing.T) {
	j := journaltest.Open(t)
	mustAppend(t, j, sampleEvent(1))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := j.Append(context.Background(), sampleEvent(2)); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := j.SyncCursor(context.Background(), "x", 1); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("SyncCursor after Close = %v, want ErrClosed", err)
	}
	if _, err := j.Read(1, 0); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
	if j.LastSeq() != 1 {
		t.Errorf("LastSeq after Close = %d", j.LastSeq())
	}
}

func TestCloseFlushesPendingAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := j.Append(context.Background(), sampleEvent(i))
			errs <- err
		})
	}
	// Close races with the appends: each either is journaled or gets ErrClosed.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	acked := 0
	for err := range errs {
		switch {
		case err == nil:
			acked++
		case !errors.Is(err, journal.ErrClosed):
			t.Errorf("Append racing Close = %v", err)
		}
	}
	j, err = journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.LastSeq() != uint64(acked) {
		t.Errorf("after reopen LastSeq = %d, acknowledged %d", j.LastSeq(), acked)
	}
}

func TestAppendCancelled(t *testing.T) {
	j := journaltest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := j.Append(ctx, sampleEvent(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled ctx = %v", err)
	}
	if got := mustAppend(t, j, sampleEvent(2)); got[0].Seq != 1 {
		t.Errorf("next append got seq %d, want 1 (the cancelled one was not journaled)", got[0].Seq)
	}
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "j.db")
	if _, err := journal.Open(path, journal.Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only Open of a missing file = %v, want ErrNotExist", err)
	}
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(path), path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700 | os.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %s, want %s", p, fi.Mode(), want)
		}
	}
	mustAppend(t, j, sampleEvent(1), sampleEvent(2))
	_, err = journal.Open(path, journal.Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("read-only Open while the agent holds it = %v, want ErrLocked", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ro2, err := journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("second read-only Open = %v (shared lock)", err)
	}
	ro2.Close()
	if got := seqs(mustRead(t, ro, 1, 0)); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Errorf("read-only Read = %v", got)
	}
	if _, err := ro.Append(context.Background(), sampleEvent(3)); !errors.Is(err, journal.ErrReadOnly) {
		t.Errorf("read-only Append = %v, want ErrReadOnly", err)
	}
	if err := ro.SyncCursor(context.Background(), "c", 1); !errors.Is(err, journal.ErrReadOnly) {
		t.Errorf("read-only SyncCursor = %v, want ErrReadOnly", err)
	}
	if _, err := journal.Open(path, journal.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, journal.ErrLocked) {
		t.Errorf("read-write Open while a reader holds it = %v, want ErrLocked", err)
	} else if want := fmt.Sprintf("is locked by a reader (pid %d", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("read-write Open while a reader holds it: %q, want it to say %q", err, want)
	}
}

func TestLocked(t *testing.T) {
	j := journaltest.Open(t)
	start := time.Now()
	_, err := journal.Open(j.Path(), journal.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %s with a 100ms LockTimeout", d)
	}
	cmd, _ := os.ReadFile("/proc/self/cmdline")
	self := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	if len(self) > 80 {
		self = self[:80] + "..."
	}
	want := fmt.Sprintf("journal %s is locked by a running imon agent (pid %d: %s): stop it, or use imon journal/status, which ask the running agent", j.Path(), os.Getpid(), self)
	if err.Error() != want {
		t.Errorf("message:\n got %q\nwant %q", err, want)
	}
	// The first journal is untouched.
	mustAppend(t, j, sampleEvent(1))
}
