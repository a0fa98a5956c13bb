package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"imon/event"
)

// request is one caller's work for the writer: an Append (evs, and meta
// for a Merge), a SyncCursor (sync) or a Retain (retain).
type request struct {
	evs     []event.Event     // copies of the caller's events; Seq and Time set on commit
	bodies  [][]byte          // evs encoded, without the header (see appendBody)
	sync    bool              // commit even without events (SyncCursor)
	retain  bool              // run retention to completion (Retain)
	meta    map[string][]byte // Merge: meta keys stored in the same transaction
	deleted int               // retain: events deleted
	err     error             // the outcome, set before done is closed
	done    chan struct{}     // closed by the writer

	taken     bool // guarded by Journal.mu: the writer owns it now
	cancelled bool // guarded by Journal.mu: the caller gave up before taken
}

// errNoop rolls back a transaction that found nothing to do.
var errNoop = errors.New("nothing to do")

// run is the writer goroutine, the only one that writes to the file. It
// group-commits whatever is pending, flushes dirty cursors and runs
// retention. It stops when Close closes j.stop, after draining.
func (j *Journal) run() {
	defer close(j.done)
	retaining := j.opt.MaxAge > 0 || j.opt.MaxBytes > 0
	nextRetain := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if retaining && !time.Now().Before(nextRetain) {
			_, more, err := j.retainPass()
			if err != nil {
				j.log.Error("journal retention failed", "path", j.path, "err", err)
			}
			nextRetain = time.Now().Add(retentionInterval)
			if more && err == nil {
				nextRetain = time.Now().Add(retentionBusyInterval)
			}
		}
		j.linger()
		batch, retains, cursors := j.take(false)
		if len(batch) > 0 || len(retains) > 0 || cursors != nil {
			if len(batch) > 0 || cursors != nil {
				j.commit(batch, cursors)
			}
			j.retainFor(retains)
			continue
		}
		var timerC <-chan time.Time
		if retaining {
			timer.Reset(time.Until(nextRetain))
			timerC = timer.C
		}
		select {
		case <-j.wake:
		case <-timerC:
		case <-j.stop:
			j.drain()
			return
		}
	}
}

// linger lets a group commit grow. Callers acknowledged by the previous
// commit are runnable, often about to append again: while some have not
// yet been scheduled (j.returning), the writer yields the processor to
// them, at most lingerMax in all, then takes the batch. An idle journal
// and a lone appender do not wait. (Go timers cannot sleep for less than
// about a millisecond, longer than the whole linger should be, hence
// yields rather than a timer.)
func (j *Journal) linger() {
	j.mu.Lock()
	n := len(j.pending)
	j.mu.Unlock()
	if n == 0 || n >= lingerEnough || j.returning.Load() == 0 {
		return
	}
	deadline := time.Now().Add(lingerMax)
	for j.returning.Load() > 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
}

// ack hands r's outcome (already in r) to its caller.
func (j *Journal) ack(r *request) {
	j.returning.Add(1)
	close(r.done)
}

// drain commits what is left at Close: every request still pending, and
// the dirty cursors (one attempt if only cursors are left).
func (j *Journal) drain() {
	for {
		batch, retains, cursors := j.take(true)
		if len(batch) == 0 && len(retains) == 0 && cursors == nil {
			return
		}
		ok := true
		if len(batch) > 0 || cursors != nil {
			ok = j.commit(batch, cursors)
		}
		j.retainFor(retains)
		if !ok && len(batch) == 0 && len(retains) == 0 {
			return
		}
	}
}

// take removes the next batch of pending requests (at most about
// maxBatchEvents events), the Retain requests, and the dirty cursors when
// they go along: with any request, when their timer fired, or at Close.
func (j *Journal) take(closing bool) (batch, retains []*request, cursors map[string]uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, i := 0, 0
	for ; i < len(j.pending); i++ {
		r := j.pending[i]
		if r.cancelled {
			continue
		}
		if n > 0 && n+len(r.evs) > maxBatchEvents {
			break
		}
		r.taken = true
		if r.retain {
			retains = append(retains, r)
			continue
		}
		batch = append(batch, r)
		n += len(r.evs)
	}
	if i == len(j.pending) {
		clear(j.pending)
		j.pending = j.pending[:0]
	} else {
		j.pending = append([]*request(nil), j.pending[i:]...)
	}
	if len(j.dirty) > 0 && (len(batch) > 0 || j.cursorDue || closing) {
		cursors, j.dirty = j.dirty, nil
		j.cursorDue = false
		if j.cursorTimer != nil {
			j.cursorTimer.Stop()
			j.cursorTimer = nil
		}
	}
	return batch, retains, cursors
}

// cursorTimerFired is the cursor timer's callback.
func (j *Journal) cursorTimerFired() {
	j.mu.Lock()
	j.cursorDue = true
	j.mu.Unlock()
	j.kick()
}

// update runs fn in a write transaction. A panic in bbolt (a corrupt page
// met while writing, a fault on a file truncated under it) becomes an
// error wrapping ErrCorrupt, and the writer reopens the file (see reopen):
// bbolt may still hold its writer lock after such a panic, and every later
// transaction would wait for it forever. fn may run again after a reopen
// (once): it must not depend on state it changed in a failed attempt.
func (j *Journal) update(fn func(tx *bolt.Tx) error) error {
	if err := j.ready(); err != nil {
		return err
	}
	p, stuck, err := j.updateOnce(fn)
	if p == nil {
		return err
	}
	reason := fmt.Sprintf("panic in write transaction: %v", p)
	j.log.Error("journal: bbolt panicked in a write transaction: reopening the file", "path", j.path, "panic", p, "writer_lock_held", stuck)
	j.reopen(reason, stuck)
	if j.broken != nil {
		return fmt.Errorf("journal %s: %s: %w: %w", j.path, reason, ErrCorrupt, j.broken)
	}
	p, stuck, err = j.updateOnce(fn) // the reopened file: once more
	if p == nil {
		return err
	}
	// The file passed Open's checks but panics again: damage the checks do
	// not see (a branch page). Move it aside and go on in a fresh journal,
	// rather than fail every commit (at start: a restart loop).
	reason = fmt.Sprintf("panic in write transaction, again after reopening: %v", p)
	j.log.Error("journal: bbolt panics again on the reopened file: moving it aside", "path", j.path, "panic", p)
	j.reopenAside(reason, stuck)
	if j.broken != nil {
		return fmt.Errorf("journal %s: %s: %w: %w", j.path, reason, ErrCorrupt, j.broken)
	}
	p, stuck, err = j.updateOnce(fn)
	if p != nil {
		j.reopen(fmt.Sprintf("panic in write transaction: %v", p), stuck)
		return fmt.Errorf("journal %s: %s, and in a fresh journal: %v: %w", j.path, reason, p, ErrCorrupt)
	}
	return err
}

// updateOnce is one db.Update, with a panic returned as a value. stuck
// reports that bbolt did not finish the transaction (its writer lock may
// be held: the db must be abandoned, not used or closed). The transaction
// runs in its own goroutine: if a reader's fault poisons the db meanwhile
// (see view), bbolt may wait forever on a lock the fault left held, and
// the writer gives up on it after a grace second instead of hanging.
func (j *Journal) updateOnce(fn func(tx *bolt.Tx) error) (panicked any, stuck bool, err error) {
	db := j.db.Load()
	j.txStart.Store(time.Now().UnixNano())
	defer j.txStart.Store(0)
	type result struct {
		err      error
		panicked any
		stuck    bool
	}
	done := make(chan result, 1)
	go func() {
		var r result
		var tx *bolt.Tx
		defer func() { done <- r }()
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if p := recover(); p != nil {
				// bbolt's Update rolls back in a deferred call, which clears
				// tx.DB(); a rollback that panicked too (it reads the
				// freelist page) left the writer lock held.
				r = result{nil, p, tx == nil || tx.DB() != nil}
				if _, fault := p.(runtime.Error); fault && j.shrank() {
					j.poison(db)
				}
			}
		}()
		r.err = db.Update(func(t *bolt.Tx) error {
			tx = t
			if j.txHook != nil {
				j.txHook(t)
			}
			return fn(t)
		})
	}()
	poisoned := j.poisonChan(db)
	select {
	case r := <-done:
		return r.panicked, r.stuck, r.err
	case <-poisoned:
	}
	select {
	case r := <-done:
		return r.panicked, r.stuck, r.err
	case <-time.After(time.Second):
		return "a read faulted on the file and this transaction is blocked", true, nil
	}
}

// commit writes a batch and the given cursors in one transaction, then
// acknowledges every request of the batch: all with success, or all with
// the same error. It reports whether the commit succeeded. The journal's
// own events (notices: clock-jump, journal-recovered) go first.
func (j *Journal) commit(batch []*request, cursors map[string]uint64) bool {
	now := j.now()
	j.checkClock(now)
	n, size := 0, 0
	for _, r := range batch {
		n += len(r.evs)
		for _, b := range r.bodies {
			size += maxHeaderLen + len(b)
		}
	}
	ms := now.UnixMilli()
	type snapshot struct {
		monitor string
		rec     []byte
	}
	var snaps []snapshot
	var seq uint64
	var notices []event.Event
	err := j.update(func(tx *bolt.Tx) error {
		j.mu.Lock()
		seq = j.lastSeq
		j.mu.Unlock()
		snaps = snaps[:0]
		notices = append(notices[:0], j.notices...) // a reopen may add one
		evb, lb := tx.Bucket(bktEvents), tx.Bucket(bktLatest)
		evb.FillPercent = eventsFillPercent
		for i := range notices {
			seq++
			ev := &notices[i]
			ev.Seq, ev.Time = seq, time.UnixMilli(ms).UTC()
			if err := evb.Put(be64(seq), EncodeEvent(*ev)); err != nil {
				return fmt.Errorf("put event %d: %w", seq, err)
			}
		}
		// bbolt keeps references to keys and values until the commit:
		// one arena each, never reallocated.
		keys := make([]byte, 8*n)
		arena := make([]byte, 0, size)
		for _, r := range batch {
			for i := range r.evs {
				seq++
				ev := &r.evs[i]
				evms := ms
				if !ev.Time.IsZero() { // queued by the caller: keeps its time
					evms = ev.Time.UnixMilli()
				}
				ev.Seq, ev.Time = seq, time.UnixMilli(evms).UTC()
				k := keys[:8:8]
				keys = keys[8:]
				binary.BigEndian.PutUint64(k, seq)
				start := len(arena)
				arena = appendHeader(arena, seq, evms)
				arena = append(arena, r.bodies[i]...)
				rec := arena[start:len(arena):len(arena)]
				if err := evb.Put(k, rec); err != nil {
					return fmt.Errorf("put event %d: %w", seq, err)
				}
				if len(ev.State) > 0 {
					if err := lb.Put([]byte(ev.Monitor), rec); err != nil {
						return fmt.Errorf("index event %d of %q: %w", seq, ev.Monitor, err)
					}
					snaps = append(snaps, snapshot{ev.Monitor, rec})
				}
			}
		}
		if n+len(notices) > 0 {
			if err := evb.SetSequence(seq); err != nil {
				return fmt.Errorf("set sequence: %w", err)
			}
			if err := tx.Bucket(bktMeta).Put(keyLastMS, be64(uint64(ms))); err != nil {
				return fmt.Errorf("put last time: %w", err)
			}
		}
		cb := tx.Bucket(bktCursors)
		for name, s := range cursors {
			if err := cb.Put([]byte(name), be64(s)); err != nil {
				return fmt.Errorf("put cursor %q: %w", name, err)
			}
		}
		for _, r := range batch {
			for k, v := range r.meta {
				if err := tx.Bucket(bktMeta).Put([]byte(k), v); err != nil {
					return fmt.Errorf("put meta %q: %w", k, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		j.mu.Lock()
		for name, s := range cursors { // keep them for the next attempt
			if _, again := j.dirty[name]; !again {
				if j.dirty == nil {
					j.dirty = make(map[string]uint64)
				}
				j.dirty[name] = s
			}
		}
		if len(j.dirty) > 0 && j.cursorTimer == nil && !j.closed {
			j.cursorTimer = time.AfterFunc(cursorFlushDelay, j.cursorTimerFired)
		}
		j.mu.Unlock()
		werr := j.commitError(err, n, len(cursors))
		j.log.Error("journal commit failed", "path", j.path, "events", n, "err", err)
		for _, r := range batch {
			r.err = werr
			j.ack(r)
		}
		return false
	}
	j.notices = j.notices[len(notices):]
	for _, ev := range notices {
		j.log.Warn("journal: "+ev.Msg, "seq", ev.Seq, "kind", ev.Kind)
	}
	var d decoder
	latest := make(map[string]event.Event, len(snaps))
	for _, s := range snaps {
		if ev, err := d.decode(s.rec); err == nil { // our own encoding: cannot fail
			latest[s.monitor] = ev
		}
	}
	j.mu.Lock()
	if n+len(notices) > 0 {
		j.lastSeq, j.lastMS = seq, ms
	}
	for m, ev := range latest {
		j.latest[m] = ev
	}
	j.commits++
	close(j.commitCh)
	j.commitCh = make(chan struct{})
	j.mu.Unlock()
	for _, r := range batch {
		j.ack(r)
	}
	return true
}

// commitError wraps a failed commit's error for the callers.
func (j *Journal) commitError(err error, events, cursors int) error {
	what := fmt.Sprintf("journal %s: commit of %d events and %d cursors failed", j.path, events, cursors)
	switch {
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrUnavailable):
		return fmt.Errorf("%s: %w", what, err)
	case isNoSpace(err):
		return fmt.Errorf("%s: %w: %w", what, ErrNoSpace, err)
	case errors.Is(err, syscall.EROFS) || strings.Contains(err.Error(), syscall.EROFS.Error()):
		return fmt.Errorf("%s: %w: %w", what, ErrReadOnly, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}

// isNoSpace reports whether err means a full disk or a full MaxFileBytes.
// bbolt formats some file errors with %s, hence the string test.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, berrors.ErrMaxSizeReached) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// retainFor serves Retain requests: retention passes until one deletes
// nothing.
func (j *Journal) retainFor(retains []*request) {
	for _, r := range retains {
		for {
			n, _, err := j.retainPass()
			r.deleted += n
			if err != nil {
				r.err = err
				break
			}
			if n == 0 {
				break
			}
		}
		j.ack(r)
	}
}

// retainPass deletes, in one transaction, up to retentionBatch of the
// oldest events that are older than MaxAge or beyond MaxBytes, always from
// the front (c.First + c.Delete: deleting while stepping with Next skips
// keys). It reports how many it deleted and whether more may be due.
func (j *Journal) retainPass() (deleted int, more bool, err error) {
	// By age: not at all while the clock looks wrong (a jump was seen):
	// then only the size bound deletes. And never an event of this run
	// before this run is MaxAge old by the monotonic clock: none of them
	// can be older, whatever the wall clock says.
	byAge := j.opt.MaxAge > 0 && !j.clockSuspect.Load()
	protectFrom := uint64(math.MaxUint64)
	if j.mono()-j.openMono < j.opt.MaxAge {
		protectFrom = j.runFirst
	}
	cutoff := int64(math.MinInt64)
	if byAge {
		cutoff = j.now().Add(-j.opt.MaxAge).UnixMilli()
	}
	j.mu.Lock()
	first, last := j.firstSeq, j.lastSeq
	j.mu.Unlock()
	newFirst := first
	err = j.update(func(tx *bolt.Tx) error {
		bySize := 0
		if j.opt.MaxBytes > 0 && last >= first {
			if live := liveBytes(tx.DB(), tx); live > j.opt.MaxBytes {
				// Delete down to 95% of the bound, so that size
				// retention works in batches, not a few events per pass.
				per := max(live/int64(last-first+1), 1)
				target := j.opt.MaxBytes - j.opt.MaxBytes/20
				bySize = int(min((live-target+per-1)/per, math.MaxInt32))
			}
		}
		deleted = 0 // a second attempt after a reopen starts over
		c := tx.Bucket(bktEvents).Cursor()
		for deleted < retentionBatch {
			k, v := c.First()
			if k == nil {
				break
			}
			if deleted >= bySize {
				if !byAge || binary.BigEndian.Uint64(k) >= protectFrom {
					break
				}
				if _, ms, err := peekTime(v); err != nil || ms >= cutoff {
					break
				}
			}
			if err := c.Delete(); err != nil {
				return fmt.Errorf("delete event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			deleted++
		}
		if deleted == 0 {
			return errNoop
		}
		newFirst = last + 1
		if k, _ := c.First(); k != nil {
			newFirst = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if errors.Is(err, errNoop) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("journal %s: retention: %w", j.path, err)
	}
	j.mu.Lock()
	j.firstSeq = newFirst
	j.commits++
	j.mu.Unlock()
	j.log.Debug("journal retention", "path", j.path, "deleted", deleted, "first", newFirst)
	return deleted, deleted == retentionBatch, nil
}

// be64 encodes v big-endian.
func be64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
