package journal

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"imon/event"
)

// Bucket names and keys of the file layout (see the package doc).
var (
	bktEvents  = []byte("events")  // big-endian seq → record
	bktLatest  = []byte("latest")  // monitor → record of its latest event with a State
	bktCursors = []byte("cursors") // name → big-endian seq
	bktMeta    = []byte("meta")    // keyFormat, keyLastMS
	keyFormat  = []byte("format")  // []byte{fileFormat}
	keyLastMS  = []byte("last-ms") // big-endian Unix ms of the last assigned Time
)

// fileFormat is the version of the bucket layout, stored under meta/format.
const fileFormat = 1

// Tuning constants.
const (
	// defaultLockTimeout is Options.LockTimeout when unset.
	defaultLockTimeout = time.Second
	// defaultWriteTimeout is Options.WriteTimeout when unset.
	defaultWriteTimeout = 10 * time.Second
	// closeTimeout bounds Close's wait for the writer to drain.
	closeTimeout = 3 * time.Second
	// clockSlack is how far the wall clock may disagree with the monotonic
	// clock (or the last journaled time be in the future) before it counts
	// as a clock jump.
	clockSlack = 5 * time.Second
	// reopenRetry spaces the attempts to reopen a journal that could not be
	// reopened.
	reopenRetry = time.Second
	// maxBatchEvents bounds one group commit (a single Append larger than
	// this still commits in one transaction, alone).
	maxBatchEvents = 16384
	// lingerMax bounds the wait of linger for a group commit to grow
	// (a commit, two fdatasyncs, takes 0.5 ms or more); lingerEnough
	// pending requests commit at once.
	lingerMax    = 500 * time.Microsecond
	lingerEnough = 256
	// cursorFlushDelay is how long a SetCursor may stay only in memory
	// when no append commits it first. 30 s, not 1 s: the agent journals
	// an event every few seconds (a ping round), and each event moved the
	// consumers' cursors, whose flush a second later was a second commit
	// (two more fdatasyncs and their wakeups) per event; now the cursors
	// ride the next event's commit. After a crash (Close writes them) a
	// consumer may see up to 30 s of events again (at-least-once). The
	// action runner syncs its cursor after each run (SyncCursor).
	cursorFlushDelay = 30 * time.Second
	// retentionInterval is how often the writer looks for events to expire
	// (a pass is a write transaction, two fdatasyncs, even with nothing to
	// delete: once a minute keeps an idle agent idle).
	retentionInterval = 60 * time.Second
	// retentionBusyInterval is the pause between two retention transactions
	// while a backlog is being deleted, so that appends get in between.
	retentionBusyInterval = 20 * time.Millisecond
	// retentionBatch bounds the events deleted by one retention transaction.
	retentionBatch = 20000
	// eventsFillPercent packs the append-only events bucket's pages full
	// (bbolt's default of 50% suits random inserts, not appends).
	eventsFillPercent = 1.0
	// maxMonitorLen bounds Event.Monitor and cursor names, bbolt keys.
	maxMonitorLen = 256
)

// Options configure Open. The zero value is a read-write journal without
// retention.
type Options struct {
	// MaxAge deletes events older than this (by their Time); 0 keeps them.
	MaxAge time.Duration
	// MaxBytes deletes the oldest events while the live data (the file
	// minus its free pages) exceeds this many bytes; 0 = no bound.
	MaxBytes int64
	// LockTimeout is how long Open waits for the file lock; default 1s.
	LockTimeout time.Duration
	// ReadOnly opens without writing, with a shared lock (for the CLI when
	// no agent runs). Append and SyncCursor return ErrReadOnly, SetCursor
	// only changes memory, no retention runs, and a corrupt file gives an
	// error wrapping ErrCorrupt instead of being moved aside.
	ReadOnly bool
	// MaxFileBytes is a hard cap on the file size (bbolt's MaxSize): a
	// commit that would grow the file beyond it fails with ErrNoSpace.
	// 0 = no cap. MaxBytes, not this, is the normal bound.
	MaxFileBytes int64
	// Logger receives the journal's own messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock for event times and age retention; nil = time.Now.
	Now func() time.Time
	// Mono is a monotonic clock (any origin) against which Now is checked
	// for jumps (see the package doc, Time). nil: Go's monotonic clock when
	// Now is nil too; with a fake Now and no Mono, no jump is ever seen.
	Mono func() time.Duration
	// WriteTimeout bounds every wait of Append, SyncCursor and Retain for
	// the writer (also with a context without deadline); default 10s. Past
	// it they return an error wrapping ErrUnavailable.
	WriteTimeout time.Duration
}

// Stats describe a journal; see Journal.Stats.
type Stats struct {
	Path      string // the file
	ReadOnly  bool
	Events    uint64 // events held: LastSeq - FirstSeq + 1
	FirstSeq  uint64 // oldest event held (LastSeq+1 when none)
	LastSeq   uint64 // newest event (0 when none was ever appended)
	FileBytes int64  // size of the file
	LiveBytes int64  // file size in use: FileBytes less free pages and the unused tail
	Monitors  int    // monitors in the Latest index
	Commits   uint64 // write transactions committed since Open
	Recovered string // see Journal.Recovered
}

// Journal is an open journal file. Its methods are safe for concurrent use.
type Journal struct {
	path      string
	opt       Options
	log       *slog.Logger
	now       func() time.Time
	mono      func() time.Duration
	db        atomic.Pointer[bolt.DB] // swapped by the writer when it reopens the file
	recovered string

	// Owned by the writer goroutine (and by Open before it starts).
	file      atomic.Pointer[os.File] // bbolt's descriptor of db: closing it releases the lock
	fileSize  atomic.Int64            // size of the file at the last check (see fileChanged)
	clockWall time.Time               // wall time at the last clock check
	clockMono time.Duration           // mono at the last clock check
	notices   []event.Event           // the journal's own events, journaled with the next commit
	broken    error                   // the file could not be reopened: commits fail with it
	nextTry   time.Time               // when to try reopening a broken journal again
	txHook    func(*bolt.Tx)          // tests: runs inside every write transaction

	runFirst     uint64        // first seq of this Open (see retainPass)
	openMono     time.Duration // mono at Open
	clockSuspect atomic.Bool   // a clock jump was seen: no age retention
	txStart      atomic.Int64  // UnixNano when the writer's current transaction began, 0 when none

	wake      chan struct{} // cap 1: pending work for the writer
	returning atomic.Int64  // callers acknowledged that have not yet returned (see linger)
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the writer has exited

	mu          sync.Mutex // guards all following fields
	closed      bool
	pending     []*request
	firstSeq    uint64
	lastSeq     uint64
	lastMS      int64
	latest      map[string]event.Event
	cursors     map[string]uint64
	dirty       map[string]uint64 // cursors not yet written
	cursorDue   bool              // the cursor timer fired: write dirty even without appends
	cursorTimer *time.Timer       // armed while dirty is not empty
	commitCh    chan struct{}     // closed and replaced on every commit (and on Close)
	commits     uint64
	damaged     map[uint64]bool            // first seqs of damaged ranges journaled (see ReadPast)
	poisons     map[*bolt.DB]chan struct{} // see view
}

// Open opens the journal at path, creating it (and its directory, mode
// 0700; file mode 0600) if missing. See the package doc for locking and for
// what happens with a corrupt file.
func Open(path string, opt Options) (*Journal, error) {
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = defaultLockTimeout
	}
	j := &Journal{
		path:     path,
		opt:      opt,
		log:      opt.Logger,
		now:      opt.Now,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		latest:   make(map[string]event.Event),
		cursors:  make(map[string]uint64),
		commitCh: make(chan struct{}),
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	if opt.WriteTimeout <= 0 {
		j.opt.WriteTimeout = defaultWriteTimeout
	}
	switch {
	case opt.Mono != nil:
		j.mono = opt.Mono
	case opt.Now == nil:
		start := time.Now()
		j.mono = func() time.Duration { return time.Since(start) }
	default: // a fake wall clock: monotonic time follows it, no jumps
		ref := opt.Now()
		j.mono = func() time.Duration { return opt.Now().Sub(ref) }
	}
	if j.now == nil {
		j.now = time.Now
	}
	if err := j.open(); err != nil {
		return nil, err
	}
	if err := j.load(); err != nil {
		_ = j.db.Load().Close()
		return nil, err
	}
	j.runFirst, j.openMono = j.lastSeq+1, j.mono()
	if !opt.ReadOnly {
		j.checkClockAtOpen()
	}
	if opt.ReadOnly {
		close(j.done)
	} else {
		go j.run()
	}
	return j, nil
}

// load reads the in-memory state: sequence bounds, latest index, cursors.
// Everything is O(1) in the number of events.
func (j *Journal) load() error {
	return j.view(func(tx *bolt.Tx) error {
		evb := tx.Bucket(bktEvents)
		if evb == nil { // read-only open of a file never initialised
			j.firstSeq = 1
			return nil
		}
		j.lastSeq = evb.Sequence()
		j.firstSeq = j.lastSeq + 1
		c := evb.Cursor()
		if k, _ := c.First(); k != nil {
			j.firstSeq = binary.BigEndian.Uint64(k)
		}
		if k, v := c.Last(); k != nil {
			_, ms, err := peekTime(v)
			if err != nil {
				return fmt.Errorf("journal %s: last event: %w", j.path, err)
			}
			j.lastMS = ms
		}
		if v := tx.Bucket(bktMeta).Get(keyLastMS); len(v) == 8 {
			if ms := int64(binary.BigEndian.Uint64(v)); ms > j.lastMS {
				j.lastMS = ms
			}
		}
		var d decoder
		err := tx.Bucket(bktLatest).ForEach(func(k, v []byte) error {
			ev, err := d.decode(v)
			if err != nil {
				return fmt.Errorf("journal %s: latest index of %q: %w", j.path, k, err)
			}
			j.latest[string(k)] = ev
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bktCursors).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("journal %s: cursor %q: %w", j.path, k, ErrCorrupt)
			}
			j.cursors[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
}

// view runs fn in a read transaction. A panic inside bbolt (a corrupt page
// met while reading) and a fault on the mapped file become an error
// wrapping ErrCorrupt instead of killing the process.
//
// A fault (a file truncated under its mapping) can hit bbolt while it
// holds its meta lock (in the transaction's setup), which is then never
// released: every later transaction of that db would wait forever. So a
// fault poisons the db (the writer abandons and reopens it), the
// transaction runs in its own goroutine, and a caller waiting on a
// poisoned db gets ErrUnavailable instead of waiting forever (the
// goroutine stays blocked: a bounded leak per incident).
func (j *Journal) view(fn func(tx *bolt.Tx) error) error {
	db := j.db.Load()
	if db == nil { // abandoned by the writer, not reopened (yet)
		return fmt.Errorf("journal %s: %w", j.path, ErrUnavailable)
	}
	poisoned := j.poisonChan(db)
	select {
	case <-poisoned:
		return fmt.Errorf("journal %s: being reopened after a fault: %w", j.path, ErrUnavailable)
	default:
	}
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() { done <- err }()
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if p := recover(); p != nil {
				if _, fault := p.(runtime.Error); fault && j.shrank() {
					j.poison(db)
				}
				err = fmt.Errorf("journal %s: read: panic %v: %w", j.path, p, ErrCorrupt)
			}
		}()
		err = db.View(fn)
	}()
	var err error
	select {
	case err = <-done:
	case <-poisoned:
		select {
		case err = <-done:
		case <-time.After(time.Second):
			return fmt.Errorf("journal %s: read blocked on a faulted file: %w", j.path, errViewAbandoned)
		}
	}
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		j.mu.Lock()
		closed := j.closed
		j.mu.Unlock()
		if closed {
			return fmt.Errorf("journal %s: %w", j.path, ErrClosed)
		}
		// The writer is reopening the file (see reopen).
		return fmt.Errorf("journal %s: being reopened: %w", j.path, ErrUnavailable)
	}
	return err
}

// errViewAbandoned: view gave up on a transaction that may still run fn
// (the caller must not use what fn fills in). It wraps ErrUnavailable.
var errViewAbandoned = fmt.Errorf("read abandoned: %w", ErrUnavailable)

// poisonChan returns the channel closed when db is poisoned (see view).
func (j *Journal) poisonChan(db *bolt.DB) chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.poisons == nil {
		j.poisons = make(map[*bolt.DB]chan struct{})
	}
	ch, ok := j.poisons[db]
	if !ok {
		ch = make(chan struct{})
		j.poisons[db] = ch
	}
	return ch
}

// poison marks db as faulted: its locks may be held forever. The writer
// abandons it and reopens the file.
func (j *Journal) poison(db *bolt.DB) {
	ch := j.poisonChan(db)
	j.mu.Lock()
	select {
	case <-ch:
	default:
		close(ch)
	}
	j.mu.Unlock()
	j.kick()
}

// shrank reports whether the open file is now shorter than when last
// checked: a fault then comes from pages cut off under the mapping (and
// may have left bbolt's locks held), not from a damaged page, which
// readers get past (see ReadPast) without reopening anything.
func (j *Journal) shrank() bool {
	f := j.file.Load()
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Size() < j.fileSize.Load()
}

// isPoisoned reports whether db was poisoned.
func (j *Journal) isPoisoned(db *bolt.DB) bool {
	select {
	case <-j.poisonChan(db):
		return true
	default:
		return false
	}
}

// Append journals evs in one transaction, in order, and returns them as
// stored (Seq assigned, Time as below) once they are committed and
// fsynced. Concurrent Appends are group-committed. The caller's slice is
// not modified. Each event needs a Monitor and a Kind, and Data and State
// must be valid JSON when set (else ErrInvalidEvent).
//
// Time: an event whose Time is zero gets the wall clock's time of the
// commit (UTC, milliseconds). An event whose Time is already set keeps it
// (to the millisecond): the agent re-appends events it queued while the
// journal could not be written with the time they happened. The order of
// the journal is the Seq; times may go back (a clock step, a re-appended
// event), see the package doc.
//
// Append never waits forever. If ctx ends, or Options.WriteTimeout passes,
// before the writer has taken the events, Append returns an error (ctx's,
// or one wrapping ErrUnavailable) and nothing was journaled. Once taken,
// it waits for the commit (also if ctx ends): a nil error means the
// events are durable, and an error from the commit means they are not in
// the journal. If WriteTimeout passes while the commit is still under way
// (a writer stuck on the disk), Append returns an error wrapping
// ErrUnavailable whose events may still be committed later. Errors from the commit wrap
// ErrNoSpace (disk or MaxFileBytes full), ErrReadOnly (read-only file
// system), ErrCorrupt (a damaged file: the writer reopens it, moving it
// aside if it does not pass the checks) or ErrUnavailable (an I/O error,
// a file that could not be reopened); match them with errors.Is. While
// the writer has been stuck in one transaction for longer than
// WriteTimeout, Append fails at once with ErrUnavailable.
func (j *Journal) Append(ctx context.Context, evs ...event.Event) ([]event.Event, error) {
	if j.opt.ReadOnly {
		return nil, fmt.Errorf("journal %s: append: %w", j.path, ErrReadOnly)
	}
	if len(evs) == 0 {
		return nil, nil
	}
	r := &request{evs: make([]event.Event, len(evs)), bodies: make([][]byte, len(evs)), done: make(chan struct{})}
	copy(r.evs, evs)
	for i := range r.evs {
		ev := &r.evs[i]
		if ev.Monitor == "" || ev.Kind == "" || len(ev.Monitor) > maxMonitorLen {
			return nil, fmt.Errorf("journal %s: append event %d of %d (monitor %q, kind %q): need a monitor (at most %d bytes) and a kind: %w",
				j.path, i+1, len(evs), ev.Monitor, ev.Kind, maxMonitorLen, ErrInvalidEvent)
		}
		if (len(ev.Data) > 0 && !json.Valid(ev.Data)) || (len(ev.State) > 0 && !json.Valid(ev.State)) {
			// A record no consumer could marshal would block them all.
			return nil, fmt.Errorf("journal %s: append event %d of %d (%s/%s): data or state is not valid JSON: %w",
				j.path, i+1, len(evs), ev.Monitor, ev.Kind, ErrInvalidEvent)
		}
		r.bodies[i] = appendBody(make([]byte, 0, encodedSize(ev)), ev)
		if len(r.bodies[i]) > MaxRecordBytes {
			return nil, fmt.Errorf("journal %s: append event %d of %d (%s/%s): record of %d bytes exceeds %d: %w",
				j.path, i+1, len(evs), ev.Monitor, ev.Kind, len(r.bodies[i]), MaxRecordBytes, ErrInvalidEvent)
		}
	}
	if err := j.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.evs, nil
}

// submit hands r to the writer and waits for its result, at most until
// ctx ends or Options.WriteTimeout passes.
func (j *Journal) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := j.stuck(); err != nil {
		return err
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return fmt.Errorf("journal %s: %w", j.path, ErrClosed)
	}
	j.pending = append(j.pending, r)
	j.mu.Unlock()
	j.kick()
	deadline := time.NewTimer(j.opt.WriteTimeout)
	defer deadline.Stop()
	timedOut := false
	select {
	case <-r.done:
		j.returning.Add(-1)
		return r.err
	case <-ctx.Done():
	case <-deadline.C:
		timedOut = true
	}
	j.mu.Lock()
	if !r.taken {
		r.cancelled = true
		j.mu.Unlock()
		if timedOut {
			return fmt.Errorf("journal %s: the writer did not take the request within %s: %w", j.path, j.opt.WriteTimeout, ErrUnavailable)
		}
		return ctx.Err()
	}
	j.mu.Unlock()
	// Taken: the commit is under way and its outcome is the answer, unless
	// the writer is stuck (a disk that does not answer) past the deadline.
	if !timedOut {
		select {
		case <-r.done:
			j.returning.Add(-1)
			return r.err
		case <-deadline.C:
		}
	}
	select {
	case <-r.done:
		j.returning.Add(-1)
		return r.err
	default:
	}
	go func() { // the writer acknowledges it some day: keep the count right
		<-r.done
		j.returning.Add(-1)
	}()
	return fmt.Errorf("journal %s: the commit did not finish in time (it may still complete): %w", j.path, ErrUnavailable)
}

// stuck returns an error wrapping ErrUnavailable while the writer has been
// in one transaction for longer than WriteTimeout.
func (j *Journal) stuck() error {
	if s := j.txStart.Load(); s != 0 {
		if d := time.Since(time.Unix(0, s)); d > j.opt.WriteTimeout {
			return fmt.Errorf("journal %s: the writer has been stuck in a transaction for %s: %w", j.path, d.Round(time.Millisecond), ErrUnavailable)
		}
	}
	return nil
}

// kick wakes the writer.
func (j *Journal) kick() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// Read returns up to max events (max <= 0: no limit) starting at seq from,
// in order. A from below FirstSeq starts at FirstSeq; a from above LastSeq
// gives none. The events are copies, independent of the file. A damaged
// record or page gives an error wrapping ErrCorrupt (see ReadPast).
func (j *Journal) Read(from uint64, max int) ([]event.Event, error) {
	out, err := j.read(from, max)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// read is Read that also returns, with an error, the events read before it.
func (j *Journal) read(from uint64, max int) (out []event.Event, err error) {
	err = j.view(func(tx *bolt.Tx) error {
		evb := tx.Bucket(bktEvents)
		if evb == nil {
			return nil
		}
		if last := evb.Sequence(); from <= last {
			n := last - from + 1
			if max > 0 && uint64(max) < n {
				n = uint64(max)
			}
			out = make([]event.Event, 0, min(n, 1<<16))
		}
		var d decoder
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], from)
		c := evb.Cursor()
		for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("journal %s: read from %d: a key of %d bytes: %w", j.path, from, len(k), ErrCorrupt)
			}
			ev, err := d.decode(v)
			if err != nil {
				return fmt.Errorf("journal %s: read event %d: %w", j.path, binary.BigEndian.Uint64(k), err)
			}
			// A damaged page can hand out records that still decode.
			if ev.Seq != binary.BigEndian.Uint64(k) || (len(out) > 0 && ev.Seq <= out[len(out)-1].Seq) {
				return fmt.Errorf("journal %s: read from %d: key %d holds event %d: %w", j.path, from, binary.BigEndian.Uint64(k), ev.Seq, ErrCorrupt)
			}
			out = append(out, ev)
			if max > 0 && len(out) >= max {
				break
			}
		}
		return nil
	})
	if errors.Is(err, errViewAbandoned) {
		return nil, err // fn may still be filling out
	}
	return out, err
}

// Damage is the error ReadPast returns for events it cannot read (damaged
// pages or records): the seq range First..Last. It wraps ErrCorrupt.
type Damage struct {
	Path        string
	First, Last uint64
	Err         error // the read error met at First
}

func (d *Damage) Error() string {
	return fmt.Sprintf("journal %s: events %d to %d (%d) cannot be read, damaged: %v", d.Path, d.First, d.Last, d.Last-d.First+1, d.Err)
}

// Is makes errors.Is(d, ErrCorrupt) true.
func (d *Damage) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the read error.
func (d *Damage) Unwrap() error { return d.Err }

// ReadPast is Read for readers that must get past damage: when the events
// at from cannot be read, it returns a *Damage naming the unreadable range
// (found by probing forward, then bisecting: a few dozen reads), and the
// caller reports it and reads on from Damage.Last+1. Events before the
// damage are returned first, without an error. On a read-write journal,
// each damaged range is also journaled once as journal-damaged.
func (j *Journal) ReadPast(from uint64, max int) ([]event.Event, error) {
	evs, err := j.read(from, max)
	if err == nil || !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrClosed) {
		if err != nil {
			return nil, err
		}
		return evs, nil
	}
	if len(evs) > 0 {
		return evs, nil // the damage starts after them: the next call finds it
	}
	bad := from
	if first := j.FirstSeq(); bad < first {
		bad = first
	}
	last := j.LastSeq()
	if bad > last {
		return nil, err
	}
	// good reports whether a read at s works, and the seq it starts at.
	good := func(s uint64) (uint64, bool) {
		evs, err := j.read(s, 1)
		if err != nil {
			return 0, false
		}
		if len(evs) == 0 {
			return last + 1, true
		}
		return evs[0].Seq, true
	}
	lo, hi, hiSeq := bad, last+1, last+1 // lo is bad; hi is good (or the end)
	for step := uint64(1); bad+step <= last; step *= 2 {
		if seq, ok := good(bad + step); ok {
			hi, hiSeq = bad+step, seq
			break
		}
		lo = bad + step
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if seq, ok := good(mid); ok {
			hi, hiSeq = mid, seq
		} else {
			lo = mid
		}
	}
	d := &Damage{Path: j.path, First: bad, Last: hiSeq - 1, Err: err}
	j.reportDamage(d)
	return nil, d
}

// reportDamage journals a damaged range once per Open (read-write only),
// in its own goroutine: a reader must not wait for the writer.
func (j *Journal) reportDamage(d *Damage) {
	if j.opt.ReadOnly {
		return
	}
	j.mu.Lock()
	if j.damaged == nil {
		j.damaged = make(map[uint64]bool)
	}
	seen := j.damaged[d.First]
	j.damaged[d.First] = true
	j.mu.Unlock()
	if seen {
		return
	}
	j.log.Error("journal: damaged events skipped", "path", j.path, "first_seq", d.First, "last_seq", d.Last, "err", d.Err)
	ev := event.New(event.MonitorAgent, event.KindJournalDamaged,
		fmt.Sprintf("Journal %s: events %d to %d cannot be read (damaged pages); readers skip them", j.path, d.First, d.Last),
		map[string]any{"first_seq": d.First, "last_seq": d.Last, "count": d.Last - d.First + 1, "error": d.Err.Error()}).WithLevel(event.LevelError)
	go func() { // bounded by WriteTimeout; ends with the journal (ErrClosed)
		if _, err := j.Append(context.Background(), ev); err != nil {
			j.log.Error("journal: journal-damaged not journaled", "path", j.path, "err", err)
		}
	}()
}

// Wait blocks until LastSeq() > after, ctx ends (ctx's error) or the
// journal is closed (ErrClosed). It does not poll: every commit wakes it.
func (j *Journal) Wait(ctx context.Context, after uint64) error {
	for {
		j.mu.Lock()
		last, ch, closed := j.lastSeq, j.commitCh, j.closed
		j.mu.Unlock()
		if last > after {
			return nil
		}
		if closed {
			return fmt.Errorf("journal %s: wait: %w", j.path, ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// FirstSeq is the seq of the oldest event held, or LastSeq()+1 when the
// journal holds none (new, or everything expired).
func (j *Journal) FirstSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.firstSeq
}

// LastSeq is the seq of the newest event, 0 if none was ever appended. It
// never decreases, not even when retention deletes every event.
func (j *Journal) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lastSeq
}

// SeqAt returns the seq of the first event held whose Time is at or after
// t, or LastSeq()+1 if there is none. It is a binary search over the
// seqs: exact while times do not decrease, approximate around a clock
// jump or re-appended events (the order is the seq; callers that filter
// by time check each event's Time too).
func (j *Journal) SeqAt(t time.Time) (uint64, error) {
	target := t.UnixMilli()
	if t.After(time.UnixMilli(target)) { // a sub-ms part: round up
		target++
	}
	j.mu.Lock()
	lo, hi := j.firstSeq, j.lastSeq+1 // answer in [lo, hi]
	j.mu.Unlock()
	err := j.view(func(tx *bolt.Tx) error {
		evb := tx.Bucket(bktEvents)
		if evb == nil {
			return nil
		}
		c := evb.Cursor()
		var key [8]byte
		for lo < hi {
			mid := lo + (hi-lo)/2
			binary.BigEndian.PutUint64(key[:], mid)
			k, v := c.Seek(key[:])
			if k == nil { // expired meanwhile past mid: nothing at or after
				hi = mid
				continue
			}
			_, ms, err := peekTime(v)
			if err != nil {
				return fmt.Errorf("journal %s: seq at %s: event %d: %w", j.path, t, binary.BigEndian.Uint64(k), err)
			}
			if ms >= target {
				hi = mid
			} else {
				lo = binary.BigEndian.Uint64(k) + 1
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return lo, nil
}

// Latest returns the latest event of monitor that carried a State (the
// monitor's snapshot to restore), from an index kept in the same
// transactions as the appends: O(1), and kept even after retention has
// deleted the event from the stream.
func (j *Journal) Latest(monitor string) (event.Event, bool) {
	j.mu.Lock()
	ev, ok := j.latest[monitor]
	j.mu.Unlock()
	if !ok {
		return event.Event{}, false
	}
	return cloneEvent(ev), true
}

// Snapshots returns the Latest event of every monitor that has one,
// sorted by monitor.
func (j *Journal) Snapshots() []event.Event {
	j.mu.Lock()
	out := make([]event.Event, 0, len(j.latest))
	for _, ev := range j.latest {
		out = append(out, cloneEvent(ev))
	}
	j.mu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Monitor < out[b].Monitor })
	return out
}

// cloneEvent deep-copies ev's slices, so callers cannot alter the index.
func cloneEvent(ev event.Event) event.Event {
	if ev.Args != nil {
		ev.Args = append([]string(nil), ev.Args...)
	}
	if ev.Data != nil {
		ev.Data = append([]byte(nil), ev.Data...)
	}
	if ev.State != nil {
		ev.State = append([]byte(nil), ev.State...)
	}
	return ev
}

// Cursor returns the seq stored under name (a consumer's position, such
// as the last event published to MQTT), 0 if none.
func (j *Journal) Cursor(name string) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cursors[name]
}

// SetCursor stores seq under name, lazily: in memory at once, and in the
// file with the writer's next transaction, at Close, or within about a
// second. After a crash the stored cursor may therefore lag: consumers
// must tolerate seeing events again (at-least-once).
func (j *Journal) SetCursor(name string, seq uint64) {
	if !validCursorName(name) {
		j.log.Error("journal: cursor name ignored", "path", j.path, "name", name)
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cursors[name] = seq
	if j.opt.ReadOnly || j.closed {
		return
	}
	if j.dirty == nil {
		j.dirty = make(map[string]uint64)
	}
	j.dirty[name] = seq
	if j.cursorTimer == nil {
		j.cursorTimer = time.AfterFunc(cursorFlushDelay, j.cursorTimerFired)
	}
}

// validCursorName reports whether name can be a cursor (a bbolt key).
func validCursorName(name string) bool { return name != "" && len(name) <= maxMonitorLen }

// SyncCursor stores seq under name and returns once it is durable (it
// commits through the writer, together with any pending appends).
func (j *Journal) SyncCursor(ctx context.Context, name string, seq uint64) error {
	if j.opt.ReadOnly {
		return fmt.Errorf("journal %s: sync cursor %q: %w", j.path, name, ErrReadOnly)
	}
	if !validCursorName(name) {
		return fmt.Errorf("journal %s: sync cursor %q: the name must have 1 to %d bytes", j.path, name, maxMonitorLen)
	}
	j.SetCursor(name, seq)
	return j.submit(ctx, &request{sync: true, done: make(chan struct{})})
}

// Retain runs retention now (MaxAge, MaxBytes) until nothing more is due,
// and returns how many events it deleted. The writer also does this by
// itself every few seconds; Retain is for tests and tools.
func (j *Journal) Retain(ctx context.Context) (int, error) {
	if j.opt.ReadOnly {
		return 0, fmt.Errorf("journal %s: retain: %w", j.path, ErrReadOnly)
	}
	r := &request{retain: true, done: make(chan struct{})}
	if err := j.submit(ctx, r); err != nil {
		return r.deleted, err
	}
	return r.deleted, nil
}

// Stats returns figures about the journal.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	s := Stats{
		Path:      j.path,
		ReadOnly:  j.opt.ReadOnly,
		FirstSeq:  j.firstSeq,
		LastSeq:   j.lastSeq,
		Monitors:  len(j.latest),
		Commits:   j.commits,
		Recovered: j.recovered,
	}
	j.mu.Unlock()
	if s.LastSeq >= s.FirstSeq {
		s.Events = s.LastSeq - s.FirstSeq + 1
	}
	if fi, err := os.Stat(j.path); err == nil {
		s.FileBytes = fi.Size()
	}
	_ = j.view(func(tx *bolt.Tx) error {
		s.LiveBytes = liveBytes(tx.DB(), tx)
		return nil
	})
	return s
}

// liveBytes is the part of the file holding data: up to the high-water
// mark, less the free and pending pages.
func liveBytes(db *bolt.DB, tx *bolt.Tx) int64 {
	st := db.Stats()
	return tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(db.Info().PageSize)
}

// Verify runs bbolt's full consistency check (tx.Check) and decodes every
// event and index entry, checking that seqs run gap-free from FirstSeq.
// It reads the whole file in one read transaction, during which the file
// cannot grow (appends that need more space wait): it is for tests and
// tools, not for every Open. Problems are returned wrapping ErrCorrupt.
func (j *Journal) Verify() error {
	return j.view(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("journal %s: bbolt check: %w: %w", j.path, errors.Join(errs...), ErrCorrupt)
		}
		evb := tx.Bucket(bktEvents)
		if evb == nil {
			return nil
		}
		var want uint64
		err := evb.ForEach(func(k, v []byte) error {
			if r := checkRecord(k, v); r != "" {
				return fmt.Errorf("%s: %w", r, ErrCorrupt)
			}
			seq := binary.BigEndian.Uint64(k)
			if want != 0 && seq != want {
				return fmt.Errorf("event %d follows %d: %w", seq, want-1, ErrCorrupt)
			}
			want = seq + 1
			return nil
		})
		if err == nil && want != 0 && want-1 != evb.Sequence() {
			err = fmt.Errorf("last event %d, sequence %d: %w", want-1, evb.Sequence(), ErrCorrupt)
		}
		if err == nil {
			err = tx.Bucket(bktLatest).ForEach(func(k, v []byte) error {
				if _, err := DecodeEvent(v); err != nil {
					return fmt.Errorf("latest index entry %q: %w", k, err)
				}
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("journal %s: verify: %w", j.path, err)
		}
		return nil
	})
}

// Recovered returns the path the corrupt journal file was moved to when
// Open found one (and started a fresh journal), "" otherwise. The agent
// journals an event about it.
func (j *Journal) Recovered() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.recovered
}

// Path returns the journal's file path.
func (j *Journal) Path() string { return j.path }

// Close commits pending appends and cursors, stops the writer and closes
// the file. Appends after Close return ErrClosed; Close is idempotent. It
// waits at most a few seconds for the writer: a writer stuck on the disk
// is left behind (the file's lock is released) and Close returns an error
// wrapping ErrUnavailable.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		select {
		case <-j.done:
		case <-time.After(closeTimeout):
		}
		return nil
	}
	j.closed = true
	close(j.commitCh) // wake waiters: they see closed
	j.commitCh = make(chan struct{})
	j.mu.Unlock()
	close(j.stop)
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	select {
	case <-j.done:
	case <-timer.C:
		releaseFile(j.file.Load()) // the stuck writer's mapping is left

		return fmt.Errorf("journal %s: close: the writer did not stop within %s: %w", j.path, closeTimeout, ErrUnavailable)
	}
	j.mu.Lock()
	if j.cursorTimer != nil {
		j.cursorTimer.Stop()
		j.cursorTimer = nil
	}
	j.mu.Unlock()
	if db := j.db.Load(); db != nil {
		if err := db.Close(); err != nil {
			return fmt.Errorf("journal %s: close: %w", j.path, err)
		}
	}
	return nil
}
