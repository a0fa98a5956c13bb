package outbox

import (
	"context"

	"imon/event"
)

// nopJournal is an empty journal for tests that do not run the outbox.
type nopJournal struct{}

func (nopJournal) Read(uint64, int) ([]event.Event, error) { return nil, nil }
func (nopJournal) LastSeq() uint64                         { return 0 }
func (nopJournal) Cursor(string) uint64                    { return 0 }
func (nopJournal) SetCursor(string, uint64)                {}
func (nopJournal) Latest(string) (event.Event, bool)       { return event.Event{}, false }
func (nopJournal) Follow(ctx context.Context, from uint64, _ event.Follower) (uint64, error) {
	<-ctx.Done()
	return from, ctx.Err()
}
func (nopJournal) Emit(_ context.Context, ev event.Event) (event.Event, error) { return ev, nil }
