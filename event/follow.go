package event

import (
	"context"
	"errors"
	"time"
)

// Errors of the journal that its users tell apart. The journal wraps them
// (journal.ErrInvalidEvent and journal.ErrNoSpace are these very values),
// so that a consumer matches them with errors.Is through the interface it
// uses, without importing the journal (and bbolt).
var (
	// ErrInvalid: the journal cannot store the event (no Monitor or
	// Kind, data or state not JSON, a record too large).
	ErrInvalid = errors.New("invalid event")
	// ErrNoSpace: a commit failed because the disk is full or the journal
	// file reached its size bound.
	ErrNoSpace = errors.New("no space for journal")
)

// Gap reasons.
const (
	// GapRetention: retention deleted the events before the reader took them.
	GapRetention = "retention"
	// GapDamaged: the events are on damaged journal pages and cannot be read.
	GapDamaged = "damaged"
)

// Gap is a range of events a reader following the journal will not get.
type Gap struct {
	First, Last uint64
	Reason      string // GapRetention or GapDamaged
	// Path and Err describe a damaged range (the journal's file and the
	// read error met at First).
	Path string
	Err  error
}

// Follower is what a reader of the journal (journal.Journal.Follow) does
// with what it finds. Events is required; a callback returning an error
// ends the follow with that error.
type Follower struct {
	// Batch bounds the events of one Events call (default 256).
	Batch int
	// Events handles events in order, without holes except reported gaps.
	// It returns how many it handled (len(evs) normally); fewer ends the
	// follow, which returns ErrStop.
	Events func(ctx context.Context, evs []Event) (handled int, err error)
	// Gap handles a range the reader will not get; nil skips it silently.
	Gap func(ctx context.Context, g Gap) error
	// Idle is called when the reader caught up, before it waits for new
	// events; wait false reads again at once instead. nil waits.
	Idle func(ctx context.Context) (wait bool, err error)
	// RetryRead: a read error is retried after this delay (the journal is
	// local: it is transient) instead of ending the follow; 0 ends it.
	RetryRead func(ctx context.Context, err error) bool
	// WaitAtMost, when set, bounds each wait for new events (asked after
	// Idle; <= 0: no bound). When the bound passes first, the reader reads
	// again and, still caught up, calls Idle again: a consumer's timed work
	// (the history's periodic write) without a timer of its own.
	WaitAtMost func() time.Duration
}

// ErrStop is returned by a follow that Follower.Events ended.
var ErrStop = errors.New("follow stopped")
