package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"imon/event"
)

// The writer's recovery from a file that fails under it (bbolt panics, a
// file truncated, deleted or replaced while open) and its clock checks.
// Everything here runs on the writer goroutine (or in Open before it
// starts).

// ready is called before every write transaction: it reopens the file when
// it changed under the journal (truncated, deleted, replaced), and retries
// a reopen that failed, at most every reopenRetry. A journal that could not
// be reopened returns an error wrapping ErrUnavailable.
func (j *Journal) ready() error {
	if j.db.Load() == nil && j.broken == nil {
		j.broken = fmt.Errorf("journal %s: %w", j.path, ErrUnavailable)
	}
	if j.broken != nil {
		if time.Now().Before(j.nextTry) {
			return j.broken
		}
		j.reopen("retrying after a failed reopen", true)
		return j.broken
	}
	if db := j.db.Load(); db != nil && j.isPoisoned(db) {
		reason := "a read faulted on the mapped file"
		if r := j.fileChanged(); r != "" {
			reason = r
		}
		j.log.Error("journal: the file faulted under the running journal: reopening it", "path", j.path, "reason", reason)
		j.reopen(reason, true) // its locks may be held: abandon it
		return j.broken
	}
	if reason := j.fileChanged(); reason != "" {
		j.log.Error("journal: the file changed under the running journal: reopening it", "path", j.path, "reason", reason)
		j.reopen(reason, false)
		return j.broken
	}
	return nil
}

// fileChanged reports, in words, whether the file under the open db is no
// longer the journal: it shrank (truncated: its pages are gone, and bbolt
// would fault on them or write a sparse, corrupt file), or the path was
// deleted or names another file. Two stats per commit.
func (j *Journal) fileChanged() string {
	f := j.file.Load()
	if f == nil {
		return ""
	}
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if was := j.fileSize.Load(); fi.Size() < was {
		return fmt.Sprintf("the file was truncated while open (%d bytes, was %d)", fi.Size(), was)
	}
	j.fileSize.Store(fi.Size())
	pfi, err := os.Stat(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "the file was deleted while open"
	case err == nil && !os.SameFile(fi, pfi):
		return "the file was replaced while open"
	}
	return ""
}

// reopen closes the db and opens the file again, with Open's checks: a
// file that fails them is moved aside (kept) and a fresh journal created.
// The fresh journal continues the seqs and keeps the latest index and the
// cursors held in memory, so consumers and `imon status` go on; a
// journal-recovered event says what happened. stuck means bbolt may still
// hold its writer lock: the db is abandoned (its descriptor closed, which
// releases the file lock; its memory mapping is left), never used again.
// On failure j.broken is set and commits fail until a later retry works.
func (j *Journal) reopen(reason string, stuck bool) { j.reopenWith(reason, stuck, "") }

// reopenWith is reopen; movedAside names a file the caller moved aside.
func (j *Journal) reopenWith(reason string, stuck bool, movedAside string) {
	old, oldFile := j.db.Load(), j.file.Load()
	if stuck {
		releaseFile(oldFile)
	} else {
		closeWithin(old, oldFile, time.Second)
	}
	j.db.Store(nil)
	j.file.Store(nil)
	j.mu.Lock()
	asideBefore := j.recovered
	j.mu.Unlock()
	if err := j.open(); err != nil {
		if j.broken == nil {
			j.log.Error("journal: reopening the file failed; appends fail until it works", "path", j.path, "err", err)
		}
		j.broken = fmt.Errorf("journal %s: reopen after %s: %w: %w", j.path, reason, ErrUnavailable, err)
		j.nextTry = time.Now().Add(reopenRetry)
		return
	}
	j.mu.Lock()
	aside := j.recovered
	j.mu.Unlock()
	if aside == asideBefore {
		aside = movedAside
	}
	fresh, err := j.adopt()
	if err != nil {
		j.log.Error("journal: the reopened file cannot continue the journal", "path", j.path, "err", err)
		j.broken = fmt.Errorf("journal %s: reopen after %s: %w: %w", j.path, reason, ErrUnavailable, err)
		j.nextTry = time.Now().Add(reopenRetry)
		return
	}
	j.broken = nil
	if !fresh && aside == "" {
		j.log.Warn("journal: reopened the file, it is intact", "path", j.path, "reason", reason)
		return
	}
	j.mu.Lock()
	next := j.lastSeq + 1
	j.mu.Unlock()
	msg := fmt.Sprintf("Journal %s failed while running (%s): started a fresh journal, continuing at seq %d", j.path, reason, next)
	data := map[string]any{"path": j.path, "reason": reason, "continues_at": next}
	if aside != "" {
		msg = fmt.Sprintf("Journal %s failed while running (%s): moved aside to %s, started a fresh journal, continuing at seq %d", j.path, reason, aside, next)
		data["aside"] = aside
	}
	j.notices = append(j.notices, event.New(event.MonitorAgent, event.KindJournalRecovered, msg, data).WithLevel(event.LevelError))
}

// reopenAside is reopen for a file that passes Open's checks but fails
// in use: it is moved aside (kept) before the reopen, so that a fresh
// journal takes its place.
func (j *Journal) reopenAside(reason string, stuck bool) {
	old, oldFile := j.db.Load(), j.file.Load()
	if stuck {
		releaseFile(oldFile)
	} else {
		closeWithin(old, oldFile, time.Second)
	}
	j.db.Store(nil)
	j.file.Store(nil)
	if err := j.withLock(func() error { return j.corrupt(reason) }); err != nil {
		j.log.Error("journal: moving the failing file aside failed", "path", j.path, "err", err)
	}
	j.mu.Lock()
	aside := j.recovered
	j.mu.Unlock()
	j.reopenWith(reason, true, aside)
}

// closeWithin closes db, or, if that does not finish within d (a reader
// that does not let go), closes its file to release the lock.
func closeWithin(db *bolt.DB, file *os.File, d time.Duration) {
	if db == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_ = db.Close()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		releaseFile(file)
	}
}

// releaseFile unlocks and closes bbolt's descriptor of a db that is given
// up. The explicit unlock matters: bbolt's memory mapping keeps the open
// file (and so its lock) alive after the descriptor is closed.
func releaseFile(f *os.File) {
	if f == nil {
		return
	}
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = syscall.Flock(int(fd), syscall.LOCK_UN) })
	}
	_ = f.Close()
}

// adopt makes the newly opened db continue the journal held in memory. If
// it is the same journal (its last seq is not behind), its state is taken;
// else (a fresh file) its sequence is set to the last seq journaled, and
// the latest index and the cursors are written to it. fresh reports the
// latter.
func (j *Journal) adopt() (fresh bool, err error) {
	db := j.db.Load()
	var fileFirst, fileLast uint64
	err = j.view(func(tx *bolt.Tx) error {
		evb := tx.Bucket(bktEvents)
		fileLast = evb.Sequence()
		fileFirst = fileLast + 1
		if k, _ := evb.Cursor().First(); k != nil {
			fileFirst = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	j.mu.Lock()
	last, lastMS := j.lastSeq, j.lastMS
	latest := make(map[string]event.Event, len(j.latest))
	for m, ev := range j.latest {
		latest[m] = ev
	}
	cursors := make(map[string]uint64, len(j.cursors))
	for n, s := range j.cursors {
		cursors[n] = s
	}
	j.mu.Unlock()
	if fileLast >= last {
		j.mu.Lock()
		j.firstSeq, j.lastSeq = fileFirst, fileLast
		j.mu.Unlock()
		return false, nil
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bktEvents).SetSequence(last); err != nil {
			return err
		}
		lb, cb := tx.Bucket(bktLatest), tx.Bucket(bktCursors)
		for m, ev := range latest {
			if err := lb.Put([]byte(m), EncodeEvent(ev)); err != nil {
				return err
			}
		}
		for n, s := range cursors {
			if err := cb.Put([]byte(n), be64(s)); err != nil {
				return err
			}
		}
		return tx.Bucket(bktMeta).Put(keyLastMS, be64(uint64(lastMS)))
	})
	if err != nil {
		return true, fmt.Errorf("continue the sequence at %d: %w", last+1, err)
	}
	j.mu.Lock()
	if fileLast == 0 || fileFirst > fileLast {
		fileFirst = last + 1
	}
	j.firstSeq = fileFirst
	j.mu.Unlock()
	return true, nil
}

// checkClockAtOpen notes a clock jump when the last journaled time is in
// the future (the clock is behind, or a previous run's was ahead), and
// starts the monotonic reference.
func (j *Journal) checkClockAtOpen() {
	now := j.now().Round(0)
	j.clockWall, j.clockMono = now, j.mono()
	if j.lastMS == 0 {
		return
	}
	last := time.UnixMilli(j.lastMS).UTC()
	if ahead := last.Sub(now); ahead > clockSlack {
		j.clockJump(now, last, -ahead, "the last journaled event is in the future: the clock is behind it")
	}
}

// checkClock compares the wall clock with the monotonic clock since the
// last check; a disagreement beyond clockSlack is a clock jump, journaled
// once (with the next commit).
func (j *Journal) checkClock(now time.Time) {
	now = now.Round(0) // wall clock only
	mono := j.mono()
	expected := j.clockWall.Add(mono - j.clockMono)
	j.clockWall, j.clockMono = now, mono
	if skew := now.Sub(expected); skew > clockSlack || skew < -clockSlack {
		j.clockJump(now, expected, skew, "the wall clock moved against the monotonic clock")
	}
}

// clockJump queues a clock-jump event and stops age retention for this
// run (the clock looks wrong).
func (j *Journal) clockJump(now, expected time.Time, jump time.Duration, why string) {
	j.clockSuspect.Store(true)
	dir := "forward"
	if jump < 0 {
		dir = "back"
	}
	msg := fmt.Sprintf("System clock jumped %s by %s (%s; expected about %s, the clock says %s): event times follow the clock, the order is the seq; retention by age is off until the next start",
		dir, jump.Abs().Round(time.Second), why, expected.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	j.notices = append(j.notices, event.New(event.MonitorAgent, event.KindClockJump, msg, map[string]any{
		"jump_s":   jump.Seconds(),
		"expected": expected.UTC().Format(time.RFC3339Nano),
		"now":      now.UTC().Format(time.RFC3339Nano),
		"reason":   why,
	}).WithLevel(event.LevelWarn))
}
