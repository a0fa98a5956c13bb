package agent

import (
	"context"
	"fmt"
	"strings"

	"imon/agent/logsink"
	"imon/event"
)

// LogConsumer writes every journaled event to the log sink, in journal order,
// with its own cursor ("log"): events journaled just before a crash are
// logged after the restart.
type LogConsumer struct {
	J    Journal
	Sink *logsink.Sink
	// Skip lists kinds that are not logged (ping-result when an action
	// script receives them, as in the original).
	Skip map[string]bool
}

// Name implements Consumer.
func (c *LogConsumer) Name() string { return "log" }

// Run implements Consumer.
func (c *LogConsumer) Run(ctx context.Context) error {
	from := c.J.Cursor("log") + 1
	follow(ctx, c.J, from, func(ev event.Event) bool {
		if !c.Skip[ev.Kind] {
			c.Sink.WriteAt(ev.Time, priority(ev.Level), ev.Monitor, LogText(ev))
		}
		c.J.SetCursor("log", ev.Seq)
		return true
	})
	return nil
}

func priority(level string) logsink.Priority {
	switch level {
	case event.LevelError:
		return logsink.Err
	case event.LevelWarn:
		return logsink.Warning
	}
	return logsink.Info
}

// LogText is the log line of an event: its Msg, or "KIND DATA" when the
// monitor gave none.
func LogText(ev event.Event) string {
	if ev.Msg != "" {
		return ev.Msg
	}
	var b strings.Builder
	b.WriteString(ev.Kind)
	if len(ev.Args) > 0 {
		b.WriteString(" " + strings.Join(ev.Args, " "))
	} else if s := string(ev.Data); s != "" && s != "{}" {
		fmt.Fprintf(&b, " %s", s)
	}
	return b.String()
}
