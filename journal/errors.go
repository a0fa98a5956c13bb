package journal

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"imon/event"
)

// Sentinel errors. Errors returned by this package wrap them with context
// (the journal's path, what was being done); match them with [errors.Is].
var (
	// ErrLocked means another process (normally the running imon agent)
	// holds the journal's file lock, so it could not be opened within
	// Options.LockTimeout. Ask the running agent instead.
	ErrLocked = errors.New("journal locked")

	// ErrReadOnly is returned by writes (Append, SyncCursor) on a journal
	// opened with Options.ReadOnly, and wrapped by a commit that failed
	// because the file system is read-only (EROFS: an SD card remounted
	// read-only after an error). Later appends are tried again normally.
	ErrReadOnly = errors.New("journal read-only")

	// ErrUnavailable means the journal could not take the events now: the
	// writer did not answer within Options.WriteTimeout (a disk that hangs),
	// an I/O error, or a file that could not be reopened after a failure.
	// Later appends are tried again normally.
	ErrUnavailable = errors.New("journal unavailable")

	// ErrClosed is returned by every method that needs the file after Close.
	ErrClosed = errors.New("journal closed")

	// ErrCorrupt means the journal file, or a record in it, is damaged. A
	// read-write Open never returns it (it moves the file aside and starts a
	// fresh journal, see Journal.Recovered); a read-only Open does.
	ErrCorrupt = errors.New("journal corrupt")

	// ErrInvalidEvent is returned by Append for an event it cannot store
	// (no Monitor or Kind, or a record larger than MaxRecordBytes). Nothing
	// of that Append is journaled.
	ErrInvalidEvent = event.ErrInvalid

	// ErrNotJournal means the file at the journal's path is another
	// program's (text, SQLite, a bbolt database without imon's buckets):
	// Open refuses it and leaves it as it is (see CheckFile).
	ErrNotJournal = errors.New("not an imon journal")

	// ErrNoSpace is wrapped, beside the underlying error, when a commit
	// failed because the disk is full (ENOSPC) or the file reached
	// Options.MaxFileBytes. Later appends are tried again normally.
	ErrNoSpace = event.ErrNoSpace
)

// lockedError is the error Open returns when the file lock is held
// elsewhere: its message names the holder (from /proc/locks) and tells the
// user what to do.
type lockedError struct {
	path    string
	holders []lockHolder
	err     error // bolt's error, for the logs
}

func (e *lockedError) Error() string {
	var agent, readers []string
	for _, h := range e.holders {
		who := fmt.Sprintf("pid %d", h.pid)
		if h.cmd != "" {
			who += ": " + h.cmd
		}
		if h.exclusive {
			agent = append(agent, who)
		} else {
			readers = append(readers, who)
		}
	}
	switch {
	case len(agent) > 0:
		return fmt.Sprintf("journal %s is locked by a running imon agent (%s): stop it, or use imon journal/status, which ask the running agent", e.path, strings.Join(agent, "; "))
	case len(readers) > 0:
		return fmt.Sprintf("journal %s is locked by a reader (%s), not an agent: it holds the file only while it reads a batch; if it stays, stop it", e.path, strings.Join(readers, "; "))
	}
	return fmt.Sprintf("journal %s is locked by a running imon agent: stop it, or use imon journal/status, which ask the running agent", e.path)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// Unwrap returns the underlying lock error.
func (e *lockedError) Unwrap() error { return e.err }

// newLockedError builds the error for path, looking up who holds its lock.
func newLockedError(path string, err error) *lockedError {
	return &lockedError{path: path, holders: lockHolders(path), err: err}
}

// lockHolder is a process holding a flock on a file.
type lockHolder struct {
	pid       int
	exclusive bool   // WRITE: an agent; READ: a reader
	cmd       string // its command line, shortened, "" if unknown
}

// lockHolders lists the processes that hold a flock on path, from
// /proc/locks (Linux: "N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF").
// Nil when the kernel does not tell.
func lockHolders(path string) []lockHolder {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil
	}
	dev := uint64(st.Dev)
	major, minor := (dev>>8)&0xfff|(dev>>32)&^0xfff, dev&0xff|(dev>>12)&^0xff
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)
	var out []lockHolder
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 {
			continue
		}
		h := lockHolder{pid: pid, exclusive: f[3] == "WRITE"}
		if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			c := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
			if len(c) > 80 {
				c = c[:80] + "..."
			}
			h.cmd = c
		}
		out = append(out, h)
	}
	return out
}
