package nettest

import (
	"context"
	"slices"
	"sync"
	"time"

	"imon/event"
)

// Recorder is the journal of a monitor's test: its Emit is the
// monitor.Env's, and records each event as the agent would journal it
// (Seq from 1, Time, Instance). The zero value is ready.
type Recorder struct {
	// Instance, when set, is set on every event (the agent does).
	Instance string
	// C, when set, receives every recorded event (Emit blocks on it).
	C chan event.Event
	// Err, when set, decides the error of an emit (nil: recorded).
	Err func(ev event.Event) error

	mu  sync.Mutex
	evs []event.Event
}

// Emit records ev and returns it as stored.
func (r *Recorder) Emit(_ context.Context, ev event.Event) (event.Event, error) {
	r.mu.Lock()
	if r.Err != nil {
		if err := r.Err(ev); err != nil {
			r.mu.Unlock()
			return event.Event{}, err
		}
	}
	ev.Seq = uint64(len(r.evs) + 1)
	ev.Time = time.Now().UTC()
	if r.Instance != "" {
		ev.Instance = r.Instance
	}
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	if r.C != nil {
		r.C <- ev
	}
	return ev, nil
}

// Events returns the recorded events.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// Kinds returns the kinds of the recorded events, in order.
func (r *Recorder) Kinds() []string {
	var ks []string
	for _, ev := range r.Events() {
		ks = append(ks, ev.Kind)
	}
	return ks
}

// Last returns the latest recorded event (ok false when none).
func (r *Recorder) Last() (ev event.Event, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.evs) == 0 {
		return event.Event{}, false
	}
	return r.evs[len(r.evs)-1], true
}

// LastState returns the latest recorded event that carries a State (what
// the agent passes to a restarted monitor as Env.Last); zero when none.
func (r *Recorder) LastState() event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.evs) - 1; i >= 0; i-- {
		if len(r.evs[i].State) > 0 {
			return r.evs[i]
		}
	}
	return event.Event{}
}

// Appender is a journal's Append (*journal.Journal, a test's fake).
type Appender interface {
	Append(ctx context.Context, evs ...event.Event) ([]event.Event, error)
}

// Emitter is the agent's Emit reduced to what a consumer's test needs: it
// sets Instance and appends to J at once, so that nothing is still being
// written when the test checks and closes its journal (the agent's
// emitter writes in its own goroutine, stopped by Agent.Run).
type Emitter struct {
	J        Appender
	Instance string
}

// Emit sets the instance and appends ev.
func (e Emitter) Emit(ctx context.Context, ev event.Event) (event.Event, error) {
	ev.Instance = e.Instance
	out, err := e.J.Append(ctx, ev)
	if err != nil {
		return ev, err
	}
	return out[0], nil
}
