// Package monitor holds what every imon monitor shares: the Monitor
// interface the agent's supervisor runs, and the Env it hands each run.
//
// A monitor never writes state anywhere but the journal: it observes the
// network, decides with pure functions, and calls Env.Emit, which returns
// once the event is durable. The agent derives everything else (log, action
// script, MQTT, status) from the journal.
package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"imon/agent/probe"
	"imon/event"
)

// Emit appends ev to the journal (Instance, Seq and Time are filled in) and
// returns the journaled event once it is durable. It fails only when the
// journal cannot be written or ctx ends.
type Emit func(ctx context.Context, ev event.Event) (event.Event, error)

// Env is what the supervisor gives a monitor for one run.
type Env struct {
	// Instance is the imon instance name.
	Instance string
	// Logger is tagged with the monitor's name; use it for debug detail only:
	// everything a user should see is an event.
	Logger *slog.Logger
	// Emit journals an event.
	Emit Emit
	// Last is the latest journaled event of this monitor that carries a
	// State (Seq 0 when there is none): restore from it on start, so that a
	// restart continues where the previous run stopped.
	Last event.Event
	// Watch returns the live stream of journal events of every monitor
	// appended after the call (commands such as failover-command, or a
	// failover switch the ddns monitor reacts to). The channel is closed when
	// ctx ends. It may be nil in tests that do not need it.
	Watch func(ctx context.Context) <-chan event.Event
	// Liveness carries the agent watchdog's requests: the monitor's main
	// loop answers each one by calling it (case f := <-env.Liveness: f()).
	// A loop that does not answer within the watchdog interval (stuck in a
	// call) stops systemd's watchdog. Nil (never ready) in tests.
	Liveness <-chan func()
	// Every returns a channel that receives the time at every period until
	// ctx ends, dropping the ticks a busy reader misses. imon's is the
	// probe engine's (probe.Engine.Every): the ticks fall on the probes'
	// and share their wakeups. Nil in tests; use Env.Ticks.
	Every func(ctx context.Context, period time.Duration) <-chan time.Time
}

// Ticks is env.Every(ctx, period), or, without Every (tests),
// probe.TimeTicks'.
func (env Env) Ticks(ctx context.Context, period time.Duration) <-chan time.Time {
	if env.Every != nil {
		return env.Every(ctx, period)
	}
	return probe.TimeTicks(ctx, period)
}

// Monitor is one of imon's monitors.
type Monitor interface {
	// Name is the monitor's name as used in events and config sections.
	Name() string
	// Run monitors until ctx is done, then returns nil. An error return or a
	// panic is journaled by the supervisor, which runs it again with backoff.
	Run(ctx context.Context, env Env) error
}

// CheckDeps returns an error naming every nil field (interface, func,
// pointer, map, channel) of deps, a monitor's Deps struct. Every monitor is
// built with New(cfg, Deps), its seams injected (the real ones by cmd/imon,
// fakes by tests, none meaning "real"); New calls CheckDeps so that a
// forgotten seam fails at construction, named, not as a nil dereference in
// Run.
func CheckDeps(deps any) error {
	v := reflect.ValueOf(deps)
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("deps: %T is not a struct", deps)
	}
	var missing []string
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Interface, reflect.Func, reflect.Pointer, reflect.Map, reflect.Chan:
			if f.IsNil() {
				missing = append(missing, v.Type().Field(i).Name)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing seams in %s: %s", v.Type(), strings.Join(missing, ", "))
	}
	return nil
}

// PathGrace is how long after the start of a monitor's run a probe that
// could not be sent for want of a route (probe.NoRoute) is not taken for
// an outage while no reply has been seen in the run: at boot the default
// route comes later (failover still choosing, dhcpcd with nogateway), and
// the path not being up yet is not an outage. Well beyond failover's first
// choice at its defaults (up-after 5 probes 1 s apart).
const PathGrace = 30 * time.Second
