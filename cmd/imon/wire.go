package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

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

	ready, alive, stopping func()
	watchdog               time.Duration
}

// wire builds the real monitors, probes and consumers for cfg.
func wire(cfg *config.Config, nosyslog bool, j *journal.Journal, sink *logsink.Sink, log *slog.Logger) (*wiring, error) {
	w := &wiring{names: enabledMonitors(cfg)}
	probeLog := log.With("monitor", "probe")
	if cfg.DDNS.Enable {
		m, err := ddns.New(cfg.DDNS, ddns.Options{})
		if err != nil {
			return nil, fmt.Errorf("ddns monitor: %w", err)
		}
		w.monitors = append(w.monitors, m)
	}
	if cfg.Updown.Enable {
		w.monitors = append(w.monitors, updown.New(cfg.Updown, updown.RealDeps(probeLog)))
	}
	if cfg.Failover.Enable {
		icmp := probe.NewPinger(probeLog)
		w.monitors = append(w.monitors, &failover.Monitor{
			Cfg: cfg.Failover, Streamer: icmp, Pinger: icmp, Resolver: probe.NewResolver(probeLog),
		})
	}
	if cfg.Ping.Enable {
		w.monitors = append(w.monitors, ping.New(cfg.Ping, ping.RealDeps(probeLog)))
	}
	skip := map[string]bool{}
	if cfg.Global.Action != "" {
		skip[event.KindPingResult] = true // the action script gets them, as in the original
	}
	w.consumers = append(w.consumers,
		&agent.LogConsumer{J: j, Sink: sink, Skip: skip},
		&action.Consumer{
			Journal:  j,
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
			outbox.WithSections(cfg), cmds, outbox.WithAvailability(w.history.AvailabilityState))
		if err != nil {
			return nil, fmt.Errorf("mqtt: %w", err)
		}
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
		logNotify("STATUS", sdnotify.Status(fmt.Sprintf("monitoring: %s", strings.Join(w.names, ", "))))
		logNotify("READY", sdnotify.Ready())
	}
	w.stopping = func() { logNotify("STOPPING", sdnotify.Stopping()) }
	if iv, err := sdnotify.WatchdogInterval(); err == nil && iv > 0 {
		w.watchdog = iv / 2
		w.alive = func() { logNotify("WATCHDOG", sdnotify.Watchdog()) }
	}
	return w, nil
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
