package outbox

import (
	"bytes"
	"context"
	"time"

	"imon/homeassistant"
	"imon/mqtt"
)

// availabilityEvery is the shortest interval between two computations of
// BASE/availability/state. It is computed on the agent-state tick (no
// wakeup of its own) and published only when it changed.
const availabilityEvery = time.Minute

// WithAvailability sets the function giving the payload of
// BASE/availability/state (history.Consumer.AvailabilityState), published
// retained on connect, after Home Assistant's birth, and when it changed,
// at most once a minute. Without it the topic is not published.
func WithAvailability(f func(ctx context.Context) ([]byte, error)) Option {
	return func(o *options) { o.availability = f }
}

// availability publishes BASE/availability/state when a minute has passed
// since it was last computed and it changed.
func (r *retained) availability(ctx context.Context) {
	f := r.o.opt.availability
	if f == nil || (!r.availAt.IsZero() && time.Since(r.availAt) < availabilityEvery) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	b, err := f(cctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			r.o.log.Warn("availability state", "err", err)
		}
		return
	}
	r.availAt = time.Now()
	if bytes.Equal(b, r.lastAvail) {
		return
	}
	if r.publish(ctx, mqtt.Message{Topic: r.o.hac.StateTopic(homeassistant.MonitorAvailability), Payload: b}) {
		r.lastAvail = b
	}
}
