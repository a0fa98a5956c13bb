// Package ping is imon's ping monitor: every interval it sends pingcount
// echo requests to one host and journals a ping-result event with the
// round's minimum, average and maximum RTT, loss and jitter, which the
// action script receives as IP:ALIVE:MINRTT:AVGRTT:MAXRTT:LOSS:JITTER.
//
// Rounds start on a ticker, so they do not drift; a round that takes longer
// than the interval makes the next tick be skipped, so rounds never pile up.
// At boot, rounds that find no route to the target (before the first reply
// and within monitor.PathGrace of the start) are not journaled: the path is
// not up yet, which is not an outage.
// Result is the pure formatting of a round into its event;
// docs/updown-ping.md describes the behaviour for users.
package ping

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"imon/agent/monitor"
	"imon/agent/probe"
	"imon/config"
	"imon/event"
)

// KindResolveFailed is journaled (warn) when monitorip is a name that does
// not resolve, once per failure streak; the rounds are skipped until it
// resolves again.
const KindResolveFailed = "ping-resolve-failed"

// State is the ping monitor's state: the last round, journaled with every
// ping-result.
type State struct {
	Target   string    `json:"target"` // monitorip as configured
	Addr     string    `json:"addr"`   // the address pinged
	Time     string    `json:"time"`   // end of the round (RFC 3339 UTC, ms)
	Alive    bool      `json:"alive"`
	Sent     int       `json:"sent"`
	Recv     int       `json:"recv"`
	MinMs    float64   `json:"min_ms"`
	AvgMs    float64   `json:"avg_ms"`
	MaxMs    float64   `json:"max_ms"`
	Loss     float64   `json:"loss"` // fraction 0..1
	JitterMs float64   `json:"jitter_ms"`
	RTTsMs   []float64 `json:"rtts_ms"`
}

// Result builds the ping-result event of round r of target (monitorip as
// configured) ending at end. State and Data both hold the round.
func Result(target string, r probe.PingResult, end time.Time) event.Event {
	st := State{
		Target: target, Addr: r.Addr.String(), Time: end.UTC().Format(event.TimeFormat),
		Alive: r.Alive(), Sent: r.Sent, Recv: r.Recv,
		MinMs: ms(r.Min), AvgMs: ms(r.Avg), MaxMs: ms(r.Max), JitterMs: ms(r.Jitter),
		Loss: math.Round(r.Loss*1000) / 1000, RTTsMs: []float64{},
	}
	for _, d := range r.RTTs {
		st.RTTsMs = append(st.RTTsMs, ms(d))
	}
	alive := pyBool(st.Alive)
	mn, avg, mx, jit := fmtMs(r.Min), fmtMs(r.Avg), fmtMs(r.Max), fmtMs(r.Jitter)
	loss := fmtLoss(r.Loss)
	msg := fmt.Sprintf("Ping Result: IP:%s State:%s minrtt:%s avgrtt:%s maxrtt:%s loss:%s jitter:%s",
		target, alive, mn, avg, mx, loss, jit)
	arg := target + ":" + alive + ":" + mn + ":" + avg + ":" + mx + ":" + loss + ":" + jit
	return event.New(event.MonitorPing, event.KindPingResult, msg, st).WithArgs(arg).WithState(st)
}

// ms is d in milliseconds rounded to 3 decimals.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// fmtMs formats d in milliseconds with 3 decimals.
func fmtMs(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 3, 64) }

// fmtLoss formats a loss fraction like Python prints a float: at most 3
// decimals, at least one ("0.0", "0.5", "0.333", "1.0").
func fmtLoss(f float64) string {
	s := strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// Deps are the network seams of the monitor. Every field is required:
// cmd/imon injects the real ones (the ICMP prober, the system resolver),
// tests inject fakes from package probetest.
type Deps struct {
	Pinger   probe.Pinger
	Resolver probe.Resolver
}

// Monitor is the ping monitor; it implements monitor.Monitor.
type Monitor struct {
	cfg  config.Ping
	deps Deps
}

var _ monitor.Monitor = (*Monitor)(nil)

// New returns the monitor for the "ping" section. Zero settings get the
// config defaults (interval 10 s, pingcount 2, pingwait 1 s). It fails when
// a seam of deps is missing.
func New(cfg config.Ping, deps Deps) (*Monitor, error) {
	if err := monitor.CheckDeps(deps); err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.PingCount < 1 {
		cfg.PingCount = 2
	}
	if cfg.PingWait <= 0 {
		cfg.PingWait = time.Second
	}
	return &Monitor{cfg: cfg, deps: deps}, nil
}

// Name implements monitor.Monitor.
func (m *Monitor) Name() string { return event.MonitorPing }

// Options returns one round's settings: pingcount requests spaced
// min(1 s, interval/(pingcount+1)) apart, each waiting pingwait.
func (m *Monitor) Options() probe.PingOptions {
	return probe.PingOptions{
		Count:   m.cfg.PingCount,
		Spacing: min(time.Second, m.cfg.Interval/time.Duration(m.cfg.PingCount+1)),
		Wait:    m.cfg.PingWait,
	}
}

// freshTick is how old a tick found after a round may be and still start
// the next round: less than the probe engine's grid, so that only a tick
// that came with the round's end counts.
const freshTick = probe.Grid

// run is the state of one Run.
type run struct {
	m      *Monitor
	env    monitor.Env
	log    *slog.Logger
	target probe.Target
	// resolveFailing: the target's name does not resolve and that was
	// journaled (once per failure streak).
	resolveFailing bool
	// start is when the run began; replied is set at the first round with
	// a reply. Until then, for monitor.PathGrace, a round with no route
	// to the target is not journaled (see round).
	start   time.Time
	replied bool
}

// Run implements monitor.Monitor: a round at start and then every
// interval. It returns nil when ctx ends, and an error when the journal
// cannot be written or no echo request can be sent at all (no
// CAP_NET_RAW).
func (m *Monitor) Run(ctx context.Context, env monitor.Env) error {
	r := &run{m: m, env: env, log: env.Logger, target: probe.Target{Host: m.cfg.MonitorIP, Resolver: m.deps.Resolver}, start: time.Now()}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	// On the probe engine's grid in imon (env.Every): the round starts on
	// the tick of failover's probes and shares their wakeup.
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	tick := env.Ticks(tctx, m.cfg.Interval)
	for {
		if err := r.round(ctx); err != nil {
			return err
		}
		// A tick that fired while the round ran is stale: skip it rather
		// than start the next round at once. One that came as the round
		// ended (on the engine's grid the round's last reply is read at
		// the tick that also starts the next round) is the next round's.
		select {
		case t := <-tick:
			if time.Since(t) < freshTick {
				continue
			}
		default:
		}
		if !r.wait(ctx, tick) {
			return nil
		}
	}
}

// wait answers the agent watchdog's liveness requests until the next tick
// (true) or the end of ctx (false).
func (r *run) wait(ctx context.Context, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case f := <-r.env.Liveness: // the agent's watchdog: this loop runs
			f()
		case <-tick:
			return true
		}
	}
}

// round resolves the target, pings it and journals the result: a
// ping-result, or ping-resolve-failed at the start of a failure streak.
func (r *run) round(ctx context.Context) error {
	host := r.m.cfg.MonitorIP
	addr, _, rerr, err := r.target.Addr(ctx, time.Now())
	if rerr != nil {
		r.log.Debug("refreshing the target address failed, keeping it", "target", host, "addr", addr, "err", rerr)
	}
	if err != nil {
		if ctx.Err() != nil || r.resolveFailing {
			return nil
		}
		r.resolveFailing = true
		return r.emit(ctx, event.New(event.MonitorPing, KindResolveFailed,
			"Cannot resolve ping target "+host+": "+err.Error(),
			map[string]any{"ip": host, "error": err.Error()}).WithLevel(event.LevelWarn))
	}
	r.resolveFailing = false
	res, err := r.m.deps.Pinger.Ping(ctx, addr, r.m.Options())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("pinging %s: %w", host, err)
	}
	if res.Alive() {
		r.replied = true
	}
	// At boot the default route comes later (failover still choosing,
	// dhcpcd with nogateway): a round that could not send for want of a
	// route, before any reply and within monitor.PathGrace of the start, is
	// the path not being up yet, not a lost round.
	if res.NoRoute && !r.replied && time.Since(r.start) < monitor.PathGrace {
		r.log.Debug("no route to the ping target yet, round not journaled", "target", host, "addr", addr)
		return nil
	}
	return r.emit(ctx, Result(host, res, time.Now()))
}

// emit journals ev; an error after ctx ended is no error.
func (r *run) emit(ctx context.Context, ev event.Event) error {
	if _, err := r.env.Emit(ctx, ev); err != nil && ctx.Err() == nil {
		return fmt.Errorf("journaling %s: %w", ev.Kind, err)
	}
	return nil
}
