package probe

import (
	"context"
	"testing"
	"time"
)

// TestNextDue: the engine's loop wakes only on ticks with work. A slow
// stream with nothing in flight leaves the ticks up to its next send out;
// a probe in flight, a round, a new stream or undelivered outcomes keep
// every tick.
func TestNextDue(t *testing.T) {
	e := NewEngine(Grid)
	e.k = 100
	sock := &rawSock{pending: map[uint16]*inflight{}}
	e.socks[sockKey{}] = sock
	st := &estream{ctx: context.Background(), nextK: 110, out: make(chan Outcome, 1)}
	e.streams = []*estream{st}
	if got := e.nextDue(); got != 110 {
		t.Errorf("idle slow stream: next tick %d, want its send at 110", got)
	}
	sock.pending[1] = &inflight{st: st, dueK: 104}
	if got := e.nextDue(); got != 101 {
		t.Errorf("probe in flight: next tick %d, want every tick (101)", got)
	}
	clear(sock.pending)
	st.queue = append(st.queue, Outcome{Seq: 1})
	if got := e.nextDue(); got != 101 {
		t.Errorf("outcome waiting for the consumer: next tick %d, want 101", got)
	}
	st.queue = nil
	e.streams = append(e.streams, &estream{ctx: context.Background(), nextK: -1})
	if got := e.nextDue(); got != 101 {
		t.Errorf("new stream: next tick %d, want 101", got)
	}
	e.streams = e.streams[:1]
	e.rounds = []*round{{ctx: context.Background(), opt: PingOptions{Count: 1, Wait: time.Second}}}
	if got := e.nextDue(); got != 101 {
		t.Errorf("round running: next tick %d, want 101", got)
	}
	e.rounds = nil
	st.nextK = 90 // overdue (the loop woke late): at once
	if got := e.nextDue(); got != 101 {
		t.Errorf("overdue send: next tick %d, want 101", got)
	}
}
