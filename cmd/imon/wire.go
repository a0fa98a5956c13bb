package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"imon/agent"
	"imon/agent/action"
	"imon/agent/logsink"
	"imon/agent/monitor"
	"imon/agent/monitor/ddns"
	"imon/agent/monitor/failover"
	"imon/agent/monitor/ping"
	"imon/agent/monitor/updown"
	"imon/agent/outbox"
	"imon/agent/probe"
	"imon/agent/probe/extip"
	"imon/agent/route"
	"imon/agent/sdnotify"
	"imon/config"
	"imon/event"
	"imon/history"
	"imon/journal"
)

// wiring is the composition root's result: the monitors and consumers built
// from the config, and the systemd hooks.
type wiring struct {
	monitors  []monitor.Monitor
	consumers []agent.Consumer
	names     []string // enabled monitors
	agent     *agent.Agent
	history   *history.Consumer
	logc      *agent.LogConsumer // also logs events at once while the journal cannot be written
	outbox    *outbox.Outbox

	ready, alive, stopping func()
	watchdog               time.Duration
	log                    *slog.Logger
}

// wire builds the real monitors, probes and consumers for cfg.
func wire(cfg *config.Config, nosyslog bool, j *journal.Journal, sink *logsink.Sink, log *slog.Logger, reloading func() bool) (*wiring, error) {
	w := &wiring{names: enabledMonitors(cfg), log: log}
	ms, err := newMonitors(cfg, log)
	if err != nil {
		return nil, err
	}
	w.monitors = ms
	skip := map[string]bool{}
	if cfg.Global.Action != "" {
		skip[event.KindPingResult] = true // the action script gets them, as in the original
	}
	w.logc = &agent.LogConsumer{J: j, Sink: sink, Skip: skip}
	w.consumers = append(w.consumers,
		w.logc,
		&action.Consumer{
			Journal:  j,
			Emitter:  emitter{w},
			Action:   cfg.Global.Action,
			Instance: cfg.Global.Instance,
			NoSyslog: nosyslog,
			Home:     os.Getenv("HOME"),
			Timeout:  cfg.Global.ActionTimeout,
			MaxAge:   cfg.Global.ActionMaxAge,
			Logger:   log.With("monitor", "action"),
		})
	w.history = newHistory(cfg, j, log)
	w.consumers = append(w.consumers, w.history)

	if cfg.MQTT.Enable {
		// Commands from MQTT take the control socket's road: the agent's
		// FailoverCommand (w.agent is set before the agent runs).
		cmds := outbox.WithCommander(func(ctx context.Context, p []byte, src string) (event.Event, error) {
			return w.agent.FailoverCommand(ctx, p, src)
		})
		ob, err := outbox.New(cfg.MQTT, cfg.HomeAssistant, w.names, cfg.Global.Instance, version, j, log.With("monitor", "mqtt"),
			outbox.WithSections(cfg), cmds, outbox.WithEmitter(emitter{w}),
			outbox.WithJournalSize(func() int64 { return j.Stats().FileBytes }),
			outbox.WithAvailability(w.history.AvailabilityState), outbox.WithHealth(w.problems),
			outbox.WithTicker(probe.Shared().Every))
		if err != nil {
			return nil, fmt.Errorf("mqtt: %w", err)
		}
		w.outbox = ob
		w.consumers = append(w.consumers, ob)
	}

	// systemd: READY once the journal is open and the monitors started,
	// WATCHDOG only while every monitor runs.
	logNotify := func(what string, err error) {
		if err != nil {
			log.Warn("sd_notify", "state", what, "err", err)
		}
	}
	w.ready = func() {
		logNotify("STATUS", sdnotify.Status(w.statusLine()))
		logNotify("READY", sdnotify.Ready())
	}
	w.stopping = func() {
		// A reload tells systemd RELOADING=1, not STOPPING=1 (which would
		// make it wait for the process to end); the next run's READY=1
		// ends the reload.
		if reloading != nil && reloading() {
			logNotify("RELOADING", sdnotify.Reloading())
			return
		}
		logNotify("STOPPING", sdnotify.Stopping())
	}
	if iv, err := sdnotify.WatchdogInterval(); err == nil && iv > 0 {
		w.watchdog = iv / 2
		w.alive = func() { logNotify("WATCHDOG", sdnotify.Watchdog()) }
	}
	return w, nil
}

// emitter is the agent's Emit for the consumers' own events (action-failed,
// action-skipped, mqtt-connected...): one ordered writer, one policy when
// the journal cannot be written, the Instance set by the agent. It is bound
// late: the consumers are built before the agent, which is set before it
// runs them.
type emitter struct{ w *wiring }

func (e emitter) Emit(ctx context.Context, ev event.Event) (event.Event, error) {
	if e.w.agent == nil {
		return ev, fmt.Errorf("%s/%s event emitted before the agent was created", ev.Monitor, ev.Kind)
	}
	return e.w.agent.Emit(ctx, ev)
}

// newMonitors builds the enabled monitors, in the original's order, each
// with New(section, Deps): here, and only here, the real seams are
// injected (the ICMP prober, resolvers, the DNS checker, netlink, the
// external-IP queriers); tests inject fakes.
func newMonitors(cfg *config.Config, log *slog.Logger) ([]monitor.Monitor, error) {
	probeLog := log.With("monitor", "probe")
	var out []monitor.Monitor
	add := func(name string, m monitor.Monitor, err error) error {
		if err != nil {
			return fmt.Errorf("%s monitor: %w", name, err)
		}
		out = append(out, m)
		return nil
	}
	if cfg.DDNS.Enable {
		m, err := ddns.New(cfg.DDNS, ddns.Deps{
			NewQuerier:     func(s extip.Spec) (extip.Querier, error) { return extip.New(s, extip.Options{}) },
			InterfaceAddrs: ddns.InterfaceAddrs,
		})
		if err := add(event.MonitorDDNS, m, err); err != nil {
			return nil, err
		}
	}
	if cfg.Updown.Enable {
		icmp, res, dns := probe.NewPinger(probeLog), probe.NewResolver(probeLog), probe.NewDNSChecker(probeLog)
		dns.Resolver = res // dnsserver may be a name
		m, err := updown.New(cfg.Updown, updown.Deps{Streamer: icmp, Pinger: icmp, Resolver: res, DNS: dns})
		if err := add(event.MonitorUpdown, m, err); err != nil {
			return nil, err
		}
	}
	if cfg.Failover.Enable {
		icmp := probe.NewPinger(probeLog)
		m, err := failover.New(cfg.Failover, failover.Deps{
			OpenKernel: func() (route.Kernel, error) { return route.NewNetlink() },
			Streamer:   icmp, Pinger: icmp, Resolver: probe.NewResolver(probeLog),
			Updates: func(ctx context.Context, log *slog.Logger) <-chan route.Update {
				return route.Watch(ctx, netns.None(), log)
			},
			Carrier: icmp.WatchCarrier,
		})
		if err := add(event.MonitorFailover, m, err); err != nil {
			return nil, err
		}
	}
	if cfg.Ping.Enable {
		m, err := ping.New(cfg.Ping, ping.Deps{Pinger: probe.NewPinger(probeLog), Resolver: probe.NewResolver(probeLog)})
		if err := add(event.MonitorPing, m, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// problems is the agent's degraded state for BASE/agent/state.
func (w *wiring) problems() (bool, []string) {
	if w.agent == nil {
		return false, nil
	}
	h := w.agent.Health()
	var out []string
	for _, p := range h.Problems {
		out = append(out, p.What+": "+p.Msg)
	}
	return h.Degraded, out
}

// statusLine is systemd's STATUS=: the monitors, and DEGRADED with the
// problems when there are any.
func (w *wiring) statusLine() string {
	line := fmt.Sprintf("monitoring: %s", strings.Join(w.names, ", "))
	if bad, ps := w.problems(); bad {
		line = "DEGRADED (" + strings.Join(ps, "; ") + "); " + line
	}
	return line
}

// healthChanged runs when the agent's health changed: systemd's STATUS=
// and the MQTT agent state follow.
func (w *wiring) healthChanged() {
	if err := sdnotify.Status(w.statusLine()); err != nil {
		w.log.Warn("sd_notify", "state", "STATUS", "err", err)
	}
	if w.outbox != nil {
		w.outbox.HealthChanged()
	}
}

// enabledMonitors lists the enabled monitors in the original's order.
func enabledMonitors(cfg *config.Config) []string {
	var out []string
	if cfg.DDNS.Enable {
		out = append(out, event.MonitorDDNS)
	}
	if cfg.Updown.Enable {
		out = append(out, event.MonitorUpdown)
	}
	if cfg.Failover.Enable {
		out = append(out, event.MonitorFailover)
	}
	if cfg.Ping.Enable {
		out = append(out, event.MonitorPing)
	}
	return out
}
