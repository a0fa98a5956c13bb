package outbox

import (
	"context"

	"imon/event"
)

// Commander is the agent's one entry point of manual commands
// ((*agent.Agent).FailoverCommand): it budgets, parses, checks and
// journals a raw payload from source. The outbox hands it every payload
// received on BASE/failover/set with source "mqtt", as the control socket
// does with `imon failover`'s mode and source "cli".
type Commander func(ctx context.Context, payload []byte, source string) (event.Event, error)

// WithCommander sets the entry point of the commands received on
// BASE/failover/set. Without one, commands are dropped (and logged).
func WithCommander(c Commander) Option { return func(o *options) { o.commander = c } }

// SourceMQTT is the source of commands from BASE/failover/set.
const SourceMQTT = "mqtt"

// handleCommands hands each command received to the commander, in order.
func (o *Outbox) handleCommands(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-o.cmds:
			if o.opt.commander == nil {
				o.log.Warn("mqtt command dropped: no command entry point", "size", len(p))
				continue
			}
			// A refused or throttled command is the commander's business:
			// it journals or counts it.
			if _, err := o.opt.commander(ctx, p, SourceMQTT); err != nil && ctx.Err() == nil {
				o.log.Debug("mqtt command", "err", err)
			}
		}
	}
}
