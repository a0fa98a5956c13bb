package agent

import (
	"context"
	"fmt"
	"strconv"

	"imon/event"
)

// Failover modes accepted by `imon failover` and the MQTT command topic.
const (
	ModePrimary = "primary"
	ModeStandby = "standby"
	ModeAuto    = "auto"
)

// ErrCommandRejected is wrapped by FailoverCommand for a refused command.
var ErrCommandRejected = fmt.Errorf("command rejected")

// FailoverCommand journals a manual failover request from source ("cli",
// "mqtt"): a failover-command event that the failover monitor acts on, or a
// command-rejected event (and an error wrapping ErrCommandRejected) when the
// mode is not primary, standby or auto, or failover is not enabled.
func (a *Agent) FailoverCommand(ctx context.Context, mode, source string, failoverEnabled bool) (event.Event, error) {
	reason := ""
	switch {
	case mode != ModePrimary && mode != ModeStandby && mode != ModeAuto:
		reason = "mode must be primary, standby or auto"
	case !failoverEnabled:
		reason = "the failover monitor is not enabled"
	}
	if reason != "" {
		shown := mode
		if len(shown) > 64 {
			shown = shown[:64]
		}
		ev, err := a.emit(ctx, event.New(event.MonitorAgent, event.KindCommandRejected,
			fmt.Sprintf("Rejected failover command %s from %s: %s", strconv.Quote(shown), source, reason),
			map[string]any{"source": source, "reason": reason, "payload": shown}).WithLevel(event.LevelWarn), false)
		if err != nil {
			return ev, err
		}
		return ev, fmt.Errorf("%w: %s", ErrCommandRejected, reason)
	}
	return a.emit(ctx, event.New(event.MonitorAgent, event.KindFailoverCommand,
		fmt.Sprintf("Manual failover command %s from %s", mode, source),
		map[string]any{"mode": mode, "source": source}), false)
}
