package journal

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"imon/event"
)

// Reader is what Follow reads: *Journal, or a test's journal in memory.
// A Reader that also has ReadPast (as *Journal) gets past damaged pages;
// one that is also a Scanner (as *Journal) can lend its records to a
// RecordFollower.
type Reader interface {
	// Read returns up to max events with Seq >= from, in order.
	Read(from uint64, max int) ([]event.Event, error)
	// Wait blocks until an event with Seq > after exists or ctx ends.
	Wait(ctx context.Context, after uint64) error
	// FirstSeq is the oldest Seq retention kept.
	FirstSeq() uint64
}

// Scanner is a Reader's bulk read without decoding ([Journal.Scan]).
type Scanner interface {
	Scan(from uint64, max int, fn func(r *Record) bool) (next uint64, err error)
}

// pastReader is a Reader that names damaged ranges ([Journal.ReadPast]).
type pastReader interface {
	ReadPast(from uint64, max int) ([]event.Event, error)
}

// RecordFollower is an event.Follower that can also take the events as
// the journal lends its records ([Journal.Scan]: no copy, no decode), for
// a consumer that replays much of the journal (the history rollups'
// rebuild).
type RecordFollower struct {
	event.Follower
	// Records, when set and the Reader is a Scanner, gets the events
	// instead of Events, in batches of up to RecordBatch records: it must
	// range over recs (once); each *Record is valid only during its step.
	// Ending the range early ends the follow with ErrStop (the record it
	// stopped at is the next to read). Events (still required) then gets
	// only the readable events of a batch with damage, which ReadPast
	// decodes while it finds the damaged range.
	Records func(ctx context.Context, recs iter.Seq[*Record]) error
	// RecordBatch bounds the records of one Records call (default 4096).
	RecordBatch int
}

// Follow is the one loop of every journal consumer (the log, the action
// runner, the MQTT outbox, the history rollups, the agent's watchers and
// the control socket's stream): it reads the journal from seq from on, in
// batches, hands them to f.Events, waits for new events when caught up
// (at most f.WaitAtMost), and tells f.Gap about ranges it skips
// (retention deleted them, or damaged pages: see ReadPast). Each consumer
// keeps its own policy in its callbacks. It returns the next seq to read
// and why it stopped: ctx's error, ErrStop, a callback's error, or a read
// or wait error.
func (j *Journal) Follow(ctx context.Context, from uint64, f event.Follower) (uint64, error) {
	return Follow(ctx, j, from, f)
}

// Follow is Journal.Follow on any Reader.
func Follow(ctx context.Context, r Reader, from uint64, f event.Follower) (uint64, error) {
	return FollowRecords(ctx, r, from, RecordFollower{Follower: f})
}

// FollowRecords is Follow handing the events to f.Records as lent records
// while r is a Scanner (and f.Records is set), and to f.Events otherwise:
// one loop, the same gaps, idling and waits.
func FollowRecords(ctx context.Context, r Reader, from uint64, f RecordFollower) (uint64, error) {
	batch := f.Batch
	if batch <= 0 {
		batch = 256
	}
	rbatch := f.RecordBatch
	if rbatch <= 0 {
		rbatch = scanBatchRecords
	}
	rp, _ := r.(pastReader)
	sc, _ := r.(Scanner)
	if f.Records == nil {
		sc = nil
	}
	gap := func(g event.Gap) error {
		if f.Gap == nil {
			return nil
		}
		return f.Gap(ctx, g)
	}
	if from == 0 {
		from = 1
	}
	for {
		if err := ctx.Err(); err != nil {
			return from, err
		}
		decode := sc == nil
		if sc != nil {
			n, jump, serr, err := lend(ctx, sc, &from, rbatch, f.Records)
			switch {
			case err != nil:
				return from, err
			case jump > from: // retention removed events not taken yet
				if err := gap(event.Gap{First: from, Last: jump - 1, Reason: event.GapRetention}); err != nil {
					return from, err
				}
				from = jump
				continue
			case serr != nil && errors.Is(serr, ErrCorrupt) && rp != nil:
				decode = true // ReadPast names the damaged range
			case serr != nil:
				if f.RetryRead != nil && f.RetryRead(ctx, serr) {
					continue
				}
				return from, fmt.Errorf("read journal from seq %d: %w", from, serr)
			case n >= rbatch:
				continue
			}
			// Fewer records than asked: Scan reached the end, caught up
			// (no second, empty scan: one read per wakeup).
		}
		if decode {
			var evs []event.Event
			var err error
			if rp != nil {
				evs, err = rp.ReadPast(from, batch)
			} else {
				evs, err = r.Read(from, batch)
			}
			if d := (*Damage)(nil); errors.As(err, &d) {
				if err := gap(event.Gap{First: d.First, Last: d.Last, Reason: event.GapDamaged, Path: d.Path, Err: d.Err}); err != nil {
					return from, err
				}
				from = d.Last + 1
				continue
			}
			if err != nil {
				if f.RetryRead != nil && f.RetryRead(ctx, err) {
					continue
				}
				return from, fmt.Errorf("read journal from seq %d: %w", from, err)
			}
			if len(evs) > 0 && evs[0].Seq > from { // retention removed events not taken yet
				if err := gap(event.Gap{First: from, Last: evs[0].Seq - 1, Reason: event.GapRetention}); err != nil {
					return from, err
				}
				from = evs[0].Seq
			}
			if len(evs) > 0 {
				n, err := f.Events(ctx, evs)
				if n > 0 {
					from = evs[min(n, len(evs))-1].Seq + 1
				}
				if err != nil {
					return from, err
				}
				if n < len(evs) {
					return from, event.ErrStop
				}
				continue
			}
		}
		if first := r.FirstSeq(); from < first { // retention removed events
			if err := gap(event.Gap{First: from, Last: first - 1, Reason: event.GapRetention}); err != nil {
				return from, err
			}
			from = first
			continue
		}
		if f.Idle != nil {
			wait, err := f.Idle(ctx)
			if err != nil {
				return from, err
			}
			if !wait {
				continue
			}
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if f.WaitAtMost != nil {
			if d := f.WaitAtMost(); d > 0 {
				wctx, cancel = context.WithTimeout(ctx, d)
			}
		}
		err := r.Wait(wctx, from-1)
		cancel()
		if err != nil && ctx.Err() == nil && wctx.Err() != nil {
			continue // the bound passed: read again, then Idle
		}
		if err != nil {
			return from, fmt.Errorf("wait for journal: %w", err)
		}
	}
}

// lend hands up to max records from *from on to records, advancing *from
// past each one it took. It returns how many it took; jump, when the first
// record is past *from (retention deleted the ones before: it is not
// handed over); the Scan's error serr; and err, records' error or ErrStop
// (records ended the range early, or never ranged).
func lend(ctx context.Context, sc Scanner, from *uint64, max int, records func(context.Context, iter.Seq[*Record]) error) (n int, jump uint64, serr, err error) {
	ran, broke := false, false
	recs := func(yield func(*Record) bool) {
		if ran {
			return
		}
		ran = true
		_, serr = sc.Scan(*from, max, func(r *Record) bool {
			if n == 0 && r.Seq > *from {
				jump = r.Seq
				return false
			}
			if !yield(r) {
				broke = true
				return false
			}
			n++
			*from = r.Seq + 1
			return true
		})
	}
	if err := records(ctx, recs); err != nil {
		return n, jump, serr, err
	}
	if !ran || broke {
		return n, jump, serr, event.ErrStop
	}
	return n, jump, serr, nil
}
