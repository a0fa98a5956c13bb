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
	e.tickers = []*eticker{{ctx: context.Background(), periodK: 50, nextK: 150}}
	if got := e.nextDue(); got != 150 {
		t.Errorf("a ticker alone at 150: next tick %d, want 150", got)
	}
	e.tickers = nil
	e.carriers = []*carrierWatch{{ctx: context.Background()}}
	if got := e.nextDue(); got != 101 {
		t.Errorf("carriers alone: next tick %d, want every tick (101)", got)
	}
}

// TestRoundEndSharesTicks: a round whose requests are all out ends one tick
// after the last (its replies are in) only when no stream or ticker wakes
// the loop before its wait runs out; else it ends at that tick, for no
// wakeup of its own (a ping round among failover's one-second streams).
func TestRoundEndSharesTicks(t *testing.T) {
	e := NewEngine(Grid)
	e.k = 100
	rd := &round{ctx: context.Background(), opt: PingOptions{Count: 2, Wait: time.Second}, sent: 2, lastK: 100}
	e.rounds = []*round{rd}
	sock := &rawSock{pending: map[uint16]*inflight{1: {rd: rd, dueK: 105}}}
	e.socks[sockKey{}] = sock
	st := &estream{ctx: context.Background(), nextK: 105, out: make(chan Outcome, 1)}
	e.streams = []*estream{st}
	if got := e.nextDue(); got != 105 {
		t.Errorf("stream at 105, the round's wait ends at 105: next tick %d, want 105 (not 101)", got)
	}
	st.nextK = 110
	if got := e.nextDue(); got != 101 {
		t.Errorf("stream at 110, after the round's wait: next tick %d, want 101", got)
	}
	e.streams = nil
	e.tickers = []*eticker{{ctx: context.Background(), periodK: 5, nextK: 103}}
	if got := e.nextDue(); got != 103 {
		t.Errorf("ticker at 103: next tick %d, want 103 (not 101)", got)
	}
}

// TestSpacingTicks: spacings under a second are rounded to the nearest
// tick; from a second up to whole seconds, down, so that whole-second
// streams and tickers share their ticks.
func TestSpacingTicks(t *testing.T) {
	e := NewEngine(Grid)
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{50 * time.Millisecond, 1}, {250 * time.Millisecond, 1}, {333 * time.Millisecond, 2},
		{500 * time.Millisecond, 3}, {time.Second, 5}, {1500 * time.Millisecond, 5},
		{2500 * time.Millisecond, 10}, {10 * time.Second, 50},
	} {
		if got := e.spacingTicks(tc.d); got != tc.want {
			t.Errorf("spacingTicks(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
	// A grid that does not divide a second: nearest tick.
	if got := NewEngine(300 * time.Millisecond).spacingTicks(2500 * time.Millisecond); got != 8 {
		t.Errorf("300 ms grid: spacingTicks(2.5s) = %d, want 8", got)
	}
}

// TestTickerDue: a ticker fires at its tick, then on the next multiple of
// its period, in phase with the streams of the same or a dividing spacing;
// a tick its reader has not taken is dropped, not queued.
func TestTickerDue(t *testing.T) {
	e := NewEngine(Grid)
	tk := &eticker{ctx: context.Background(), c: make(chan time.Time, 1), periodK: 50, nextK: 150}
	e.k = 149
	tk.due(e, time.Now())
	if len(tk.c) != 0 || tk.nextK != 150 {
		t.Fatalf("before its tick: fired %d, next %d", len(tk.c), tk.nextK)
	}
	e.k = 150
	tk.due(e, time.Now())
	if len(tk.c) != 1 || tk.nextK != 200 {
		t.Fatalf("at its tick: fired %d, next %d (want 1, 200)", len(tk.c), tk.nextK)
	}
	e.k = 203 // the loop woke late: the next tick stays on the multiples
	tk.due(e, time.Now())
	if len(tk.c) != 1 || tk.nextK != 250 {
		t.Fatalf("late, reader busy: queued %d, next %d (want 1, 250)", len(tk.c), tk.nextK)
	}
	if tk.nextK%5 != 0 {
		t.Errorf("tick %d is not on the one-second streams' ticks", tk.nextK)
	}
}

// TestEvery runs the engine's loop with a ticker alone (no socket): the
// ticks come, and the loop ends when the ticker's context does. A period
// under a second is a time.Ticker's, not the engine's.
func TestEvery(t *testing.T) {
	e := NewEngine(5 * time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	fast := e.Every(ctx, 10*time.Millisecond)
	e.mu.Lock()
	n := len(e.tickers)
	e.mu.Unlock()
	if n != 0 {
		t.Fatalf("a 10 ms period registered %d engine tickers, want a time.Ticker", n)
	}
	c := e.Every(ctx, time.Second)
	for _, c := range []<-chan time.Time{fast, c, c} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("no tick in 10 s")
		}
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		running, n := e.running, len(e.tickers)
		e.mu.Unlock()
		if !running && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loop still running 10 s after the ticker's end (%d tickers)", n)
		}
		time.Sleep(time.Millisecond)
	}
}
