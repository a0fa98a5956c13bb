package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"imon/event"
)

// CursorName is the journal cursor of the action [Consumer].
const CursorName = "action"

// DefaultMaxAge is the default of [Consumer.MaxAge] (config global
// "action-max-age").
const DefaultMaxAge = time.Hour

const (
	// readBatch is how many events the consumer reads from the journal at once.
	readBatch = 256
	// skipDetail is how many consecutive skipped events get an action-skipped
	// event each; the rest of the run is journaled as one summary, so that a
	// long backlog (a script configured on a months-old journal) does not
	// double the journal.
	skipDetail = 20
	// skipFlush bounds a summary: the cursor is not advanced while a summary
	// is pending, so one is journaled at least every skipFlush events.
	skipFlush = 10000
)

// Journal is what the [Consumer] needs of the event journal
// (*journal.Journal satisfies it).
type Journal interface {
	// Follow reads the journal from seq from on, waiting for new events,
	// and reports the ranges it skips (journal.Journal.Follow).
	Follow(ctx context.Context, from uint64, f event.Follower) (uint64, error)
	// Cursor is the last Seq the named consumer finished (0: none).
	Cursor(name string) uint64
	// SetCursor records the cursor lazily (persisted with the next commit).
	SetCursor(name string, seq uint64)
	// SyncCursor records the cursor durably.
	SyncCursor(ctx context.Context, name string, seq uint64) error
}

// Emitter journals the consumer's own events (action-failed,
// action-skipped): the agent's Emit, with its one ordered writer and its
// policy when the journal cannot be written; it sets the Instance.
type Emitter interface {
	Emit(ctx context.Context, ev event.Event) (event.Event, error)
}

// Consumer hands every action event of the journal to the action script,
// strictly one at a time in journal order and at least once across crashes.
// It reads the journal in its own goroutine (the agent runs it as a
// consumer), so a slow script never blocks a monitor. Set the fields, then
// call Run; a Consumer must not be copied after first use.
type Consumer struct {
	// Journal is followed from the cursor [CursorName] on.
	Journal Journal
	// Emitter journals action-failed and action-skipped.
	Emitter Emitter
	// Runner runs the script; nil means [Exec] with its defaults.
	Runner Runner
	// Action is the script path (config global "action"). When empty no
	// script runs, but the cursor still follows the journal, so that an
	// action configured later does not start from an old backlog.
	Action string
	// Instance is the imon instance name (argv INSTANCE, IMON_INSTANCE).
	Instance string
	// NoSyslog selects SYSLOGFLAG "1" (imon runs with --nosyslog).
	NoSyslog bool
	// Home is HOME in the script's environment; "" means "/".
	Home string
	// Timeout bounds one script run; 0 means [DefaultTimeout].
	Timeout time.Duration
	// MaxAge: an action event older than this when its turn comes is
	// journaled as action-skipped instead of run; 0 means [DefaultMaxAge].
	MaxAge time.Duration
	// Logger receives the script's output, line by line, and diagnostics.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	handled uint64 // last Seq completely handled
	skip    skipRun
}

// skipRun tracks consecutive skipped events.
type skipRun struct {
	n       int // skipped events in this run, detailed or summarized
	pending summary
}

// summary accumulates skipped events beyond skipDetail.
type summary struct {
	first, last uint64
	count       int
	ageS        float64 // age of the first (oldest) summarized event
}

// Name is the consumer's (and its cursor's) name.
func (c *Consumer) Name() string { return CursorName }

// Run follows the journal until ctx ends, then returns nil. A script running
// when ctx ends is stopped (its process group is killed) and its event is not
// marked done, so the next start runs it again unless it is too old by then.
// Run returns an error only when the journal fails.
func (c *Consumer) Run(ctx context.Context) error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Runner == nil {
		c.Runner = Exec{}
	}
	c.handled = c.Journal.Cursor(CursorName)
	c.skip = skipRun{}
	_, err := c.Journal.Follow(ctx, c.handled+1, event.Follower{
		Batch: readBatch,
		Events: func(ctx context.Context, evs []event.Event) (int, error) {
			for i, ev := range evs {
				done, err := c.handle(ctx, ev)
				if err != nil || !done {
					return i, own(err)
				}
			}
			return len(evs), nil
		},
		// Retention deleted events not taken yet, or damaged pages: say so
		// and go on (before: the consumer stopped at damage for good).
		Gap:  func(ctx context.Context, g event.Gap) error { return own(c.lost(ctx, g.First, g.Last, g.Reason)) },
		Idle: func(ctx context.Context) (bool, error) { return true, own(c.flushSkips(ctx)) },
	})
	if ctx.Err() != nil || errors.Is(err, event.ErrStop) {
		return c.stop(ctx)
	}
	if o := (ownError{}); errors.As(err, &o) { // the consumer's own, already described
		return o.err
	}
	return fmt.Errorf("action: %w", err)
}

// own marks err (nil stays nil) as the consumer's own: Run returns it as is.
func own(err error) error {
	if err == nil {
		return nil
	}
	return ownError{err}
}

type ownError struct{ err error }

func (e ownError) Error() string { return e.err.Error() }
func (e ownError) Unwrap() error { return e.err }

// stop journals a pending skip summary on the way out.
func (c *Consumer) stop(ctx context.Context) error {
	if err := c.flushSkips(context.WithoutCancel(ctx)); err != nil {
		c.Logger.Warn("action: journal skipped events at stop", "err", err)
	}
	return nil
}

// handle processes one event; done is false when ctx ended while its script
// ran (the event is then not marked).
func (c *Consumer) handle(ctx context.Context, ev event.Event) (done bool, err error) {
	if c.Action == "" || !event.IsAction(ev.Kind) {
		c.advance(ev.Seq)
		return true, nil
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	maxAge := c.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if age := now().Sub(ev.Time); age > maxAge {
		return true, c.skipEvent(ctx, ev, age, maxAge)
	}
	if err := c.flushSkips(ctx); err != nil {
		return false, err
	}
	c.skip = skipRun{}

	log := c.Logger.With("monitor", ev.Monitor)
	cmd := Command{
		Argv:    Args(c.Action, c.Instance, c.NoSyslog, ev),
		Env:     Env(c.Instance, c.Home, ev),
		Timeout: c.Timeout,
	}
	log.Debug("action: run", "seq", ev.Seq, "command", ev.Kind, "argv", strings.Join(cmd.Argv, " "))
	r := c.Runner.Run(ctx, cmd)
	if r.Canceled || (ctx.Err() != nil && !r.OK()) {
		log.Warn("action: stopped by shutdown, will run again on the next start",
			"seq", ev.Seq, "command", ev.Kind)
		return false, nil
	}
	logOutput(log, ev, r)
	if r.Unprotected != "" {
		log.Debug("action: "+r.Unprotected, "seq", ev.Seq, "command", ev.Kind)
	}
	if r.Leftovers {
		logLeftovers(log, ev, r)
	}
	// The script ran: record that even when shutdown began meanwhile.
	rctx := context.WithoutCancel(ctx)
	if !r.OK() {
		fail := failedEvent(c.Action, ev, r)
		if _, err := c.Emitter.Emit(rctx, fail); err != nil {
			return false, fmt.Errorf("action: journal action-failed for seq %d: %w", ev.Seq, err)
		}
	}
	c.handled = ev.Seq
	if err := c.Journal.SyncCursor(rctx, CursorName, ev.Seq); err != nil {
		return false, fmt.Errorf("action: sync cursor at seq %d: %w", ev.Seq, err)
	}
	return true, nil
}

// lost reports events first..last that the consumer could not take: journal
// retention deleted them first (reason "retention": a slow script behind a
// journal that reached its size bound), or they sit on damaged pages
// ("damaged"): one action-skipped event with the count and the range, and
// a warning in the log. Without an action script nothing was lost.
func (c *Consumer) lost(ctx context.Context, first, last uint64, reason string) error {
	if c.Action == "" || first == 0 || last < first {
		if last >= first && first > 0 {
			c.handled = last
			c.Journal.SetCursor(CursorName, last)
		}
		return nil
	}
	n := last - first + 1
	why := "journal retention deleted them before the action runner took them (journal max-bytes or max-age too small for the backlog)"
	if reason == event.GapDamaged {
		why = "they are on damaged journal pages and cannot be read"
	}
	c.Logger.Warn("action: events not run: "+why, "first_seq", first, "last_seq", last, "count", n, "reason", reason)
	if err := c.flushSkips(ctx); err != nil {
		return err
	}
	sk := event.New(event.MonitorAction, event.KindActionSkipped,
		fmt.Sprintf("Action script not run for %d events (seq %d to %d): %s", n, first, last, why),
		map[string]any{"seq": first, "last_seq": last, "count": n, "reason": reason}).WithLevel(event.LevelWarn)
	if _, err := c.Emitter.Emit(ctx, sk); err != nil {
		return fmt.Errorf("action: journal action-skipped for seq %d-%d (%s): %w", first, last, reason, err)
	}
	c.skip = skipRun{}
	c.handled = last
	c.Journal.SetCursor(CursorName, last)
	return nil
}

// advance marks seq handled; the cursor waits while a skip summary is
// pending (its events must be journaled before the cursor passes them).
func (c *Consumer) advance(seq uint64) {
	c.handled = seq
	if c.skip.pending.count == 0 {
		c.Journal.SetCursor(CursorName, seq)
	}
}

// skipEvent journals ev as action-skipped, individually for the first
// skipDetail events of a run and as part of a summary after that.
func (c *Consumer) skipEvent(ctx context.Context, ev event.Event, age, maxAge time.Duration) error {
	c.skip.n++
	if c.skip.n > skipDetail {
		p := &c.skip.pending
		if p.count == 0 {
			p.first, p.ageS = ev.Seq, age.Seconds()
		}
		p.last = ev.Seq
		p.count++
		c.handled = ev.Seq
		if p.count >= skipFlush {
			return c.flushSkips(ctx)
		}
		return nil
	}
	sk := event.New(event.MonitorAction, event.KindActionSkipped,
		fmt.Sprintf("Action script not run for %s (seq %d): the event is %s old, older than action-max-age %s",
			ev.Kind, ev.Seq, age.Round(time.Second), maxAge),
		map[string]any{"seq": ev.Seq, "kind": ev.Kind, "age_s": age.Seconds()}).WithLevel(event.LevelWarn)
	if _, err := c.Emitter.Emit(ctx, sk); err != nil {
		return fmt.Errorf("action: journal action-skipped for seq %d: %w", ev.Seq, err)
	}
	c.advance(ev.Seq)
	return nil
}

// flushSkips journals a pending summary of skipped events, then moves the
// cursor to the last handled event.
func (c *Consumer) flushSkips(ctx context.Context) error {
	p := c.skip.pending
	if p.count == 0 {
		return nil
	}
	sk := event.New(event.MonitorAction, event.KindActionSkipped,
		fmt.Sprintf("Action script not run for %d more old events (seq %d to %d)", p.count, p.first, p.last),
		map[string]any{"seq": p.first, "last_seq": p.last, "count": p.count, "age_s": p.ageS}).WithLevel(event.LevelWarn)
	if _, err := c.Emitter.Emit(ctx, sk); err != nil {
		return fmt.Errorf("action: journal action-skipped summary for seq %d-%d: %w", p.first, p.last, err)
	}
	c.skip.pending = summary{}
	c.Journal.SetCursor(CursorName, c.handled)
	return nil
}

// failedEvent builds the action-failed event for a run of ev that was not OK.
func failedEvent(action string, ev event.Event, r Result) event.Event {
	data := map[string]any{
		"seq":        ev.Seq,
		"kind":       ev.Kind,
		"exit":       r.Exit,
		"reason":     r.Reason(),
		"output":     r.Output,
		"duration_s": r.Duration.Seconds(),
	}
	if r.Dropped > 0 {
		data["output_dropped"] = r.Dropped
	}
	fail := event.New(event.MonitorAction, event.KindActionFailed,
		fmt.Sprintf("Action script %s failed for %s (seq %d): %s", action, ev.Kind, ev.Seq, r.Reason()),
		data).WithLevel(event.LevelError)
	return fail
}

// logOutput logs the script's output line by line: Info after a good run,
// Warn after a failed one.
func logOutput(log *slog.Logger, ev event.Event, r Result) {
	level := slog.LevelInfo
	if !r.OK() {
		level = slog.LevelWarn
	}
	if r.Dropped > 0 {
		log.Log(context.Background(), level, "action output truncated",
			"seq", ev.Seq, "command", ev.Kind, "dropped_bytes", r.Dropped)
	}
	for line := range strings.Lines(r.Output) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		log.Log(context.Background(), level, "action output", "seq", ev.Seq, "command", ev.Kind, "line", line)
	}
}

// logLeftovers says what became of the processes that kept the script's
// output open after it exited: killed, or still running.
func logLeftovers(log *slog.Logger, ev event.Event, r Result) {
	attrs := []any{"seq", ev.Seq, "command", ev.Kind}
	if len(r.Killed) > 0 {
		attrs = append(attrs, "killed_outside_group", r.Killed)
	}
	switch {
	case len(r.Escaped) > 0:
		log.Error("action: processes the script left behind kept its output open; its process group was killed, but these escaped and still run",
			append(attrs, "escaped", r.Escaped)...)
	case r.OutputHeld:
		log.Error("action: processes the script left behind kept its output open; its process group was killed, but some escaped (not found in /proc) and still hold the output",
			attrs...)
	case r.LeftoverErr != nil:
		log.Warn("action: processes the script left behind kept its output open; its process group was killed, processes outside it may still run",
			append(attrs, "err", r.LeftoverErr)...)
	default:
		log.Warn("action: processes the script left behind kept its output open; killed (its process group and every other holder of the output)",
			attrs...)
	}
}
