package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// maxOutQueue bounds the outcomes a stream buffers for a consumer that does
// not read; the oldest are dropped beyond it.
const maxOutQueue = 4096

// maxGenerationProbes keeps a generation below pro-bing's 16-bit sequence
// wrap.
const maxGenerationProbes = 60000

// Stream implements Streamer.
//
// A stream is a chain of pro-bing pingers ("generations"), each sending a
// bounded number of requests (GenerationLength worth) and then living on for
// Wait to collect the last replies while the next one already sends: pro-bing
// never prunes lost sequence numbers (probing#31), so a single pinger that
// runs for months would grow without bound. A generation whose first send
// fails (pro-bing then gives up, e.g. "network is unreachable") or whose
// socket cannot be set up is replaced at the next Spacing slot; every such
// attempt is reported as a lost Outcome with Err set.
//
// RTTs are measured with the monotonic clock between the send and the
// reply callbacks (pro-bing's own RTT uses the wall clock in the payload).
func (c *ICMP) Stream(ctx context.Context, addr netip.Addr, opt StreamOptions) (<-chan Outcome, error) {
	opt = opt.WithDefaults()
	addr = addr.Unmap()
	if !addr.IsValid() {
		return nil, errors.New("stream: invalid address")
	}
	genLen := c.GenerationLength
	if genLen <= 0 {
		genLen = 10 * time.Minute
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{
		icmp:   c,
		ctx:    ctx,
		addr:   addr,
		opt:    opt,
		perGen: min(max(int(genLen/opt.Spacing), 1), maxGenerationProbes),
		events: make(chan streamEvent, 64),
		out:    make(chan Outcome, 16),
	}
	setup := make(chan error, 1)
	first := s.startGeneration(setup)
	select {
	case err := <-setup:
		if err != nil {
			cancel()
			s.wg.Wait()
			return nil, fmt.Errorf("stream to %s: %w", addr, err)
		}
	case <-ctx.Done():
		cancel()
		s.wg.Wait()
		return nil, fmt.Errorf("stream to %s: %w", addr, ctx.Err())
	}
	go s.run(cancel, first)
	return s.out, nil
}

type streamEventKind int

const (
	evSent streamEventKind = iota
	evRecv
	evSendErr
	evSetupErr
	evDone
)

// streamEvent is what a generation's pro-bing callbacks tell the stream's
// manager goroutine.
type streamEvent struct {
	kind streamEventKind
	gen  int
	seq  int // pro-bing's sequence number within gen
	at   time.Time
	err  error
}

type genSeq struct{ gen, seq int }

type inflight struct {
	key  genSeq
	seq  uint64
	sent time.Time
	done bool
}

type generation struct {
	id      int
	start   time.Time
	lastTry time.Time // last send attempt (or start)
}

type stream struct {
	icmp   *ICMP
	ctx    context.Context
	addr   netip.Addr
	opt    StreamOptions
	perGen int

	events chan streamEvent
	out    chan Outcome
	wg     sync.WaitGroup // generation goroutines

	// Owned by the manager goroutine (and by Stream before it starts).
	genID int
}

// startGeneration starts the next pro-bing pinger. If setup is not nil it
// receives nil once the socket is ready, or the error that prevented it.
func (s *stream) startGeneration(setup chan<- error) *generation {
	s.genID++
	g := &generation{id: s.genID, start: time.Now()}
	g.lastTry = g.start
	p := s.icmp.newPinger(s.addr, s.opt.Source, s.opt.Mark, s.opt.Size)
	p.Count = s.perGen
	p.Interval = s.opt.Spacing
	// The generation outlives its last planned send by two Waits plus a
	// second: a send delayed by a busy CPU still gets its full Wait, and the
	// manager (not pro-bing's deadline) decides what counts as lost.
	p.Timeout = time.Duration(s.perGen-1)*s.opt.Spacing + 2*s.opt.Wait + time.Second
	id := g.id
	p.OnSend = func(pkt *probing.Packet) {
		s.post(streamEvent{kind: evSent, gen: id, seq: pkt.Seq, at: time.Now()})
	}
	p.OnRecv = func(pkt *probing.Packet) {
		s.post(streamEvent{kind: evRecv, gen: id, seq: pkt.Seq, at: time.Now()})
	}
	p.OnSendError = func(pkt *probing.Packet, err error) {
		s.post(streamEvent{kind: evSendErr, gen: id, seq: pkt.Seq, at: time.Now(), err: err})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ready := false
		p.OnSetup = func() { // runs on this goroutine, before the first send
			ready = true
			if setup != nil {
				setup <- nil
			}
		}
		err := p.RunWithContext(s.ctx)
		if !ready {
			if err == nil {
				err = errors.New("pinger stopped before setup")
			}
			if setup != nil {
				setup <- err
				return
			}
			s.post(streamEvent{kind: evSetupErr, gen: id, at: time.Now(), err: err})
		}
		s.post(streamEvent{kind: evDone, gen: id, at: time.Now(), err: err})
	}()
	return g
}

// post hands an event to the manager; it gives up only when the stream ends.
func (s *stream) post(ev streamEvent) {
	select {
	case s.events <- ev:
	case <-s.ctx.Done():
	}
}

// run is the manager goroutine: it numbers probes, matches replies, expires
// losses, chains generations and feeds the consumer.
func (s *stream) run(cancel context.CancelFunc, cur *generation) {
	defer close(s.out)
	defer s.wg.Wait()
	defer cancel()

	var (
		seq     uint64
		pending = make(map[genSeq]*inflight)
		fifo    []*inflight // send order; deadlines are sent+Wait, so also deadline order
		queue   []Outcome
		gens    = map[int]*generation{cur.id: cur}
	)
	lossTimer := time.NewTimer(time.Hour)
	lossTimer.Stop()
	defer lossTimer.Stop()
	genTimer := time.NewTimer(time.Until(cur.start.Add(time.Duration(s.perGen) * s.opt.Spacing)))
	defer genTimer.Stop()

	dropping := false // logged once per overflow episode
	emit := func(o Outcome) {
		if len(queue) >= maxOutQueue {
			queue = queue[1:]
			if !dropping {
				dropping = true
				s.icmp.logger.Warn("probe stream consumer too slow, dropping the oldest outcomes", "addr", s.addr)
			}
		} else if len(queue) < maxOutQueue/2 {
			dropping = false
		}
		queue = append(queue, o)
	}
	armLoss := func() {
		for len(fifo) > 0 && fifo[0].done {
			fifo = fifo[1:]
		}
		if len(fifo) > 0 {
			lossTimer.Reset(time.Until(fifo[0].sent.Add(s.opt.Wait)))
		} else {
			lossTimer.Stop()
		}
	}
	// tried notes a send attempt of generation id; if that generation
	// already ended early the next one is due a Spacing later.
	tried := func(id int, at time.Time) {
		if g := gens[id]; g != nil {
			g.lastTry = at
		}
	}

	for {
		var (
			outCh chan<- Outcome
			head  Outcome
		)
		if len(queue) > 0 {
			outCh, head = s.out, queue[0]
		}
		select {
		case <-s.ctx.Done():
			return

		case outCh <- head:
			queue = queue[1:]

		case ev := <-s.events:
			switch ev.kind {
			case evSent:
				seq++
				f := &inflight{key: genSeq{ev.gen, ev.seq}, seq: seq, sent: ev.at}
				pending[f.key] = f
				fifo = append(fifo, f)
				if len(fifo) == 1 {
					armLoss()
				}
				tried(ev.gen, ev.at)
			case evRecv:
				f := pending[genSeq{ev.gen, ev.seq}]
				if f == nil {
					break // late (already reported lost) or foreign
				}
				delete(pending, f.key)
				f.done = true
				if rtt := ev.at.Sub(f.sent); rtt <= s.opt.Wait {
					emit(Outcome{Seq: f.seq, Sent: f.sent, At: ev.at, OK: true, RTT: rtt})
				} else {
					emit(Outcome{Seq: f.seq, Sent: f.sent, At: f.sent.Add(s.opt.Wait)})
				}
				armLoss()
			case evSendErr, evSetupErr:
				seq++
				emit(Outcome{Seq: seq, Sent: ev.at, At: ev.at, Err: ev.err})
				tried(ev.gen, ev.at)
				if ev.kind == evSetupErr {
					s.icmp.logger.Debug("probe stream generation failed", "addr", s.addr, "err", ev.err)
				}
			case evDone:
				g := gens[ev.gen]
				delete(gens, ev.gen)
				if g == nil || g != cur || s.ctx.Err() != nil {
					break
				}
				// The current generation ended before its planned end
				// (first send failed, socket error): its successor is due
				// one Spacing after its last attempt, not at the planned end.
				genTimer.Reset(time.Until(g.lastTry.Add(s.opt.Spacing)))
			}

		case <-lossTimer.C:
			now := time.Now()
			for len(fifo) > 0 {
				f := fifo[0]
				if f.done {
					fifo = fifo[1:]
					continue
				}
				deadline := f.sent.Add(s.opt.Wait)
				if deadline.After(now) {
					break
				}
				fifo = fifo[1:]
				f.done = true
				delete(pending, f.key)
				emit(Outcome{Seq: f.seq, Sent: f.sent, At: deadline})
			}
			armLoss()

		case <-genTimer.C:
			cur = s.startGeneration(nil)
			gens[cur.id] = cur
			genTimer.Reset(time.Until(cur.start.Add(time.Duration(s.perGen) * s.opt.Spacing)))
		}
	}
}
