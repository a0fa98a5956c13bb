package journal

import (
	"context"
	"errors"
	"fmt"

	"imon/event"
)

// Reader is what Follow reads: *Journal, or a test's journal in memory.
// A Reader that also has ReadPast (as *Journal) gets past damaged pages.
type Reader interface {
	// Read returns up to max events with Seq >= from, in order.
	Read(from uint64, max int) ([]event.Event, error)
	// Wait blocks until an event with Seq > after exists or ctx ends.
	Wait(ctx context.Context, after uint64) error
	// FirstSeq is the oldest Seq retention kept.
	FirstSeq() uint64
}

// Follow is the one loop of every journal consumer (the log, the action
// runner, the MQTT outbox, the agent's watchers and the control socket's
// stream): it reads the journal from seq from on, in batches, hands them
// to f.Events, waits for new events when caught up, and tells f.Gap about
// ranges it skips (retention deleted them, or damaged pages: see
// ReadPast). Each consumer keeps its own policy in its callbacks. It
// returns the next seq to read and why it stopped: ctx's error, ErrStop,
// a callback's error, or a read or wait error.
func (j *Journal) Follow(ctx context.Context, from uint64, f event.Follower) (uint64, error) {
	return Follow(ctx, j, from, f)
}

// Follow is Journal.Follow on any Reader.
func Follow(ctx context.Context, r Reader, from uint64, f event.Follower) (uint64, error) {
	batch := f.Batch
	if batch <= 0 {
		batch = 256
	}
	rp, _ := r.(interface {
		ReadPast(from uint64, max int) ([]event.Event, error)
	})
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
		if err := r.Wait(ctx, from-1); err != nil {
			return from, fmt.Errorf("wait for journal: %w", err)
		}
	}
}
