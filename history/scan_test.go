package history

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
)

// noisy returns g's events with events the rollups ignore in between (a
// ddns-no-update, an updown-online without a State, a monitor-error),
// renumbered from 1.
func noisy(evs []event.Event) []event.Event {
	var out []event.Event
	for i, ev := range evs {
		if i%7 == 3 {
			extra := []event.Event{
				event.New(event.MonitorDDNS, event.KindDDNSNoUpdate, "no change", map[string]any{"ip": "198.51.100.1"}),
				event.New(event.MonitorUpdown, event.KindUpdownOnline, "", nil).WithArgs("192.0.2.1", "0:00:00:01"),
				event.New(event.MonitorPing, event.KindMonitorError, "boom", nil).WithState(map[string]any{"status": "down"}),
			}[i%3]
			extra.Time = ev.Time
			out = append(out, extra)
		}
		out = append(out, ev)
	}
	for i := range out {
		out[i].Seq = uint64(i + 1)
	}
	return out
}

// writeJournal appends evs (their times kept) to a new journal file.
func writeJournal(t *testing.T, path string, evs []event.Event) *journal.Journal {
	t.Helper()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	for i := 0; i < len(evs); i += 1000 {
		if _, err := j.Append(context.Background(), evs[i:min(i+1000, len(evs))]...); err != nil {
			t.Fatal(err)
		}
	}
	if j.LastSeq() != uint64(len(evs)) {
		t.Fatalf("journal holds %d events, want %d", j.LastSeq(), len(evs))
	}
	return j
}

// TestScanEqualsDecode: the rollups folded in from the records the journal
// lends (Scan, ApplyRecord: no copy, JSON read only where needed) equal
// those from the decoded events (Read, Apply), and both equal a
// recomputation from the events as generated, for random streams with
// records the rollups ignore in between.
func TestScanEqualsDecode(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	for seed := uint64(1); seed <= 3; seed++ {
		g := newGen(seed, time.Date(2026, 10, 20, 12, 0, 0, 0, loc))
		g.run(3000)
		evs := noisy(g.evs)
		j := writeJournal(t, filepath.Join(t.TempDir(), "j.db"), evs)
		end := evs[len(evs)-1].Time.UnixMilli()

		decoded := NewProjector(loc, State{})
		read, err := j.Read(1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range read {
			decoded.Apply(&read[i])
		}
		lent := NewProjector(loc, State{})
		var aerr error
		next, err := j.Scan(1, 0, func(r *journal.Record) bool {
			aerr = lent.ApplyRecord(r)
			return aerr == nil
		})
		if err != nil || aerr != nil {
			t.Fatal(err, aerr)
		}
		if next != uint64(len(evs))+1 || lent.Seq() != uint64(len(evs)) {
			t.Fatalf("scan ended at %d, applied up to %d; want %d", next, lent.Seq(), len(evs))
		}
		view := func(p *Projector) *Snapshot {
			snap, err := snapshotOf(nil, p, 0, end, true)
			if err != nil {
				t.Fatal(err)
			}
			snap.Finalize(loc)
			return snap
		}
		sameView(t, "scan vs read", view(lent), view(decoded))
		sameView(t, "scan vs generated", view(lent), refView(t, loc, evs, end))
	}
}

// TestConsumerScanEqualsRecomputation: the consumer on a real journal
// (which it scans) keeps, in parts with restarts, crashes and retention in
// between, and after a rebuild, the rollups of a recomputation.
func TestConsumerScanEqualsRecomputation(t *testing.T) {
	loc := mustLoc(t, "America/New_York")
	dir := t.TempDir()
	g := newGen(11, time.Date(2026, 10, 28, 12, 0, 0, 0, loc)) // crosses the autumn change
	g.run(20000)
	evs := noisy(g.evs)
	jpath := filepath.Join(dir, "j.db")
	hpath := PathFor(jpath)
	now := time.Date(2026, 12, 30, 0, 0, 0, 0, loc)
	j, err := journal.Open(jpath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	run := func(crash bool) {
		t.Helper()
		cj := &caughtUp{Journal: j, done: make(chan struct{})}
		c := &Consumer{J: cj, Path: hpath, Loc: loc, Now: func() time.Time { return now }, crashAtStop: crash}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- c.Run(ctx) }()
		select {
		case <-cj.done:
		case err := <-errc:
			t.Fatalf("consumer returned early: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("consumer did not catch up")
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	parts := []int{15000, 30, 9000, 2000, len(evs)}
	done := 0
	for i, upto := range parts {
		upto = min(upto+done, len(evs))
		if _, err := j.Append(context.Background(), evs[done:upto]...); err != nil {
			t.Fatal(err)
		}
		done = upto
		run(i%2 == 1)
	}
	end := evs[len(evs)-1].Time.UnixMilli()
	sameView(t, "incremental", storedView(t, hpath, loc, end), refView(t, loc, evs, end))

	// a rebuild
	if err := os.Remove(hpath); err != nil {
		t.Fatal(err)
	}
	run(false)
	sameView(t, "rebuild", storedView(t, hpath, loc, end), refView(t, loc, evs, end))
}

// caughtUpAt wraps a journal: done is closed once the consumer waits after
// seq at.
type caughtUpAt struct {
	*journal.Journal
	at   uint64
	once sync.Once
	done chan struct{}
}

func (c *caughtUpAt) Wait(ctx context.Context, after uint64) error {
	if after >= c.at {
		c.once.Do(func() { close(c.done) })
	}
	return c.Journal.Wait(ctx, after)
}

// TestConsumerSkipsDamage: on a journal with a damaged page, the consumer
// (which scans) skips the damaged range, as every other consumer does, and
// rolls up the events after it: its rollups equal a recomputation from the
// events a decoded follow reads. Before, its scan failed at the damage
// and, restarted, failed there again for good.
func TestConsumerSkipsDamage(t *testing.T) {
	loc := mustLoc(t, "UTC")
	dir := t.TempDir()
	g := newGen(5, time.Date(2026, 3, 1, 0, 0, 0, 0, loc))
	g.run(6000)
	evs := noisy(g.evs)
	jpath := filepath.Join(dir, "j.db")
	writeJournal(t, jpath, evs).Close()
	nettest.DamageLeaf(t, jpath)
	j, err := journal.Open(jpath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// What a decoded follow reads, and the damaged range it reports; the
	// journal journals journal-damaged then (after the events written).
	var readable []event.Event
	var gaps []event.Gap
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = journal.Follow(ctx, j, 1, event.Follower{
		Events: func(_ context.Context, evs []event.Event) (int, error) {
			readable = append(readable, evs...)
			if evs[len(evs)-1].Kind == event.KindJournalDamaged {
				return len(evs), event.ErrStop
			}
			return len(evs), nil
		},
		Gap: func(_ context.Context, g event.Gap) error { gaps = append(gaps, g); return nil },
	})
	if !errors.Is(err, event.ErrStop) || len(gaps) != 1 || gaps[0].Reason != event.GapDamaged {
		t.Fatalf("test setup: %v, gaps %+v, %d readable events", err, gaps, len(readable))
	}
	last := readable[len(readable)-1].Seq

	hpath := PathFor(jpath)
	cj := &caughtUpAt{Journal: j, at: last, done: make(chan struct{})}
	c := &Consumer{J: cj, Path: hpath, Loc: loc, Now: time.Now}
	rctx, rcancel := context.WithCancel(t.Context())
	defer rcancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(rctx) }()
	select {
	case <-cj.done:
	case err := <-errc:
		t.Fatalf("consumer returned at the damage: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("consumer did not get past the damage")
	}
	rcancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	end := readable[len(readable)-1].Time.UnixMilli()
	sameView(t, "past the damage", storedView(t, hpath, loc, end), refView(t, loc, readable, end))
}

// TestFromFilesCatchesUp: without an agent, the snapshot from the files
// (the rollup file behind, the journal ahead) equals a recomputation from
// all the events; a damaged journal is an error naming the range.
func TestFromFilesCatchesUp(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	dir := t.TempDir()
	g := newGen(3, time.Date(2026, 10, 20, 12, 0, 0, 0, loc))
	g.run(6000)
	evs := noisy(g.evs)
	jpath := filepath.Join(dir, "j.db")
	j := writeJournal(t, jpath, evs[:2000])
	c := &Consumer{J: &caughtUpAt{Journal: j, at: 2000, done: make(chan struct{})}, Path: PathFor(jpath), Loc: loc, Now: time.Now}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-c.J.(*caughtUpAt).done:
	case err := <-errc:
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(context.Background(), evs[2000:]...); err != nil {
		t.Fatal(err)
	}
	j.Close()
	end := evs[len(evs)-1].Time
	snap, err := FromFiles(jpath, 0, end, loc)
	if err != nil {
		t.Fatal(err)
	}
	snap.Finalize(loc)
	want, err := snapshotOf(nil, project(loc, evs), 0, end.UnixMilli(), false) // no agent runs
	if err != nil {
		t.Fatal(err)
	}
	want.Finalize(loc)
	sameView(t, "from the files", snap, want)

	if err := os.Remove(PathFor(jpath)); err != nil {
		t.Fatal(err)
	}
	nettest.DamageLeaf(t, jpath)
	if _, err := FromFiles(jpath, 0, end, loc); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("FromFiles on a damaged journal: %v, want the damaged range", err)
	}
}
