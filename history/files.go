package history

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"time"

	"imon/event"
	"imon/journal"
)

// FromFiles builds a snapshot without an agent: the rollup file next to
// the journal (read-only), brought up to date in memory with the journal's
// newer events; without a usable rollup file, from the journal alone.
// Neither file is written.
func FromFiles(journalPath string, fromMS int64, now time.Time, loc *time.Location) (*Snapshot, error) {
	store, _, err := OpenStore(PathFor(journalPath), true, time.Second)
	switch {
	case err == nil:
		defer store.Close()
	case errors.Is(err, os.ErrNotExist), errors.Is(err, ErrFormat):
		store = nil
	default:
		return nil, err
	}
	var st State
	if store != nil {
		if st, err = store.State(); err != nil {
			return nil, err
		}
	}
	j, err := journal.Open(journalPath, journal.Options{ReadOnly: true})
	if err != nil && !(errors.Is(err, os.ErrNotExist) && store != nil) {
		return nil, err
	}
	proj := NewProjector(loc, st)
	if store != nil {
		proj.Load = func(subject, date string) *Day {
			d, _ := store.Day(subject, date)
			return d
		}
	}
	if j != nil {
		defer j.Close()
		if st.Seq > j.LastSeq() {
			proj.State().Seq = 0
		}
		if err := catchUp(j, proj); err != nil {
			return nil, fmt.Errorf("journal %s: %w", journalPath, err)
		}
	}
	return snapshotOf(store, proj, fromMS, now.UnixMilli(), false)
}

// errCaughtUp ends catchUp's follow.
var errCaughtUp = errors.New("caught up")

// catchUp folds the journal's events after proj's position into proj, up
// to the last one, through the loop every consumer uses (records lent, not
// decoded). A damaged range is an error here (the report names it);
// events retention deleted are skipped.
func catchUp(j *journal.Journal, proj *Projector) error {
	_, err := journal.FollowRecords(context.Background(), j, proj.Seq()+1, journal.RecordFollower{
		Follower: event.Follower{
			Batch: readChunk,
			Events: func(_ context.Context, evs []event.Event) (int, error) {
				for i := range evs {
					proj.Apply(&evs[i])
				}
				return len(evs), nil
			},
			Gap: func(_ context.Context, g event.Gap) error {
				if g.Reason == event.GapDamaged {
					return fmt.Errorf("events %d to %d cannot be read, damaged: %w", g.First, g.Last, g.Err)
				}
				return nil
			},
			Idle: func(context.Context) (bool, error) { return false, errCaughtUp },
		},
		Records: func(_ context.Context, recs iter.Seq[*journal.Record]) error {
			for r := range recs {
				if err := proj.ApplyRecord(r); err != nil {
					return err
				}
			}
			return nil
		},
		RecordBatch: scanChunk,
	})
	if errors.Is(err, errCaughtUp) {
		return nil
	}
	return err
}
