package probe

import (
	"context"
	"testing"
	"time"
)

// TestNextDue: the engine's loop wakes only on ticks with work. A stream
// wakes it for its sends and for the end of a probe's wait, not for every
// tick while the probe is in flight (its reply is read at the next tick
// with work); a new stream, undelivered outcomes, an addping round (ends at
// its first reply) or carriers alone keep every tick.
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
	if got := e.nextDue(); got != 104 {
		t.Errorf("probe in flight until 104: next tick %d, want the end of its wait (104)", got)
	}
	sock.pending[1].dueK = 115
	if got := e.nextDue(); got != 110 {
		t.Errorf("probe in flight until 115: next tick %d, want the next send (110)", got)
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

	rd := &round{ctx: context.Background(), opt: PingOptions{Count: 2, Wait: time.Second}, nextK: 103}
	e.rounds = []*round{rd}
	if got := e.nextDue(); got != 103 {
		t.Errorf("round sending at 103: next tick %d, want 103", got)
	}
	rd.sent, rd.lastK = 2, 100
	sock.pending[2] = &inflight{rd: rd, dueK: 107}
	if got := e.nextDue(); got != 101 {
		t.Errorf("round whose last request went out at 100: next tick %d, want 101 (its replies)", got)
	}
	e.k = 101
	if got := e.nextDue(); got != 107 {
		t.Errorf("round with every request sent, waiting until 107: next tick %d, want 107", got)
	}
	rd.opt.UntilReply = true
	e.k = 100
	if got := e.nextDue(); got != 101 {
		t.Errorf("addping round (ends at its first reply): next tick %d, want every tick (101)", got)
	}
	e.rounds = nil
	clear(sock.pending)
	st.nextK = 90 // overdue (the loop woke late): at once
	if got := e.nextDue(); got != 101 {
		t.Errorf("overdue send: next tick %d, want 101", got)
	}
	e.streams = nil
	e.carriers = []*carrierWatch{{ctx: context.Background()}}
	if got := e.nextDue(); got != 101 {
		t.Errorf("carriers alone: next tick %d, want every tick (101)", got)
	}
}
