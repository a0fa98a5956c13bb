// Package agent runs an imon instance: it journals what the monitors see,
// supervises them, and feeds every journal consumer (log, action script,
// MQTT, control socket).
//
// The journal is the source of truth. A monitor's observation becomes an
// event through Emit, which returns only once the event is durable; the log
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
	"sync"
	"time"

	"imon/agent/command"
	"imon/agent/monitor"
	"imon/event"
	"imon/journal"
)

// Journal is what the agent needs of the event journal (*journal.Journal).
type Journal interface {
	Append(ctx context.Context, evs ...event.Event) ([]event.Event, error)
	Read(from uint64, max int) ([]event.Event, error)
	Wait(ctx context.Context, after uint64) error
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
	// running (systemd WATCHDOG=1). May be nil.
	Alive            func()
	WatchdogInterval time.Duration
	// Stopping is called when shutdown begins (systemd STOPPING=1). May be nil.
	Stopping func()
	// DrainTimeout bounds how long consumers may take to catch up at stop
	// (default 5 s).
	DrainTimeout time.Duration
	// JournalFullSettle is how long appends must succeed without a failure
	// for lack of space before a full-journal episode is over (see Emit;
	// default DefaultJournalFullSettle).
	JournalFullSettle time.Duration
	// FailoverEnabled: manual failover commands are accepted (else they
	// are rejected; see FailoverCommand).
	FailoverEnabled bool
	// CommandLimits is the budget of manual commands; zero fields take
	// command.DefaultLimits'.
	CommandLimits command.Limits
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

	full fullEpisode // appends failing for lack of space (see Emit)

	cmdMu sync.Mutex // guards cmd
	cmd   commandGate
}

// New returns an agent for opt.
func New(opt Options) *Agent {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.DrainTimeout == 0 {
		opt.DrainTimeout = 5 * time.Second
	}
	if opt.JournalFullSettle == 0 {
		opt.JournalFullSettle = DefaultJournalFullSettle
	}
	if opt.RestartBackoff == 0 {
		opt.RestartBackoff = time.Second
	}
	return &Agent{opt: opt, log: opt.Logger, running: map[string]bool{},
		cmd: commandGate{budget: command.NewBudget(opt.CommandLimits), now: time.Now}}
}

// Emit journals ev for the agent's instance and returns it as stored.
//
// When the journal has no space (the error wraps journal.ErrNoSpace: a full
// disk, or the file at its size limit), Emit does not fail: monitoring and
// failover must go on. It returns ev unjournaled (Seq 0) with a nil error,
// logs the condition once per episode, and counts what was not journaled;
// once appends have succeeded for Options.JournalFullSettle, a
// KindJournalFull event per affected monitor is journaled. Other errors are
// returned.
func (a *Agent) Emit(ctx context.Context, ev event.Event) (event.Event, error) {
	return a.emit(ctx, ev, true)
}

// emit is Emit; with tolerateFull false a full journal is an error too (a
// manual command must not be acknowledged when nothing will act on it).
func (a *Agent) emit(ctx context.Context, ev event.Event, tolerateFull bool) (event.Event, error) {
	ev.Instance = a.opt.Instance
	if len(ev.Data) == 0 {
		ev.Data = event.MustJSON(nil)
	}
	out, err := a.opt.Journal.Append(ctx, ev)
	if err != nil {
		if tolerateFull && errors.Is(err, journal.ErrNoSpace) {
			a.noSpace(ev, err)
			return ev, nil
		}
		return ev, fmt.Errorf("journal %s/%s event: %w", ev.Monitor, ev.Kind, err)
	}
	if a.full.open.Load() {
		a.endFull(ctx)
	}
	return out[0], nil
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
		})
	}()
	return ch
}

// follow calls fn for every event from seq on, waiting for new ones, until
// ctx ends or fn returns false. Returns the next seq to read.
func follow(ctx context.Context, j Journal, from uint64, fn func(event.Event) bool) uint64 {
	for {
		evs, err := j.Read(from, 512)
		if err != nil {
			// A read error is transient (the journal is local): retry soon.
			select {
			case <-ctx.Done():
				return from
			case <-time.After(time.Second):
				continue
			}
		}
		for _, ev := range evs {
			if !fn(ev) {
				return from
			}
			from = ev.Seq + 1
		}
		if len(evs) > 0 {
			continue
		}
		if first := j.FirstSeq(); from < first { // retention removed events
			from = first
			continue
		}
		if err := j.Wait(ctx, from-1); err != nil {
			return from
		}
	}
}

// Run runs the agent until ctx ends: it journals agent-start, starts the
// consumers and the monitors, and on cancellation stops the monitors,
// journals agent-stop, lets the consumers drain and returns.
func (a *Agent) Run(ctx context.Context) error {
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
		monitors.Add(1)
		go func() {
			defer monitors.Done()
			a.supervise(monCtx, m)
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
	// Let consumers catch up to the stop event, then stop them.
	a.drain(stopCtx, last.Seq)
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

func (a *Agent) runConsumer(ctx context.Context, c Consumer) {
	backoff := a.opt.RestartBackoff
	for {
		err := safeRun(func() error { return c.Run(ctx) })
		if ctx.Err() != nil {
			return
		}
		a.log.Error("consumer stopped, restarting", "consumer", c.Name(), "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// supervise runs m until ctx ends, restarting it with backoff after an error
// or a panic, which it journals as monitor-error.
func (a *Agent) supervise(ctx context.Context, m monitor.Monitor) {
	backoff := a.opt.RestartBackoff
	log := a.log.With("monitor", m.Name())
	for {
		last, _ := a.opt.Journal.Latest(m.Name())
		env := monitor.Env{
			Instance: a.opt.Instance,
			Logger:   log,
			Emit:     a.Emit,
			Last:     last,
			Watch:    a.Watch,
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
		if time.Since(started) > 5*time.Minute {
			backoff = a.opt.RestartBackoff
		}
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
		backoff = min(backoff*2, time.Minute)
	}
}

func (a *Agent) setRunning(name string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running[name] = on
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

func (a *Agent) watchdog(ctx context.Context) {
	t := time.NewTicker(a.opt.WatchdogInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if a.AllRunning() {
				a.opt.Alive()
			}
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
