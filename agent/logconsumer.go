package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"

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

	mu     sync.Mutex     // guards logged
	logged map[string]int // events logged by Now, not journaled yet
}

// logKey identifies an event for Now/Forget: not its Seq nor Time, which
// the journal assigns; identical events are counted.
func logKey(ev event.Event) string {
	return ev.Monitor + "\x00" + ev.Kind + "\x00" + ev.Level + "\x00" + ev.Msg + "\x00" + strings.Join(ev.Args, "\x00")
}

// Now logs ev at once, before it is journaled (the journal cannot be
// written), and remembers it so that Run does not log it again when it is
// journaled later. Implements DirectLogger.
func (c *LogConsumer) Now(ev event.Event) {
	if c.Skip[ev.Kind] {
		return
	}
	c.mu.Lock()
	if c.logged == nil {
		c.logged = map[string]int{}
	}
	c.logged[logKey(ev)]++
	c.mu.Unlock()
	c.Sink.WriteAt(ev.Time, priority(ev.Level), ev.Monitor, LogText(ev))
}

// Forget drops the memory of an event logged by Now that will never be
// journaled (dropped from the queue). Implements DirectLogger.
func (c *LogConsumer) Forget(ev event.Event) {
	if c.Skip[ev.Kind] {
		return
	}
	c.take(ev)
}

// take reports whether ev was logged by Now, forgetting it.
func (c *LogConsumer) take(ev event.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.logged) == 0 {
		return false
	}
	k := logKey(ev)
	n := c.logged[k]
	if n == 0 {
		return false
	}
	if n == 1 {
		delete(c.logged, k)
	} else {
		c.logged[k] = n - 1
	}
	return true
}

// Name implements Consumer.
func (c *LogConsumer) Name() string { return "log" }

// Run implements Consumer.
func (c *LogConsumer) Run(ctx context.Context) error {
	from := c.J.Cursor("log") + 1
	follow(ctx, c.J, from, func(ev event.Event) bool {
		if !c.Skip[ev.Kind] && !c.take(ev) {
			c.Sink.WriteAt(ev.Time, priority(ev.Level), ev.Monitor, LogText(ev))
		}
		c.J.SetCursor("log", ev.Seq)
		return true
	}, nil)
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
