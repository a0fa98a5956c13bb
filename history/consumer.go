package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"imon/event"
	"imon/journal"
)

// Journal is what the consumer needs of the journal. A Journal that is
// also a Scanner (the real one) is replayed with Scan.
type Journal interface {
	Read(from uint64, max int) ([]event.Event, error)
	Wait(ctx context.Context, after uint64) error
	FirstSeq() uint64
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
	// readChunk is how many events one journal read takes (about 0.5 MB
	// of ping results: the agent stays small during a replay).
	readChunk = 512
	// flushDirtyDays writes during a long replay (a rebuild) every so
	// many changed days, so that memory stays bounded.
	flushDirtyDays = 400
)

// readAheadMin is the backlog from which the consumer reads ahead with
// two goroutines, for a Journal that is not a Scanner (a variable for the
// tests).
var readAheadMin uint64 = 8 * readChunk

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
	} else if first := c.J.FirstSeq(); st.Seq+1 < first && c.J.LastSeq() >= first {
		log.Warn("events expired before they were rolled up", "from", st.Seq+1, "to", first-1)
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
	var flushErr error
	fold := func(evs []event.Event) bool {
		stop := false
		c.mu.Lock()
		for i := range evs {
			proj.Apply(&evs[i])
			stop = stop || evs[i].Kind == event.KindAgentStop
		}
		c.mu.Unlock()
		pending += len(evs)
		if stop || proj.DirtyCount() >= flushDirtyDays {
			flushErr = flush()
		}
		return flushErr == nil && ctx.Err() == nil
	}
	scanner, canScan := c.J.(Scanner)
	for {
		if canScan && proj.Seq() < c.J.LastSeq() {
			// The journal lends its records: no copy, no decode of what
			// the rollups do not read.
			n, stop, err := c.scan(scanner, proj)
			pending += n
			if err == nil && (stop || proj.DirtyCount() >= flushDirtyDays) {
				err = flush()
			}
			if err != nil {
				_ = flush()
				return err
			}
			if n > 0 && ctx.Err() == nil {
				continue
			}
		} else if from, last := max(proj.Seq()+1, c.J.FirstSeq()), c.J.LastSeq(); last >= from+readAheadMin {
			// A long backlog (a rebuild, a restart after long): read ahead.
			if err := readAhead(c.J, from, last, fold); err != nil {
				_ = flush()
				return fmt.Errorf("rollups: read journal: %w", err)
			}
			if flushErr != nil {
				return flushErr
			}
			continue
		}
		var evs []event.Event
		var err error
		if !canScan {
			evs, err = c.J.Read(proj.Seq()+1, readChunk)
		}
		if err != nil {
			_ = flush()
			return fmt.Errorf("rollups: read journal: %w", err)
		}
		if len(evs) > 0 {
			if !fold(evs) && flushErr != nil {
				return flushErr
			}
			continue
		}
		// Caught up: write what a replay left, then wait for events,
		// waking for the flush only while something is unwritten.
		if rebuilt || (pending > 0 && c.now().Sub(lastFlush) >= FlushEvery) {
			rebuilt = false
			if err := flush(); err != nil {
				return err
			}
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if pending > 0 {
			wctx, cancel = context.WithTimeout(ctx, max(FlushEvery-c.now().Sub(lastFlush), time.Millisecond))
		}
		err = c.J.Wait(wctx, proj.Seq())
		cancel()
		if ctx.Err() != nil {
			if c.crashAtStop {
				return nil
			}
			return flush()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			_ = flush()
			return fmt.Errorf("rollups: wait for the journal: %w", err)
		}
	}
}

// Scanner is what the consumer uses of the journal, when it has it, to
// replay events: [journal.Journal.Scan].
type Scanner interface {
	Scan(from uint64, max int, fn func(r *journal.Record) bool) (uint64, error)
}

// scanChunk is how many records one Scan folds in under the lock.
const scanChunk = 8192

// scan folds in up to scanChunk records: how many, and whether one was an
// agent-stop.
func (c *Consumer) scan(s Scanner, proj *Projector) (n int, stop bool, err error) {
	var aerr error
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = s.Scan(proj.Seq()+1, scanChunk, func(r *journal.Record) bool {
		if aerr = proj.ApplyRecord(r); aerr != nil {
			return false
		}
		n++
		stop = stop || string(r.Kind) == event.KindAgentStop
		return true
	})
	if err == nil {
		err = aerr
	}
	if err != nil {
		return n, stop, fmt.Errorf("rollups: read journal: %w", err)
	}
	return n, stop, nil
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
