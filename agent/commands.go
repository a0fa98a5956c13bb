package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"imon/agent/command"
	"imon/event"
)

// Errors of FailoverCommand.
var (
	// ErrCommandRejected wraps the reason of a refused command (journaled
	// as command-rejected).
	ErrCommandRejected = errors.New("command rejected")
	// ErrCommandThrottled: the source's command budget is spent; the
	// command was dropped, counted, and not journaled (see command.Budget).
	ErrCommandThrottled = errors.New("command dropped: over the command budget")
	// ErrFailoverDisabled is the reason of a valid command while the
	// failover monitor is not enabled.
	ErrFailoverDisabled = errors.New("the failover monitor is not enabled")
)

// commandGate is the agent's state of manual commands.
type commandGate struct {
	budget *command.Budget
	timer  *time.Timer // closes the throttled window; nil when none is open
	now    func() time.Time
}

// FailoverCommand is the one entry point of manual failover commands:
// the control socket (`imon failover`, source "cli") and MQTT
// BASE/failover/set (source "mqtt") both hand it the raw payload.
//
// A command first spends a token of its source's budget (Options.
// CommandLimits): over the budget it is dropped, counted, and the count
// journaled as one command-throttled event per window, and
// ErrCommandThrottled is returned. Otherwise it is parsed (command.Parse),
// checked (failover enabled, not a mode change sooner than MinSwitch after
// the last one) and journaled: a failover-command event that the failover
// monitor acts on, or a command-rejected event and an error wrapping
// ErrCommandRejected.
func (a *Agent) FailoverCommand(ctx context.Context, payload []byte, source string) (event.Event, error) {
	a.cmdMu.Lock()
	now := a.cmd.now()
	ok, closeAt := a.cmd.budget.Take(source, now)
	if !ok {
		if !closeAt.IsZero() {
			a.cmd.timer = time.AfterFunc(closeAt.Sub(now), a.closeThrottled)
		}
		a.cmdMu.Unlock()
		return event.Event{}, ErrCommandThrottled
	}
	mode, err := command.Parse(payload)
	if err == nil && !a.opt.FailoverEnabled {
		err = ErrFailoverDisabled
	}
	if err == nil {
		err = a.cmd.budget.Switch(mode, now)
	}
	if err != nil {
		if ok, closeAt := a.cmd.budget.Reject(source, now); !ok {
			if !closeAt.IsZero() {
				a.cmd.timer = time.AfterFunc(closeAt.Sub(now), a.closeThrottled)
			}
			a.cmdMu.Unlock()
			return event.Event{}, fmt.Errorf("%w: %w (not journaled: over the rejection budget)", ErrCommandRejected, err)
		}
	}
	a.cmdMu.Unlock()
	if err != nil {
		ev, jerr := a.emit(ctx, command.Rejected(payload, source, err), true)
		if jerr != nil {
			return ev, jerr
		}
		return ev, fmt.Errorf("%w: %w", ErrCommandRejected, err)
	}
	return a.emit(ctx, command.Accepted(mode, source), true)
}

// closeThrottled journals the summary of the throttled window that just
// ended (the timer's goroutine; bounded by a timeout).
func (a *Agent) closeThrottled() {
	a.cmdMu.Lock()
	t := a.cmd.budget.Close()
	a.cmd.timer = nil
	a.cmdMu.Unlock()
	if t.Empty() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Emit(ctx, t.Event()); err != nil {
		a.log.Error("journal command-throttled", "err", err)
	}
}

// flushThrottled journals the open throttled window now (at stop).
func (a *Agent) flushThrottled() {
	a.cmdMu.Lock()
	if a.cmd.timer != nil {
		a.cmd.timer.Stop()
	}
	a.cmdMu.Unlock()
	a.closeThrottled()
}
