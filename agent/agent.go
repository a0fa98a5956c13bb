// Package agent runs an imon instance: it journals what the monitors see,
// supervises them, and feeds every journal consumer (log, action script,
// MQTT, control socket).
//
// The journal is the source of truth. A monitor's observation becomes an
// event through Emit, which journals it in emission order and waits a
// little for it to be durable, but never fails nor blocks the monitor on a
// journal problem: act first, journal after (see emitter.go). The log
// consumer, the action runner and the MQTT outbox each read the journal with
// their own persisted cursor, so none of them can see an event that a crash
// would lose, and none of them can block a monitor.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"imon/agent/command"
	"imon/agent/monitor"
	"imon/event"
	"imon/internal/backoff"
)

// Journal is what the agent needs of the event journal (*journal.Journal).
type Journal interface {
	Append(ctx context.Context, evs ...event.Event) ([]event.Event, error)
	// Follow reads the journal from seq from on, waiting for new events
	// (journal.Journal.Follow: the one loop of every consumer).
	Follow(ctx context.Context, from uint64, f event.Follower) (uint64, error)
	FirstSeq() uint64
	LastSeq() uint64
	SeqAt(t time.Time) (uint64, error)
	Latest(monitor string) (event.Event, bool)
	Cursor(name string) uint64
	SetCursor(name string, seq uint64)
	SyncCursor(ctx context.Context, name string, seq uint64) error
}

// Consumer is a journal consumer run by the agent next to the monitors (the
// action runner, the MQTT outbox). Run returns when ctx ends; the agent
// cancels consumers only after the final agent-stop event was journaled and
// the drain timeout passed, so a consumer should follow the journal to its end.
type Consumer interface {
	Name() string
	Run(ctx context.Context) error
}

// Options configure Run.
type Options struct {
	Instance string
	Version  string
	Journal  Journal
	Monitors []monitor.Monitor
	// Consumers run for the agent's whole life (action runner, MQTT outbox).
	Consumers []Consumer
	// Logger receives the agent's own diagnostics.
	Logger *slog.Logger
	// StartData is journaled with the agent-start event (version, command
	// line, config file).
	StartData any
	// StartEvents are journaled right after agent-start, before any
	// monitor starts (e.g. journal-recovered).
	StartEvents []event.Event
	// Ready is called once the journal is open, the start event journaled and
	// every monitor started (systemd READY=1). May be nil.
	Ready func()
	// Alive is called about every WatchdogInterval while every monitor is
	// running and its loop answers liveness requests (systemd WATCHDOG=1;
	// see watchdog). May be nil.
	Alive            func()
	WatchdogInterval time.Duration
	// Stopping is called when shutdown begins (systemd STOPPING=1). May be nil.
	Stopping func()
	// DrainTimeout bounds how long consumers may take to catch up at stop
	// (default 5 s).
	DrainTimeout time.Duration
	// JournalSettle is how long appends must succeed without a failure
	// before a journal episode is over (journal-writable; default
	// DefaultJournalSettle).
	JournalSettle time.Duration
	// QueueMax bounds the events kept in memory while the journal cannot
	// be written (default DefaultQueueMax).
	QueueMax int
	// EmitWait is how long Emit waits for a monitor's event to be durable
	// before returning it unjournaled (it is still journaled, in order;
	// default DefaultEmitWait).
	EmitWait time.Duration
	// AppendTimeout bounds one journal append (default DefaultAppendTimeout).
	AppendTimeout time.Duration
	// Direct logs events at once while the journal cannot be written (the
	// LogConsumer). May be nil.
	Direct DirectLogger
	// Problems are known at start and last the whole run (a journal on its
	// fallback path).
	Problems []Problem
	// HealthChanged is called when Health changed (a journal episode began
	// or ended, a monitor stopped or runs again). May be nil; must not block.
	HealthChanged func()
	// Now is the clock of event times; nil means time.Now.
	Now func() time.Time
	// FailoverEnabled: manual failover commands are accepted (else they
	// are rejected; see FailoverCommand).
	FailoverEnabled bool
	// CommandLimits is the budget of manual commands; zero fields take
	// command.DefaultLimits'.
	CommandLimits command.Limits
	// Every is the monitors' source of periodic ticks (monitor.Env.Every);
	// nil gives them time.Tickers.
	Every func(ctx context.Context, period time.Duration) <-chan time.Time
	// RestartBackoff is the first delay before a failed monitor is restarted
	// (default 1 s, doubling up to 1 min).
	RestartBackoff time.Duration
}

// Agent is a running instance. Create it with New, start it with Run.
type Agent struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex // guards the following
	running map[string]bool
	down    map[string]time.Time // monitors that failed, until they run again

	em       *emitter
	healthCh chan struct{} // cap 1: Health changed

	cmdMu sync.Mutex // guards cmd
	cmd   commandGate

	liveMu sync.Mutex             // guards live
	live   map[string]chan func() // monitor -> liveness requests (see watchdog)
}

// New returns an agent for opt.
func New(opt Options) *Agent {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.DrainTimeout == 0 {
		opt.DrainTimeout = 5 * time.Second
	}
	if opt.JournalSettle == 0 {
		opt.JournalSettle = DefaultJournalSettle
	}
	if opt.QueueMax <= 0 {
		opt.QueueMax = DefaultQueueMax
	}
	if opt.EmitWait == 0 {
		opt.EmitWait = DefaultEmitWait
	}
	if opt.AppendTimeout <= 0 {
		opt.AppendTimeout = DefaultAppendTimeout
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.RestartBackoff == 0 {
		opt.RestartBackoff = time.Second
	}
	a := &Agent{opt: opt, log: opt.Logger, running: map[string]bool{}, live: map[string]chan func(){}, healthCh: make(chan struct{}, 1),
		cmd: commandGate{budget: command.NewBudget(opt.CommandLimits), now: time.Now}}
	a.em = newEmitter(a)
	return a
}

// Emit journals ev for the agent's instance and returns it as stored.
//
// Emit never fails nor blocks a monitor on a journal problem (see
// emitter.go): it waits at most Options.EmitWait (or until ctx ends) for
// the event to be durable, and otherwise returns it unjournaled (Seq 0)
// with a nil error while it stays queued in memory, to be journaled in
// order with its original time. It fails only for an invalid event.
func (a *Agent) Emit(ctx context.Context, ev event.Event) (event.Event, error) {
	return a.emit(ctx, ev, false)
}

// emit is Emit; with strict set the event is not queued: it is journaled,
// or emit fails (a manual command must not be acknowledged when nothing
// will act on it).
func (a *Agent) emit(ctx context.Context, ev event.Event, strict bool) (event.Event, error) {
	ev.Instance = a.opt.Instance
	if len(ev.Data) == 0 {
		ev.Data = event.MustJSON(nil)
	}
	return a.em.emit(ctx, ev, strict)
}

func (a *Agent) direct(ev event.Event) {
	if a.opt.Direct != nil {
		a.opt.Direct.Now(ev)
	}
}

func (a *Agent) forget(ev event.Event) {
	if a.opt.Direct != nil {
		a.opt.Direct.Forget(ev)
	}
}

// healthChanged notes that Health changed; Run's notifier calls
// Options.HealthChanged (outside the locks the caller may hold).
func (a *Agent) healthChanged() {
	select {
	case a.healthCh <- struct{}{}:
	default:
	}
}

// notifyHealth calls Options.HealthChanged after each change until ctx ends.
func (a *Agent) notifyHealth(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.healthCh:
			a.opt.HealthChanged()
		}
	}
}

// Latest is the latest event of monitor that carries a State: a queued
// one (not journaled yet, Seq 0) when there is one, else the journal's.
func (a *Agent) Latest(monitor string) (event.Event, bool) {
	if ev, ok := a.em.latest(monitor); ok {
		return ev, true
	}
	return a.opt.Journal.Latest(monitor)
}

// FirstSeq and LastSeq are the journal's.
func (a *Agent) FirstSeq() uint64 { return a.opt.Journal.FirstSeq() }

// LastSeq is the journal's last sequence number.
func (a *Agent) LastSeq() uint64 { return a.opt.Journal.LastSeq() }

// Problem is one reason the agent is degraded (Health).
type Problem struct {
	// What is "journal" (cannot be written), "journal-fallback" (running
	// on the fallback journal) or a monitor's name (restarting).
	What  string    `json:"what"`
	Msg   string    `json:"msg"`
	Since time.Time `json:"since"`
	// Queued and Dropped count the events in memory and those the queue
	// had to drop (journal only).
	Queued  int `json:"queued,omitempty"`
	Dropped int `json:"dropped,omitempty"`
}

// Health is the agent's state: Degraded when it has problems; routing and
// monitoring go on meanwhile.
type Health struct {
	Degraded bool      `json:"degraded"`
	Problems []Problem `json:"problems,omitempty"`
}

// Health reports the agent's problems: the start problems
// (Options.Problems), a journal that cannot be written, monitors that are
// being restarted.
func (a *Agent) Health() Health {
	h := Health{Problems: slices.Clone(a.opt.Problems)}
	if p, ok := a.em.degraded(); ok {
		h.Problems = append(h.Problems, p)
	}
	a.mu.Lock()
	for _, m := range a.opt.Monitors {
		if since, down := a.down[m.Name()]; down {
			h.Problems = append(h.Problems, Problem{What: m.Name(), Msg: "monitor failed, restarting", Since: since})
		}
	}
	a.mu.Unlock()
	h.Degraded = len(h.Problems) > 0
	return h
}

// Watch streams every event appended after the call until ctx ends.
func (a *Agent) Watch(ctx context.Context) <-chan event.Event {
	ch := make(chan event.Event, 64)
	from := a.opt.Journal.LastSeq() + 1
	go func() {
		defer close(ch)
		follow(ctx, a.opt.Journal, from, func(ev event.Event) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}, nil)
	}()
	return ch
}

// follow calls fn for every event from seq on, waiting for new ones, until
// ctx ends or fn returns false (the journal's Follow). Returns the next seq
// to read. A read error is retried after a second (the journal is local).
// Damaged ranges (the journal journals journal-damaged) are skipped after
// onDamage (when set) is told; onDamage returning false ends the follow.
// Ranges retention deleted are skipped silently.
func follow(ctx context.Context, j Journal, from uint64, fn func(event.Event) bool, onDamage func(event.Gap) bool) uint64 {
	next, _ := j.Follow(ctx, from, event.Follower{
		Batch: 512,
		Events: func(_ context.Context, evs []event.Event) (int, error) {
			for i, ev := range evs {
				if !fn(ev) {
					return i, nil
				}
			}
			return len(evs), nil
		},
		Gap: func(_ context.Context, g event.Gap) error {
			if g.Reason == event.GapDamaged && onDamage != nil && !onDamage(g) {
				return event.ErrStop
			}
			return nil
		},
		RetryRead: func(ctx context.Context, _ error) bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(time.Second):
				return true
			}
		},
	})
	return next
}

// Run runs the agent until ctx ends: it journals agent-start, starts the
// consumers and the monitors, and on cancellation stops the monitors,
// journals agent-stop, lets the consumers drain and returns. The stop after
// the monitors ended takes at most Options.DrainTimeout, whatever the
// journal does.
func (a *Agent) Run(ctx context.Context) error {
	defer a.em.close()
	// A stop signal that arrives during startup is a clean stop: the start
	// events are journaled regardless, then the agent stops at once.
	startCtx := context.WithoutCancel(ctx)
	if _, err := a.Emit(startCtx, event.New(event.MonitorAgent, event.KindAgentStart,
		fmt.Sprintf("Starting imon %s", a.opt.Version), a.opt.StartData)); err != nil {
		return err
	}
	for _, ev := range a.opt.StartEvents {
		if _, err := a.Emit(startCtx, ev); err != nil {
			return err
		}
	}

	consCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	var consumers sync.WaitGroup
	for _, c := range a.opt.Consumers {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			a.runConsumer(consCtx, c)
		}()
	}

	monCtx, stopMonitors := context.WithCancel(ctx)
	defer stopMonitors()
	var monitors sync.WaitGroup
	for _, m := range a.opt.Monitors {
		a.liveMu.Lock()
		a.live[m.Name()] = make(chan func(), 1)
		a.liveMu.Unlock()
		monitors.Add(1)
		go func() {
			defer monitors.Done()
			a.supervise(monCtx, m)
		}()
	}
	if a.opt.HealthChanged != nil {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			a.notifyHealth(consCtx)
		}()
	}
	if a.opt.Ready != nil {
		a.opt.Ready()
	}
	if a.opt.Alive != nil && a.opt.WatchdogInterval > 0 {
		monitors.Add(1)
		go func() {
			defer monitors.Done()
			a.watchdog(monCtx)
		}()
	}

	<-ctx.Done()
	if a.opt.Stopping != nil {
		a.opt.Stopping()
	}
	stopMonitors()
	monitors.Wait()
	a.flushThrottled()

	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opt.DrainTimeout)
	defer cancel()
	last, err := a.Emit(stopCtx, event.New(event.MonitorAgent, event.KindAgentStop, "Stopping imon", nil))
	if err != nil {
		a.log.Error("journal agent-stop", "err", err)
	}
	// Journal what is queued (one more try when the journal failed), then
	// let consumers catch up to the stop event, and stop them.
	if n := a.em.flush(stopCtx); n > 0 {
		a.log.Error("events not journaled at stop (they were logged)", "count", n)
	} else {
		if last.Seq == 0 { // journaled by the flush
			last.Seq = a.opt.Journal.LastSeq()
		}
		a.drain(stopCtx, last.Seq)
	}
	stopConsumers()
	consumers.Wait()
	return nil
}

// drain waits until every consumer cursor reached seq or ctx ends.
func (a *Agent) drain(ctx context.Context, seq uint64) {
	var names []string
	for _, c := range a.opt.Consumers {
		names = append(names, c.Name())
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for _, n := range names {
			if a.opt.Journal.Cursor(n) < seq {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// restartPolicy is the delay before a failed monitor or consumer is
// restarted: RestartBackoff doubling to a minute (internal/backoff).
func (a *Agent) restartPolicy() backoff.Policy {
	return backoff.Policy{Min: a.opt.RestartBackoff, Max: time.Minute}
}

func (a *Agent) runConsumer(ctx context.Context, c Consumer) {
	for failures := 1; ; failures++ {
		err := safeRun(func() error { return c.Run(ctx) })
		if ctx.Err() != nil {
			return
		}
		delay := a.restartPolicy().Delay(failures)
		a.log.Error("consumer stopped, restarting", "consumer", c.Name(), "err", err, "backoff", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// supervise runs m until ctx ends, restarting it with backoff after an error
// or a panic, which it journals as monitor-error.
func (a *Agent) supervise(ctx context.Context, m monitor.Monitor) {
	failures := 0
	log := a.log.With("monitor", m.Name())
	a.liveMu.Lock()
	live := a.live[m.Name()]
	a.liveMu.Unlock()
	for {
		last, _ := a.opt.Journal.Latest(m.Name())
		env := monitor.Env{
			Instance: a.opt.Instance,
			Logger:   log,
			Emit:     a.Emit,
			Last:     last,
			Watch:    a.Watch,
			Liveness: live,
			Every:    a.opt.Every,
		}
		a.setRunning(m.Name(), true)
		started := time.Now()
		err := safeRun(func() error { return m.Run(ctx, env) })
		a.setRunning(m.Name(), false)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("monitor returned before shutdown")
		}
		a.setDown(m.Name())
		if time.Since(started) > 5*time.Minute {
			failures = 0 // it ran fine for a while: start the backoff again
		}
		failures++
		backoff := a.restartPolicy().Delay(failures)
		ev := event.New(m.Name(), event.KindMonitorError,
			fmt.Sprintf("monitor failed, restarting in %s: %v", backoff, err),
			map[string]any{"error": err.Error(), "restart_in_s": backoff.Seconds()}).WithLevel(event.LevelError)
		if _, jerr := a.Emit(ctx, ev); jerr != nil {
			log.Error("monitor failed", "err", err, "journal_err", jerr)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (a *Agent) setRunning(name string, on bool) {
	a.mu.Lock()
	a.running[name] = on
	_, wasDown := a.down[name]
	if on {
		delete(a.down, name)
	}
	a.mu.Unlock()
	if on && wasDown {
		a.healthChanged()
	}
}

func (a *Agent) setDown(name string) {
	a.mu.Lock()
	if a.down == nil {
		a.down = map[string]time.Time{}
	}
	a.down[name] = a.opt.Now().UTC()
	a.mu.Unlock()
	a.healthChanged()
}

// AllRunning reports whether every monitor is currently running.
func (a *Agent) AllRunning() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.opt.Monitors {
		if !a.running[m.Name()] {
			return false
		}
	}
	return true
}

// watchdog calls Options.Alive every WatchdogInterval while every monitor
// runs and its loop answered a liveness request (Env.Liveness) within the
// last two intervals (the systemd timeout, WatchdogSec): a monitor stuck in
// a call (a hung netlink request, a blocked send) stops systemd's
// watchdog, which then restarts the agent; a round of probes that takes a
// while (its own timeouts bound it) does not. A journal that cannot be
// written does not stop it either: the agent is degraded but routing, and
// a restart would not fix the disk (docs/faults.md).
func (a *Agent) watchdog(ctx context.Context) {
	t := time.NewTicker(a.opt.WatchdogInterval)
	defer t.Stop()
	var mu sync.Mutex
	answered := map[string]time.Time{}
	start := time.Now()
	a.liveMu.Lock()
	for name := range a.live {
		answered[name] = start
	}
	a.liveMu.Unlock()
	ask := func() {
		a.liveMu.Lock()
		defer a.liveMu.Unlock()
		for name, ch := range a.live {
			select {
			case ch <- func() { mu.Lock(); answered[name] = time.Now(); mu.Unlock() }:
			default: // the previous request is still waiting
			}
		}
	}
	ask()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok := a.AllRunning()
			mu.Lock()
			for _, at := range answered {
				if time.Since(at) > 2*a.opt.WatchdogInterval {
					ok = false
				}
			}
			mu.Unlock()
			if ok {
				a.opt.Alive()
			}
			ask()
		}
	}
}

// safeRun calls fn, turning a panic into an error with its stack.
func safeRun(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return fn()
}
