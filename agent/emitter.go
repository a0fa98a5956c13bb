package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"imon/event"
	"imon/internal/backoff"
)

// The emitter: act first, journal after.
//
// Every event of the agent and its monitors goes through one ordered
// in-memory queue drained by a single writer goroutine, so that events are
// journaled in the order they were emitted, with the time they were
// emitted at. A monitor waits at most Options.EmitWait for its event to be
// durable; a journal that fails (read-only or full file system, deleted or
// corrupt file, a hung write) never fails nor blocks it:
//
//   - the first failure opens a degraded episode: logged at error level
//     once, a journal-unwritable event queued, Agent.Health degraded;
//   - every event that cannot be journaled is written to the log at once
//     (Options.Direct) and kept in the queue, at most Options.QueueMax
//     events; beyond that the oldest are dropped and counted;
//   - the writer retries with backoff (1 s doubling to 10 s: the
//     schedule of internal/backoff, as every retry in imon); once an
//     append succeeds the queue is journaled in order, preceded by one
//     events-dropped event (count and kinds) when the queue had to drop;
//   - once appends have succeeded for Options.JournalSettle without a
//     failure, journal-writable ends the episode.
//
// Manual commands (failover-command) are never queued: they are refused
// with an error while the journal cannot be written, since nothing would
// act on them before they are journaled.

// Defaults of the emitter's options.
const (
	// DefaultQueueMax is Options.QueueMax: the events kept in memory while
	// the journal cannot be written (one batch being appended comes on
	// top). An event is at most a few KB: about 1-4 MB at worst.
	DefaultQueueMax = 1024
	// DefaultEmitWait is Options.EmitWait.
	DefaultEmitWait = 200 * time.Millisecond
	// DefaultJournalSettle is Options.JournalSettle.
	DefaultJournalSettle = 10 * time.Second
	// DefaultAppendTimeout is Options.AppendTimeout.
	DefaultAppendTimeout = 5 * time.Second
)

const (
	// writeBatch bounds the events of one Append.
	writeBatch = 256
)

// retry is the backoff between two attempts while the journal cannot be
// written: after the failure that opened the episode, and after the first
// retry, 1 s; then doubling to 10 s. A success starts it again.
var retry = backoff.Policy{Min: time.Second, Max: 10 * time.Second}

// ErrJournalUnwritable is wrapped by the error of a manual command given
// while the journal cannot be written.
var ErrJournalUnwritable = errors.New("journal not writable")

// DirectLogger writes events to the log at once while the journal cannot
// be written (the *LogConsumer): Now logs ev and remembers it, so that the
// log consumer does not log it again when it is journaled later; Forget
// drops that memory for an event that will never be journaled.
type DirectLogger interface {
	Now(ev event.Event)
	Forget(ev event.Event)
}

// item is one event in the emitter's queue.
type item struct {
	ev     event.Event
	strict bool // a command: fail instead of queueing
	logged bool // written to the log directly
	done   chan struct{}
	out    event.Event // as journaled, once done with err == nil and journaled
	ok     bool        // journaled
	err    error       // strict only
}

// finish releases the waiter of it (once).
func (it *item) finish() {
	select {
	case <-it.done:
	default:
		close(it.done)
	}
}

// episode is one period during which the journal could not be written.
type episode struct {
	since, lastFail time.Time
	err             string
	queued          int // events that went through the queue
	dropped         int // events dropped from the queue (not reported yet)
	droppedAll      int
	kinds           map[string]int // dropped, by kind (not reported yet)
	firstDrop       time.Time
	lastDrop        time.Time
	retries         int // failed retries since the episode opened or an append succeeded
	nextTry         time.Time
}

// emitter is the agent's ordered journal writer; see above.
type emitter struct {
	a *Agent

	mu       sync.Mutex // guards the following
	queue    []*item
	busy     bool // a writer goroutine runs
	stopped  bool // final: no more writers
	ep       *episode
	since    time.Time     // when the append in flight began (zero: none)
	inflight []*item       // its events
	lastErr  error         // of the latest append attempt
	attempt  chan struct{} // closed and replaced after every append attempt, and when the writer exits
	wake     chan struct{} // cap 1
	stop     chan struct{} // closed by close
	toLog    []event.Event // to write to the log at once (logOut), in order

	logMu sync.Mutex // held while writing toLog out: keeps the lines in order
}

// logLocked notes ev for the log (written by logOut, outside mu: a slow log
// never holds the emitter's lock).
func (e *emitter) logLocked(ev event.Event) { e.toLog = append(e.toLog, ev) }

// logOut writes what logLocked noted to the log, in order.
func (e *emitter) logOut() {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	e.mu.Lock()
	evs := e.toLog
	e.toLog = nil
	e.mu.Unlock()
	for _, ev := range evs {
		e.a.direct(ev)
	}
}

func newEmitter(a *Agent) *emitter {
	return &emitter{a: a, wake: make(chan struct{}, 1), attempt: make(chan struct{}), stop: make(chan struct{})}
}

// attemptedLocked signals the end of an append attempt (err its result).
func (e *emitter) attemptedLocked(err error) {
	e.lastErr = err
	close(e.attempt)
	e.attempt = make(chan struct{})
}

// validate checks what Append would refuse, so that an invalid event is
// the caller's error and never blocks the queue.
func validate(ev event.Event) error {
	if ev.Monitor == "" || ev.Kind == "" {
		return fmt.Errorf("event needs a monitor and a kind (monitor %q, kind %q): %w", ev.Monitor, ev.Kind, event.ErrInvalid)
	}
	if (len(ev.Data) > 0 && !json.Valid(ev.Data)) || (len(ev.State) > 0 && !json.Valid(ev.State)) {
		return fmt.Errorf("event %s/%s: data or state is not valid JSON: %w", ev.Monitor, ev.Kind, event.ErrInvalid)
	}
	return nil
}

// emit queues ev and waits for it: up to wait (0: until ctx ends) for a
// monitor's event, which is returned unjournaled (Seq 0) if not durable by
// then; until ctx ends or the append failed for a strict one.
func (e *emitter) emit(ctx context.Context, ev event.Event, strict bool) (event.Event, error) {
	if err := validate(ev); err != nil {
		return ev, err
	}
	e.mu.Lock()
	if ev.Time.IsZero() {
		// Under the lock: the queue's order is the order of the times.
		ev.Time = e.a.opt.Now().UTC()
	}
	it := &item{ev: ev, strict: strict, done: make(chan struct{})}
	e.checkHungLocked()
	if e.ep != nil && len(e.queue) > 0 {
		// Degraded: the writer retries later.
		if strict {
			err := fmt.Errorf("%w since %s (%s): command not accepted", ErrJournalUnwritable, e.ep.since.Format(event.TimeFormat), e.ep.err)
			e.mu.Unlock()
			return ev, err
		}
		e.ep.queued++
		it.logged = true
		e.queue = append(e.queue, it)
		e.logLocked(ev)
		e.trimLocked()
		e.mu.Unlock()
		e.logOut()
		return ev, nil
	}
	e.queue = append(e.queue, it)
	e.trimLocked()
	e.startLocked()
	e.mu.Unlock()
	e.kick()
	e.logOut()

	var timeout <-chan time.Time
	if !strict && e.a.opt.EmitWait > 0 {
		t := time.NewTimer(e.a.opt.EmitWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-it.done:
		if it.err != nil {
			return ev, it.err
		}
		if it.ok {
			return it.out, nil
		}
		return ev, nil
	case <-timeout:
		return ev, nil
	case <-ctx.Done():
		if strict {
			e.mu.Lock()
			if i := slices.Index(e.queue, it); i >= 0 {
				e.queue = slices.Delete(e.queue, i, i+1)
				e.mu.Unlock()
				return ev, ctx.Err()
			}
			e.mu.Unlock()
			<-it.done // being appended: its outcome is the answer
			if it.err != nil {
				return ev, it.err
			}
			return it.out, nil
		}
		return ev, nil
	}
}

func (e *emitter) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// startLocked starts the writer if none runs.
func (e *emitter) startLocked() {
	if e.busy || e.stopped {
		return
	}
	e.busy = true
	go e.write()
}

// trimLocked drops the oldest queued events beyond the bound, counting
// them for the events-dropped report.
func (e *emitter) trimLocked() {
	n := len(e.queue) - e.a.opt.QueueMax
	if n <= 0 {
		return
	}
	if e.ep == nil { // the journal is slow, not failing: still an episode
		e.openLocked(errors.New("journal too slow: queue full"))
	}
	for _, it := range e.queue[:n] {
		if it.strict {
			it.err = fmt.Errorf("%w: queue full, command dropped", ErrJournalUnwritable)
		} else {
			e.ep.dropped++
			e.ep.droppedAll++
			if e.ep.kinds == nil {
				e.ep.kinds = map[string]int{}
				e.ep.firstDrop = it.ev.Time
			}
			e.ep.kinds[it.ev.Kind]++
			e.ep.lastDrop = it.ev.Time
			if it.logged {
				e.a.forget(it.ev)
			}
		}
		it.finish()
	}
	e.queue = slices.Delete(e.queue, 0, n)
}

// checkHungLocked opens an episode when the append in flight has taken
// longer than AppendTimeout (a hung disk: the journal may not honour the
// deadline), so that later events are queued at once and Health says so.
func (e *emitter) checkHungLocked() {
	if e.ep != nil || e.since.IsZero() {
		return
	}
	if d := e.a.opt.Now().Sub(e.since); d > e.a.opt.AppendTimeout {
		e.openLocked(fmt.Errorf("journal write hung for %s", d.Round(time.Second)))
	}
}

// openLocked opens a degraded episode: logged once, journal-unwritable
// queued (it is journaled, in order, once the journal accepts it).
func (e *emitter) openLocked(err error) {
	now := e.a.opt.Now().UTC()
	e.ep = &episode{since: now, lastFail: now, err: err.Error(), nextTry: now.Add(retry.Delay(1))}
	what := "journal not writable"
	if errors.Is(err, event.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) {
		what = "journal full"
	}
	e.a.log.Error(what+": events are logged and queued in memory until it can be written; monitoring and routing continue",
		"err", err, "queue_max", e.a.opt.QueueMax)
	// What waits already is logged at once too.
	for _, it := range slices.Concat(e.inflight, e.queue) {
		if !it.logged && !it.strict {
			it.logged = true
			e.ep.queued++
			e.logLocked(it.ev)
		}
	}
	ev := event.New(event.MonitorAgent, event.KindJournalUnwritable,
		fmt.Sprintf("Journal not writable: %v; events are queued in memory (at most %d) and logged", err, e.a.opt.QueueMax),
		map[string]any{"error": err.Error(), "queue_max": e.a.opt.QueueMax}).WithLevel(event.LevelError)
	ev.Instance, ev.Time, ev.Data = e.a.opt.Instance, now, event.MustJSON(map[string]any{"error": err.Error(), "queue_max": e.a.opt.QueueMax})
	it := &item{ev: ev, done: make(chan struct{}), logged: true}
	e.ep.queued++
	e.queue = append(e.queue, it)
	e.logLocked(ev)
	e.a.healthChanged()
}

// write is the writer goroutine: it appends the queue in order, and stays
// while an episode is open. It exits when there is nothing left to do.
func (e *emitter) write() {
	// busy is cleared in the critical section that decides to exit, so
	// that an event queued meanwhile starts a new writer.
	exit := func() {
		e.busy = false
		e.attemptedLocked(e.lastErr)
		e.mu.Unlock()
	}
	for {
		e.mu.Lock()
		now := e.a.opt.Now()
		var wait time.Duration
		switch {
		case len(e.queue) == 0 && e.ep == nil:
			exit()
			return
		case len(e.queue) == 0: // settling
			wait = e.ep.lastFail.Add(e.a.opt.JournalSettle).Sub(now)
			if wait <= 0 {
				e.queueReportLocked(true)
				e.mu.Unlock()
				continue
			}
		case e.ep != nil && now.Before(e.ep.nextTry):
			wait = e.ep.nextTry.Sub(now)
		}
		if wait > 0 {
			if e.stopped {
				exit()
				return
			}
			e.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-e.wake: // a new event, or flush: look again
			case <-e.stop:
			}
			t.Stop()
			continue
		}
		if e.ep != nil && e.ep.dropped > 0 {
			e.queueReportLocked(false)
		}
		batch := slices.Clone(e.queue[:min(len(e.queue), writeBatch)])
		e.queue = e.queue[len(batch):]
		e.since, e.inflight = e.a.opt.Now(), batch
		e.mu.Unlock()

		evs := make([]event.Event, len(batch))
		for i, it := range batch {
			evs[i] = it.ev
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.a.opt.AppendTimeout)
		out, err := e.a.opt.Journal.Append(ctx, evs...)
		cancel()
		if err == nil && len(out) != len(batch) {
			err = fmt.Errorf("journal returned %d events for %d", len(out), len(batch))
		}

		e.mu.Lock()
		e.since, e.inflight = time.Time{}, nil
		e.attemptedLocked(err)
		if err == nil {
			for i, it := range batch {
				it.out, it.ok = out[i], true
				it.finish()
			}
			if e.ep != nil {
				e.ep.retries, e.ep.nextTry = 0, time.Time{}
			}
			e.mu.Unlock()
			continue
		}
		var keep []*item
		for _, it := range batch {
			if it.strict {
				it.err = fmt.Errorf("journal %s/%s event: %w", it.ev.Monitor, it.ev.Kind, err)
				it.finish()
				continue
			}
			if errors.Is(err, event.ErrInvalid) && len(batch) == 1 {
				// Cannot happen after validate; never block the queue on it.
				e.a.log.Error("event refused by the journal, dropped", "monitor", it.ev.Monitor, "kind", it.ev.Kind, "err", err)
				it.finish()
				continue
			}
			keep = append(keep, it)
		}
		if errors.Is(err, event.ErrInvalid) && len(batch) > 1 {
			// Find the culprit one by one (never happens after validate).
			e.queue = append(keep, e.queue...)
			for _, it := range keep {
				it.strict = false
			}
			e.mu.Unlock()
			e.appendOneByOne()
			continue
		}
		e.queue = append(keep, e.queue...)
		now = e.a.opt.Now()
		if e.ep == nil {
			e.openLocked(err)
		} else {
			e.ep.lastFail = now.UTC()
			e.ep.err = err.Error()
			e.ep.retries++
			e.ep.nextTry = now.Add(retry.Delay(e.ep.retries))
		}
		for _, it := range keep {
			if !it.logged {
				it.logged = true
				e.ep.queued++
				e.logLocked(it.ev)
			}
			it.finish() // the caller stops waiting: the event is queued
		}
		e.trimLocked()
		e.mu.Unlock()
		e.logOut()
	}
}

// appendOneByOne appends the head of the queue event by event, dropping
// an event the journal refuses as invalid; it stops at another failure.
func (e *emitter) appendOneByOne() {
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			e.mu.Unlock()
			return
		}
		it := e.queue[0]
		e.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), e.a.opt.AppendTimeout)
		out, err := e.a.opt.Journal.Append(ctx, it.ev)
		cancel()
		e.mu.Lock()
		if err != nil && !errors.Is(err, event.ErrInvalid) {
			e.mu.Unlock()
			return
		}
		e.queue = e.queue[1:]
		if err == nil {
			it.out, it.ok = out[0], true
		} else {
			e.a.log.Error("event refused by the journal, dropped", "monitor", it.ev.Monitor, "kind", it.ev.Kind, "err", err)
		}
		it.finish()
		e.mu.Unlock()
	}
}

// queueReportLocked queues, at the head, the events-dropped report of
// the episode (final false), or at the tail the journal-writable event
// that ends it (final true; the episode is closed once that is
// journaled... here: at once, a failure opens a new one).
func (e *emitter) queueReportLocked(final bool) {
	ep := e.ep
	if !final {
		kinds := make([]string, 0, len(ep.kinds))
		for _, k := range slices.Sorted(maps.Keys(ep.kinds)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, ep.kinds[k]))
		}
		ev := event.New(event.MonitorAgent, event.KindEventsDropped,
			fmt.Sprintf("%d events were dropped from the in-memory queue (at most %d) while the journal could not be written: %s",
				ep.dropped, e.a.opt.QueueMax, strings.Join(kinds, ", ")),
			map[string]any{"dropped": ep.dropped, "kinds": ep.kinds, "first": ep.firstDrop.UTC().Format(event.TimeFormat),
				"last": ep.lastDrop.UTC().Format(event.TimeFormat), "queue_max": e.a.opt.QueueMax}).WithLevel(event.LevelWarn)
		ev.Instance, ev.Time = e.a.opt.Instance, ep.lastDrop
		e.queue = append([]*item{{ev: ev, done: make(chan struct{})}}, e.queue...)
		ep.dropped, ep.kinds = 0, nil
		return
	}
	now := e.a.opt.Now().UTC()
	ev := event.New(event.MonitorAgent, event.KindJournalWritable,
		fmt.Sprintf("Journal writable again after %s: %d events were queued, %d dropped", ep.lastFail.Sub(ep.since).Round(time.Millisecond), ep.queued, ep.droppedAll),
		map[string]any{"since": ep.since.Format(event.TimeFormat), "until": ep.lastFail.UTC().Format(event.TimeFormat),
			"queued": ep.queued, "dropped": ep.droppedAll, "error": ep.err}).WithLevel(event.LevelWarn)
	ev.Instance, ev.Time = e.a.opt.Instance, now
	e.queue = append(e.queue, &item{ev: ev, done: make(chan struct{})})
	e.a.log.Warn("journal writable again", "since", ep.since.Format(event.TimeFormat), "queued", ep.queued, "dropped", ep.droppedAll)
	e.ep = nil
	e.a.healthChanged()
}

// flush makes the writer try at once, whatever the backoff, and waits
// until the queue is empty, an append failed, or ctx ends. It returns the
// number of events still queued.
func (e *emitter) flush(ctx context.Context) int {
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			e.mu.Unlock()
			return 0
		}
		if e.ep != nil {
			e.ep.nextTry = time.Time{}
		}
		e.startLocked()
		attempt := e.attempt
		e.mu.Unlock()
		e.kick()
		select {
		case <-ctx.Done():
			e.mu.Lock()
			defer e.mu.Unlock()
			return len(e.queue)
		case <-attempt:
		}
		e.mu.Lock()
		failed, n := e.lastErr != nil, len(e.queue)
		e.mu.Unlock()
		if failed {
			return n
		}
	}
}

// close stops the writer after its current attempt; later events are
// not written. Safe to call once.
func (e *emitter) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.stopped {
		e.stopped = true
		close(e.stop)
	}
}

// degraded returns the open episode's description (ok false when the
// journal is being written normally).
func (e *emitter) degraded() (p Problem, ok bool) {
	e.mu.Lock()
	e.checkHungLocked()
	if e.ep != nil {
		p, ok = Problem{What: "journal", Msg: "journal not writable: " + e.ep.err, Since: e.ep.since,
			Queued: len(e.queue), Dropped: e.ep.droppedAll}, true
	}
	e.mu.Unlock()
	e.logOut()
	return p, ok
}

// latest returns the newest queued event of monitor that carries a State.
func (e *emitter) latest(monitor string) (event.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.queue) - 1; i >= 0; i-- {
		if ev := e.queue[i].ev; ev.Monitor == monitor && len(ev.State) > 0 {
			return ev, true
		}
	}
	return event.Event{}, false
}
