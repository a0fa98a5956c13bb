package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sort"
	"sync"
	"time"

	"imon/event"
	"imon/journal"
)

// Journal is what the consumer needs of the journal. It reads it through
// journal.FollowRecords, the loop every consumer uses: a Journal that is
// also a journal.Scanner (the real one) lends its records, undecoded; one
// that has ReadPast (the real one) gets past damaged pages.
type Journal interface {
	journal.Reader
	LastSeq() uint64
	SetCursor(name string, seq uint64)
}

// Defaults of the consumer.
const (
	// DefaultKeepDays is how many days of rollups are kept.
	DefaultKeepDays = 365
	// MaxKeepDays bounds journal.history-days.
	MaxKeepDays = 3660
	// FlushEvery is the longest the rollups stay only in memory while
	// events arrive (a crash loses nothing: the journal is replayed from
	// the stored position).
	FlushEvery = 5 * time.Minute
	// readChunk is how many events one decoded journal read takes (about
	// 0.5 MB of ping results).
	readChunk = 512
	// scanChunk is how many lent records are folded in under the lock at
	// a time.
	scanChunk = 8192
	// flushDirtyDays writes during a long replay (a rebuild) every so
	// many changed days, so that memory stays bounded.
	flushDirtyDays = 400
)

// CursorName is the consumer's name and its journal cursor (a mirror of
// the position stored in the rollup file, for the agent's drain at stop).
const CursorName = "history"

// Consumer keeps the rollup file up to date from the journal: the agent
// runs it like its other consumers. Its position is stored in the rollup
// file in the same transaction as the rollups.
type Consumer struct {
	J        Journal
	Path     string         // the rollup file (PathFor the journal)
	Loc      *time.Location // days are local days of Loc; nil = time.Local
	KeepDays int            // 0 = DefaultKeepDays
	Log      *slog.Logger
	Now      func() time.Time

	mu        sync.Mutex // guards proj and store
	proj      *Projector
	store     *Store
	ready     chan struct{} // closed once the file was first opened
	initOnce  sync.Once
	readyOnce sync.Once

	crashAtStop bool // tests: stop without the final write, like a crash
}

// Name implements agent.Consumer.
func (c *Consumer) Name() string { return CursorName }

func (c *Consumer) init() {
	c.initOnce.Do(func() { c.ready = make(chan struct{}) })
}

func (c *Consumer) loc() *time.Location {
	if c.Loc == nil {
		return time.Local
	}
	return c.Loc
}

func (c *Consumer) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Consumer) keepDays() int {
	if c.KeepDays <= 0 {
		return DefaultKeepDays
	}
	return min(c.KeepDays, MaxKeepDays)
}

// Run implements agent.Consumer: it follows the journal until ctx ends.
func (c *Consumer) Run(ctx context.Context) error {
	c.init()
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, rebuilt, err := OpenStore(c.Path, false, time.Second)
	if err != nil {
		return err
	}
	st, err := store.State()
	if err != nil {
		store.Close()
		return err
	}
	if st.Seq > c.J.LastSeq() {
		// A new journal (a corrupt one was moved aside): its seqs start
		// again; the days stay.
		log.Warn("rollups are ahead of the journal: continuing with the new journal", "rollup_seq", st.Seq, "journal_last", c.J.LastSeq())
		st.Seq = 0
	}
	if rebuilt {
		log.Info("rebuilding the rollups from the journal", "path", c.Path, "events", c.J.LastSeq()-c.J.FirstSeq()+1)
	}
	proj := NewProjector(c.loc(), st)
	proj.Load = func(subject, date string) *Day {
		d, err := store.Day(subject, date)
		if err != nil {
			log.Error("rollups", "err", err)
		}
		return d
	}
	c.mu.Lock()
	c.proj, c.store = proj, store
	c.mu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
	defer func() {
		c.mu.Lock()
		c.proj, c.store = nil, nil
		c.mu.Unlock()
		store.Close()
	}()

	lastFlush := c.now()
	pending := 0 // events applied since the last flush
	flush := func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if pending == 0 && proj.DirtyCount() == 0 {
			return nil
		}
		if err := c.flushLocked(); err != nil {
			return err
		}
		pending = 0
		lastFlush = c.now()
		c.J.SetCursor(CursorName, proj.Seq())
		return nil
	}
	var own error // a callback's error, returned as is
	// folded notes n events folded in; an agent-stop, or many changed
	// days (a long replay: memory stays bounded), is written at once.
	folded := func(n int, stop bool) error {
		pending += n
		if stop || proj.DirtyCount() >= flushDirtyDays {
			own = flush()
		}
		return own
	}
	_, err = journal.FollowRecords(ctx, c.J, proj.Seq()+1, journal.RecordFollower{
		Follower: event.Follower{
			Batch: readChunk,
			Events: func(_ context.Context, evs []event.Event) (int, error) {
				stop := false
				c.mu.Lock()
				for i := range evs {
					proj.Apply(&evs[i])
					stop = stop || evs[i].Kind == event.KindAgentStop
				}
				c.mu.Unlock()
				return len(evs), folded(len(evs), stop)
			},
			// Events retention deleted before they were rolled up, or on
			// damaged pages, are skipped (their hours stay as the events
			// around them make them).
			Gap: func(_ context.Context, g event.Gap) error {
				if g.Reason == event.GapDamaged {
					log.Warn("damaged journal events skipped: not in the rollups", "from", g.First, "to", g.Last, "err", g.Err)
				} else {
					log.Warn("events expired before they were rolled up", "from", g.First, "to", g.Last)
				}
				return nil
			},
			// Caught up: write what a replay left, and what waited for
			// FlushEvery; the wait for events wakes for the flush only
			// while something is unwritten.
			Idle: func(context.Context) (bool, error) {
				if rebuilt || (pending > 0 && c.now().Sub(lastFlush) >= FlushEvery) {
					rebuilt = false
					own = flush()
				}
				return true, own
			},
			WaitAtMost: func() time.Duration {
				if pending == 0 {
					return 0
				}
				return max(FlushEvery-c.now().Sub(lastFlush), time.Millisecond)
			},
		},
		// The real journal lends its records: no copy, no decode of what
		// the rollups do not read.
		Records: func(_ context.Context, recs iter.Seq[*journal.Record]) error {
			n, stop := 0, false
			c.mu.Lock()
			for r := range recs {
				if own = proj.ApplyRecord(r); own != nil {
					break
				}
				n++
				stop = stop || string(r.Kind) == event.KindAgentStop
			}
			c.mu.Unlock()
			if own != nil {
				own = fmt.Errorf("rollups: read journal: %w", own)
				return own
			}
			return folded(n, stop)
		},
		RecordBatch: scanChunk,
	})
	switch {
	case ctx.Err() != nil:
		if c.crashAtStop {
			return nil
		}
		return flush()
	case own != nil:
		_ = flush()
		return own
	default:
		_ = flush()
		return fmt.Errorf("rollups: %w", err)
	}
}

// flushLocked writes the changed days and the state, and drops days older
// than KeepDays.
func (c *Consumer) flushLocked() error {
	proj := c.proj
	cut := c.now().In(c.loc()).AddDate(0, 0, -c.keepDays()).Format("2006-01-02")
	if err := c.store.Save(proj.State(), proj.Dirty(), cut); err != nil {
		return err
	}
	// Keep yesterday and today in memory: the days events still change.
	_, start, _ := dayOf(c.now().AddDate(0, 0, -1).UnixMilli(), c.loc())
	proj.ClearDirty(start)
	return nil
}

// Snapshot is the rollups from a day on: the stored days, the open periods
// (State) and the time it was taken. It is what `imon report` gets from the
// running agent (as JSON) or builds itself from the files.
type Snapshot struct {
	Zone  string `json:"zone"`   // time zone of the days
	Now   int64  `json:"now_ms"` // when it was taken
	Alive bool   `json:"alive"`  // an agent is running (its statuses hold until Now)
	State State  `json:"state"`
	Days  []*Day `json:"days"`
}

// Snapshot returns the rollups of the days from fromMS on (Unix ms; the
// whole day containing it). It waits for the consumer to have opened its
// file, up to ctx.
func (c *Consumer) Snapshot(ctx context.Context, fromMS int64) (*Snapshot, error) {
	c.init()
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("rollups not ready: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proj == nil {
		return nil, errors.New("rollups: the history consumer is not running")
	}
	return snapshotOf(c.store, c.proj, fromMS, c.now().UnixMilli(), true)
}

// snapshotOf merges the store's days with the projector's (newer) ones and
// deep-copies everything.
func snapshotOf(store *Store, proj *Projector, fromMS, now int64, alive bool) (*Snapshot, error) {
	date, _, _ := proj.localDay(fromMS)
	byKey := map[dayKey]*Day{}
	if store != nil {
		days, err := store.Range(date)
		if err != nil {
			return nil, err
		}
		for _, d := range days {
			byKey[dayKey{d.Subject, d.Date}] = d
		}
	}
	for _, d := range proj.Days() {
		if d.Date >= date {
			byKey[dayKey{d.Subject, d.Date}] = d
		}
	}
	snap := &Snapshot{Zone: ZoneName(proj.loc), Now: now, Alive: alive, State: *proj.State()}
	for _, d := range byKey {
		snap.Days = append(snap.Days, d)
	}
	sort.Slice(snap.Days, func(i, j int) bool {
		a, b := snap.Days[i], snap.Days[j]
		if a.Date != b.Date {
			return a.Date < b.Date
		}
		return a.Subject < b.Subject
	})
	// Deep copy: the caller may change it (Finish) while events arrive.
	b, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	out := new(Snapshot)
	if err := json.Unmarshal(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Report answers the control socket's history request: the snapshot from
// since on.
func (c *Consumer) Report(ctx context.Context, since time.Time) (any, error) {
	return c.Snapshot(ctx, since.UnixMilli())
}
