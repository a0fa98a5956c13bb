package journal

import (
	"errors"
	"fmt"
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
	ErrInvalidEvent = errors.New("invalid event")

	// ErrNotJournal means the file at the journal's path is another
	// program's (text, SQLite, a bbolt database without imon's buckets):
	// Open refuses it and leaves it as it is (see CheckFile).
	ErrNotJournal = errors.New("not an imon journal")

	// ErrNoSpace is wrapped, beside the underlying error, when a commit
	// failed because the disk is full (ENOSPC) or the file reached
	// Options.MaxFileBytes. Later appends are tried again normally.
	ErrNoSpace = errors.New("no space for journal")
)

// lockedError is the error Open returns when the file lock is held
// elsewhere: its message tells the user what to do.
type lockedError struct {
	path string
	err  error // bolt's error, for the logs
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("journal %s is locked by a running imon agent: stop it, or use imon journal/status, which ask the running agent", e.path)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// Unwrap returns the underlying lock error.
func (e *lockedError) Unwrap() error { return e.err }
