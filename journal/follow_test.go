package journal_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
)

// memReader is a Reader in memory: seqs first..len(evs), a damaged range,
// and a Wait that returns once an event past after exists.
type memReader struct {
	mu      sync.Mutex
	evs     []event.Event // evs[i].Seq == i+1
	first   uint64
	damaged [2]uint64 // ReadPast fails for from in [0]..[1]
	changed chan struct{}
}

func newMem(n int) *memReader {
	m := &memReader{first: 1, changed: make(chan struct{})}
	for i := range n {
		m.evs = append(m.evs, event.Event{Seq: uint64(i + 1), Monitor: "m", Kind: "k"})
	}
	return m
}

func (m *memReader) add() {
	m.mu.Lock()
	m.evs = append(m.evs, event.Event{Seq: uint64(len(m.evs) + 1), Monitor: "m", Kind: "k"})
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func (m *memReader) Read(from uint64, max int) ([]event.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	from = maxU(from, m.first)
	if from > uint64(len(m.evs)) {
		return nil, nil
	}
	return slices.Clone(m.evs[from-1 : min(uint64(len(m.evs)), from-1+uint64(max))]), nil
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func (m *memReader) ReadPast(from uint64, max int) ([]event.Event, error) {
	if d := m.damaged; d[0] != 0 && from <= d[1] {
		if from >= d[0] {
			return nil, &journal.Damage{Path: "mem", First: from, Last: d[1], Err: errors.New("bad page")}
		}
		max = min(max, int(d[0]-from))
	}
	return m.Read(from, max)
}

func (m *memReader) Wait(ctx context.Context, after uint64) error {
	for {
		m.mu.Lock()
		n, ch := uint64(len(m.evs)), m.changed
		m.mu.Unlock()
		if n > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *memReader) FirstSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.first
}

// TestFollowGapsAndOrder: Follow hands over every event in order, in
// batches of at most Batch, reports the range retention deleted and the
// damaged range as gaps (and skips them), calls Idle when caught up and
// waits for new events; Events handling fewer than given ends it with
// ErrStop, and the returned seq is the next one to read.
func TestFollowGapsAndOrder(t *testing.T) {
	m := newMem(30)
	m.first = 5                   // retention deleted 1..4
	m.damaged = [2]uint64{10, 12} // 10..12 damaged
	var got []uint64
	var gaps []event.Gap
	idles := 0
	next, err := journal.Follow(t.Context(), m, 1, event.Follower{
		Batch: 4,
		Events: func(_ context.Context, evs []event.Event) (int, error) {
			if len(evs) > 4 {
				t.Errorf("batch of %d events, want at most 4", len(evs))
			}
			for i, ev := range evs {
				if ev.Seq == 33 {
					return i, nil
				}
				got = append(got, ev.Seq)
			}
			return len(evs), nil
		},
		Gap: func(_ context.Context, g event.Gap) error { gaps = append(gaps, g); return nil },
		Idle: func(context.Context) (bool, error) {
			idles++
			if idles <= 3 {
				m.add() // 31, 32, 33 arrive while the reader waits
			}
			return true, nil
		},
	})
	if !errors.Is(err, event.ErrStop) || next != 33 {
		t.Fatalf("Follow returned %d, %v; want 33, ErrStop", next, err)
	}
	var want []uint64
	for s := uint64(5); s <= 32; s++ {
		if s < 10 || s > 12 {
			want = append(want, s)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %v\nwant %v", got, want)
	}
	if len(gaps) != 2 || gaps[0].Reason != event.GapRetention || gaps[0].First != 1 || gaps[0].Last != 4 ||
		gaps[1].Reason != event.GapDamaged || gaps[1].First != 10 || gaps[1].Last != 12 || gaps[1].Err == nil {
		t.Errorf("gaps %+v; want retention 1-4, damaged 10-12", gaps)
	}
}

// TestFollowStops: a Gap callback's error ends the follow with that error;
// a cancelled ctx ends a waiting follow.
func TestFollowStops(t *testing.T) {
	boom := errors.New("boom")
	m := newMem(3)
	m.first = 2
	_, err := journal.Follow(t.Context(), m, 1, event.Follower{
		Events: func(_ context.Context, evs []event.Event) (int, error) { return len(evs), nil },
		Gap:    func(context.Context, event.Gap) error { return boom },
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Follow: %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	_, err = journal.Follow(ctx, m, 1, event.Follower{
		Events: func(_ context.Context, evs []event.Event) (int, error) { return len(evs), nil },
		Idle:   func(context.Context) (bool, error) { cancel(); return true, nil },
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel: %v, want context.Canceled", err)
	}
}

// memScanner is a memReader that lends records (only their Seq set).
type memScanner struct{ *memReader }

func (m memScanner) Scan(from uint64, max int, fn func(r *journal.Record) bool) (uint64, error) {
	evs, _ := m.Read(from, max)
	next := from
	for _, ev := range evs {
		next = ev.Seq + 1
		if !fn(&journal.Record{Seq: ev.Seq}) {
			break
		}
	}
	return next, nil
}

// TestFollowRecordsLends: FollowRecords hands a Scanner's records to
// Records in batches of at most RecordBatch, reports the range retention
// deleted before the first record as a gap without handing that record
// over early, and ending the range early ends it with ErrStop at the
// record it stopped at. A Reader that is not a Scanner goes to Events.
func TestFollowRecordsLends(t *testing.T) {
	m := newMem(20)
	m.first = 4 // retention deleted 1..3
	var got []uint64
	var gaps []event.Gap
	next, err := journal.FollowRecords(t.Context(), memScanner{m}, 1, journal.RecordFollower{
		Follower: event.Follower{
			Events: func(context.Context, []event.Event) (int, error) {
				t.Error("Events called for a Scanner")
				return 0, nil
			},
			Gap: func(_ context.Context, g event.Gap) error { gaps = append(gaps, g); return nil },
		},
		RecordBatch: 5,
		Records: func(_ context.Context, recs iter.Seq[*journal.Record]) error {
			n := 0
			for r := range recs {
				if r.Seq == 17 {
					break
				}
				got = append(got, r.Seq)
				n++
			}
			if n > 5 {
				t.Errorf("a batch of %d records, want at most 5", n)
			}
			return nil
		},
	})
	if !errors.Is(err, event.ErrStop) || next != 17 {
		t.Fatalf("FollowRecords returned %d, %v; want 17, ErrStop", next, err)
	}
	var want []uint64
	for s := uint64(4); s < 17; s++ {
		want = append(want, s)
	}
	if !slices.Equal(got, want) {
		t.Errorf("records %v\nwant %v", got, want)
	}
	if len(gaps) != 1 || gaps[0].Reason != event.GapRetention || gaps[0].First != 1 || gaps[0].Last != 3 {
		t.Errorf("gaps %+v; want retention 1-3", gaps)
	}

	// Not a Scanner: Events.
	var evs []uint64
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err = journal.FollowRecords(ctx, newMem(3), 1, journal.RecordFollower{
		Follower: event.Follower{
			Events: func(_ context.Context, e []event.Event) (int, error) {
				for _, ev := range e {
					evs = append(evs, ev.Seq)
				}
				return len(e), nil
			},
			Idle: func(context.Context) (bool, error) { cancel(); return true, nil },
		},
		Records: func(context.Context, iter.Seq[*journal.Record]) error {
			t.Error("Records called for a Reader that is not a Scanner")
			return nil
		},
	})
	if !errors.Is(err, context.Canceled) || !slices.Equal(evs, []uint64{1, 2, 3}) {
		t.Errorf("not a Scanner: %v, events %v", err, evs)
	}
}

// TestFollowRecordsDamage: on a real journal with a damaged page,
// FollowRecords lends the records before the damage, hands the readable
// events of the damaged batch (ReadPast) to Events, reports the damaged
// range as a gap and lends the records after it: every event is handed
// over once or is in the range.
func TestFollowRecordsDamage(t *testing.T) {
	path := t.TempDir() + "/j.db"
	const n = 3000
	makeJournal(t, path, n) // n pings + 1 ddns event
	nettest.DamageLeaf(t, path)
	j, err := journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var lent, decoded []uint64
	var gaps []event.Gap
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err = journal.FollowRecords(ctx, j, 1, journal.RecordFollower{
		Follower: event.Follower{
			Events: func(_ context.Context, evs []event.Event) (int, error) {
				for _, ev := range evs {
					decoded = append(decoded, ev.Seq)
				}
				return len(evs), nil
			},
			Gap:  func(_ context.Context, g event.Gap) error { gaps = append(gaps, g); return nil },
			Idle: func(context.Context) (bool, error) { cancel(); return true, nil },
		},
		RecordBatch: 100,
		Records: func(_ context.Context, recs iter.Seq[*journal.Record]) error {
			for r := range recs {
				lent = append(lent, r.Seq)
			}
			return nil
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowRecords: %v", err)
	}
	if len(gaps) != 1 || gaps[0].Reason != event.GapDamaged {
		t.Fatalf("gaps %+v, want one damaged range", gaps)
	}
	g := gaps[0]
	all := slices.Sorted(slices.Values(slices.Concat(lent, decoded)))
	for s := uint64(1); s <= n+1; s++ {
		in := g.First <= s && s <= g.Last
		if _, found := slices.BinarySearch(all, s); found == in {
			t.Fatalf("seq %d: handed over %v, in the damaged range %d-%d %v", s, found, g.First, g.Last, in)
		}
	}
	if len(all) != int(n+1-(g.Last-g.First+1)) {
		t.Errorf("%d events handed over, want each once", len(all))
	}
	if len(lent) == 0 || lent[len(lent)-1] != n+1 {
		t.Errorf("the records after the damage were not lent")
	}
	t.Logf("%d lent, %d decoded, damaged %d-%d", len(lent), len(decoded), g.First, g.Last)
}

// TestFollowWaitAtMost: a wait bounded by WaitAtMost that passes without a
// new event calls Idle again; without the bound the wait lasts.
func TestFollowWaitAtMost(t *testing.T) {
	m := newMem(2)
	idles := 0
	_, err := journal.Follow(t.Context(), m, 1, event.Follower{
		Events: func(_ context.Context, evs []event.Event) (int, error) { return len(evs), nil },
		Idle: func(context.Context) (bool, error) {
			idles++
			if idles == 3 {
				return false, errors.New("third idle")
			}
			return true, nil
		},
		WaitAtMost: func() time.Duration { return time.Millisecond },
	})
	if err == nil || err.Error() != "third idle" || idles != 3 {
		t.Fatalf("Follow: %v after %d idles, want the third idle's error", err, idles)
	}
}

// countScans is a memScanner that counts its scans.
type countScans struct {
	memScanner
	n int
}

func (c *countScans) Scan(from uint64, max int, fn func(r *journal.Record) bool) (uint64, error) {
	c.n++
	return c.memScanner.Scan(from, max, fn)
}

// TestFollowRecordsOneScanPerWakeup: a batch shorter than RecordBatch
// means Scan reached the end: FollowRecords idles without a second, empty
// scan (one read per wakeup, as the rollups did before).
func TestFollowRecordsOneScanPerWakeup(t *testing.T) {
	m := &countScans{memScanner: memScanner{newMem(3)}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	scansAtIdle := -1
	_, err := journal.FollowRecords(ctx, m, 1, journal.RecordFollower{
		Follower: event.Follower{
			Events: func(_ context.Context, evs []event.Event) (int, error) { return len(evs), nil },
			Idle: func(context.Context) (bool, error) {
				scansAtIdle = m.n
				cancel()
				return true, nil
			},
		},
		RecordBatch: 5,
		Records: func(_ context.Context, recs iter.Seq[*journal.Record]) error {
			for range recs {
			}
			return nil
		},
	})
	if !errors.Is(err, context.Canceled) || scansAtIdle != 1 {
		t.Fatalf("FollowRecords: %v; %d scans before Idle, want 1", err, scansAtIdle)
	}
}
