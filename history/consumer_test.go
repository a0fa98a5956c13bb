package history

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"imon/event"
)

// memJournal is an in-memory journal with retention.
type memJournal struct {
	mu      sync.Mutex
	evs     []event.Event // evs[i].Seq == first+i
	first   uint64
	changed chan struct{} // closed and replaced on append
	waiting chan uint64   // receives the seq a Wait waits after
	cursors map[string]uint64
}

func newMemJournal() *memJournal {
	return &memJournal{first: 1, changed: make(chan struct{}), waiting: make(chan uint64, 100), cursors: map[string]uint64{}}
}

func (j *memJournal) append(evs ...event.Event) {
	j.mu.Lock()
	j.evs = append(j.evs, evs...)
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// retain deletes the events before seq.
func (j *memJournal) retain(seq uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if seq <= j.first {
		return
	}
	j.evs = j.evs[seq-j.first:]
	j.first = seq
}

func (j *memJournal) Read(from uint64, max int) ([]event.Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	from = maxU(from, j.first)
	i := int(from - j.first)
	if i >= len(j.evs) {
		return nil, nil
	}
	n := min(len(j.evs)-i, max)
	return append([]event.Event(nil), j.evs[i:i+n]...), nil
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func (j *memJournal) Wait(ctx context.Context, after uint64) error {
	j.mu.Lock()
	last := j.first + uint64(len(j.evs)) - 1
	ch := j.changed
	j.mu.Unlock()
	if last > after {
		return nil
	}
	select {
	case j.waiting <- after:
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *memJournal) FirstSeq() uint64 { j.mu.Lock(); defer j.mu.Unlock(); return j.first }
func (j *memJournal) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.first + uint64(len(j.evs)) - 1
}
func (j *memJournal) SetCursor(name string, seq uint64) {
	j.mu.Lock()
	j.cursors[name] = seq
	j.mu.Unlock()
}

// runUntilCaughtUp runs a consumer until it waits after the journal's last
// event, then stops it (crash: without its final flush).
func runUntilCaughtUp(t *testing.T, c *Consumer, j *memJournal, crash bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.crashAtStop = crash
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	last := j.LastSeq()
	for {
		select {
		case after := <-j.waiting:
			if after >= last {
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				return
			}
		case err := <-done:
			cancel()
			t.Fatalf("consumer returned early: %v", err)
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatal("consumer did not catch up")
		}
	}
}

// storedView is what the rollup file says, finalized at end.
func storedView(t *testing.T, path string, loc *time.Location, end int64) *Snapshot {
	t.Helper()
	s, _, err := OpenStore(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.State()
	if err != nil {
		t.Fatal(err)
	}
	p := NewProjector(loc, st)
	snap, err := snapshotOf(s, p, 0, end, true)
	if err != nil {
		t.Fatal(err)
	}
	snap.Finalize(loc)
	return snap
}

func refView(t *testing.T, loc *time.Location, evs []event.Event, end int64) *Snapshot {
	t.Helper()
	p := project(loc, evs)
	snap, err := snapshotOf(nil, p, 0, end, true)
	if err != nil {
		t.Fatal(err)
	}
	snap.Finalize(loc)
	return snap
}

func sameView(t *testing.T, what string, got, want *Snapshot) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) == string(w) {
		return
	}
	if len(got.Days) != len(want.Days) {
		t.Fatalf("%s: %d days, want %d", what, len(got.Days), len(want.Days))
	}
	for i := range got.Days {
		if !reflect.DeepEqual(got.Days[i], want.Days[i]) {
			gd, _ := json.Marshal(got.Days[i])
			wd, _ := json.Marshal(want.Days[i])
			t.Fatalf("%s: day %d differs:\n got %s\nwant %s", what, i, gd, wd)
		}
	}
	gs, _ := json.Marshal(got.State)
	ws, _ := json.Marshal(want.State)
	t.Fatalf("%s: state differs:\n got %s\nwant %s", what, gs, ws)
}

// TestConsumerEqualsRecomputation: the rollups the consumer keeps in its
// file, fed a random stream in parts with restarts, crashes (no final
// write) and journal retention in between, equal a recomputation from all
// the raw events; after the rollup file is deleted, the rebuild from the
// events the journal still holds equals a recomputation from those.
func TestConsumerEqualsRecomputation(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	for seed := uint64(1); seed <= 4; seed++ {
		dir := t.TempDir()
		path := filepath.Join(dir, "j.db.history")
		g := newGen(seed, time.Date(2026, 10, 20, 12, 0, 0, 0, loc)) // crosses the autumn change
		j := newMemJournal()
		now := time.Date(2026, 11, 30, 0, 0, 0, 0, loc)
		mk := func() *Consumer {
			return &Consumer{J: j, Path: path, Loc: loc, Now: func() time.Time { return now }}
		}
		for part := range 6 {
			n := len(g.evs)
			g.run([]int{2000, 300, 300, 1500, 300, 300}[part])
			j.append(g.evs[n:]...)
			runUntilCaughtUp(t, mk(), j, part%2 == 1)
			if part == 3 {
				j.retain(uint64(len(g.evs) / 2))
			}
		}
		end := g.evs[len(g.evs)-1].Time.UnixMilli()
		sameView(t, "incremental", storedView(t, path, loc, end), refView(t, loc, g.evs, end))

		// rebuild from what the journal still holds
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		runUntilCaughtUp(t, mk(), j, false)
		kept, _ := j.Read(1, len(g.evs))
		sameView(t, "rebuild", storedView(t, path, loc, end), refView(t, loc, kept, end))
	}
}

// TestFormatChangeRebuilds: a rollup file of another format version is
// emptied and rebuilt from the journal.
func TestFormatChangeRebuilds(t *testing.T) {
	loc := mustLoc(t, "UTC")
	path := filepath.Join(t.TempDir(), "j.db.history")
	g := newGen(7, time.Date(2026, 1, 1, 0, 0, 0, 0, loc))
	g.run(300)
	j := newMemJournal()
	j.append(g.evs...)
	c := &Consumer{J: j, Path: path, Loc: loc, Now: time.Now}
	runUntilCaughtUp(t, c, j, false)
	s, _, err := OpenStore(path, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// an older layout, with a day that must not survive
	if err := s.Save(&State{Seq: 1}, []*Day{{Date: "1999-01-01", Subject: SubjectInternet, Hours: make([]Slot, 24)}}, ""); err != nil {
		t.Fatal(err)
	}
	s.setFormat(t, "0")
	s.Close()
	if _, _, err := OpenStore(path, true, time.Second); err == nil {
		t.Fatal("read-only open of an old format: no error")
	}
	runUntilCaughtUp(t, &Consumer{J: j, Path: path, Loc: loc, Now: time.Now}, j, false)
	end := g.evs[len(g.evs)-1].Time.UnixMilli()
	sameView(t, "after format change", storedView(t, path, loc, end), refView(t, loc, g.evs, end))
}
