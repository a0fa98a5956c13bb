// Package updown is imon's updown monitor: it watches one IP address (the
// "monitorip", e.g. an internet host) and journals updown-offline when it
// stops answering and updown-online, with the outage duration, when it
// answers again.
//
// Unlike the original, which ran a ping round every interval, the monitor
// probes continuously: one echo request every interval/(2·pingcount), each
// lost when no reply comes within pingwait, and the target is unreachable
// once the last pingcount probes are all lost. With interval 1, pingcount 2
// and pingwait 1 an outage is declared about 1.4 s after it begins (the
// original needed about 5 s). An optional DNS query (dnsserver, dnslookup)
// can refute an outage, as in the original, and the addping hosts are
// pinged on every change and reported with it.
//
// The decisions are made by Machine, which is pure (it takes the time as an
// argument and asks for DNS checks and addping rounds instead of doing
// them); Monitor.Run only feeds it probe outcomes and results and journals
// its events. docs/updown-ping.md describes the behaviour for users.
package updown

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"imon/agent/monitor"
	"imon/agent/probe"
	"imon/config"
	"imon/event"
)

// AddpingSpacing is the gap between the echo requests of an addping round
// (up to pingcount requests, each waiting pingwait; the first reply ends
// it).
const AddpingSpacing = 100 * time.Millisecond

// Deps are the network seams of the monitor.
type Deps struct {
	// Streamer probes monitorip continuously.
	Streamer probe.Streamer
	// Pinger pings the addping hosts on a status change.
	Pinger probe.Pinger
	// Resolver resolves monitorip and addping entries given as names.
	Resolver probe.Resolver
	// DNS runs the DNS check (dnsserver, dnslookup).
	DNS probe.DNSChecker
}

// RealDeps returns the real implementations (raw-socket ICMP, the system
// resolver, miekg/dns).
func RealDeps(logger *slog.Logger) Deps {
	icmp := probe.NewPinger(logger)
	res := probe.NewResolver(logger)
	dns := probe.NewDNSChecker(logger)
	dns.Resolver = res
	return Deps{Streamer: icmp, Pinger: icmp, Resolver: res, DNS: dns}
}

// Monitor is the updown monitor; it implements monitor.Monitor.
type Monitor struct {
	cfg  config.Updown
	deps Deps
}

var _ monitor.Monitor = (*Monitor)(nil)

// New returns the monitor for the "updown" section. Zero settings get the
// config defaults (interval 10 s, pingcount 2, pingwait 1 s, down-interval
// min(interval, 1 s)), so a hand-built config works too.
func New(cfg config.Updown, deps Deps) *Monitor {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.PingCount < 1 {
		cfg.PingCount = 2
	}
	if cfg.PingWait <= 0 {
		cfg.PingWait = time.Second
	}
	if cfg.DownInterval <= 0 {
		cfg.DownInterval = min(cfg.Interval, time.Second)
	}
	return &Monitor{cfg: cfg, deps: deps}
}

// FromConfig is New(cfg.Updown, deps): what the agent calls when
// cfg.Updown.Enable is set.
func FromConfig(cfg *config.Config, deps Deps) *Monitor { return New(cfg.Updown, deps) }

// Name implements monitor.Monitor.
func (m *Monitor) Name() string { return event.MonitorUpdown }

// Params returns the decision settings derived from the config.
func (m *Monitor) Params() Params {
	return Params{
		Target:       m.cfg.MonitorIP,
		PingCount:    m.cfg.PingCount,
		DNSServer:    m.cfg.DNSServer,
		DNSLookup:    m.cfg.DNSLookup,
		DownInterval: m.cfg.DownInterval,
		AddPing:      m.cfg.AddPing,
	}
}

// StreamOptions returns the probe pacing: one request every
// interval/(2·pingcount), so that a check's pingcount probes fit in half an
// interval, each waiting pingwait.
func (m *Monitor) StreamOptions() probe.StreamOptions {
	return probe.StreamOptions{
		Spacing: m.cfg.Interval / time.Duration(2*m.cfg.PingCount),
		Wait:    m.cfg.PingWait,
	}
}

type dnsDone struct {
	id  int
	err error
}

type addpingDone struct {
	id  int
	res []AddpingStatus
}

type resolved struct {
	addr netip.Addr
	err  error
}

// Run implements monitor.Monitor. It returns nil when ctx ends, and an
// error when the journal cannot be written or the probe stream cannot start
// (no CAP_NET_RAW): the supervisor restarts it.
func (m *Monitor) Run(ctx context.Context, env monitor.Env) error {
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup // DNS checks and addping rounds
	defer func() {
		cancel() // first: a helper blocked in deliver gives up
		wg.Wait()
	}()

	mach := NewMachine(m.Params())
	var last *State
	if env.Last.Seq != 0 && len(env.Last.State) > 0 {
		var st State
		if err := env.Last.DecodeState(&st); err != nil {
			logger.Warn("ignoring the previous state", "err", err)
		} else {
			last = &st
		}
	}
	mach.Start(time.Now(), last)

	results := make(chan any)
	deliver := func(v any) {
		select {
		case results <- v:
		case <-ctx.Done():
		}
	}
	do := func(out Output) error {
		for _, ev := range out.Events {
			if _, err := env.Emit(ctx, ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("journaling %s: %w", ev.Kind, err)
			}
		}
		if id := out.DNSCheck; id != 0 {
			wg.Go(func() {
				err := m.deps.DNS.Check(ctx, m.cfg.DNSServer, m.cfg.DNSLookup)
				logger.Debug("dns check", "server", m.cfg.DNSServer, "name", m.cfg.DNSLookup, "err", err)
				deliver(dnsDone{id, err})
			})
		}
		if id := out.Addping; id != 0 {
			wg.Go(func() { deliver(addpingDone{id, m.addping(ctx)}) })
		}
		return nil
	}

	var (
		addr      netip.Addr // monitorip resolved (zero: not yet)
		resolving bool
		stream    <-chan probe.Outcome
		stop      context.CancelFunc = func() {}
		retry                        = time.NewTimer(0) // resolve / (re)start the stream
		wake                         = time.NewTimer(0)
		refresh   <-chan time.Time
	)
	defer func() { stop() }()
	defer retry.Stop()
	wake.Stop()
	defer wake.Stop()
	if !(&probe.Target{Host: m.cfg.MonitorIP}).Literal() {
		t := time.NewTicker(probe.DefaultRefresh)
		defer t.Stop()
		refresh = t.C
	}

	// resolve looks monitorip up in a helper, so that a dead DNS never
	// holds up the probe outcomes.
	resolve := func() {
		if resolving {
			return
		}
		resolving = true
		wg.Go(func() {
			a, err := m.deps.Resolver.Resolve(ctx, m.cfg.MonitorIP)
			deliver(resolved{a, err})
		})
	}
	startStream := func() error {
		sctx, scancel := context.WithCancel(ctx)
		ch, err := m.deps.Streamer.Stream(sctx, addr, m.StreamOptions())
		if err != nil {
			scancel()
			return fmt.Errorf("probing %s: %w", m.cfg.MonitorIP, err)
		}
		stop()
		stream, stop = ch, scancel
		mach.StreamRestarted()
		return nil
	}

	for {
		if w := mach.Wake(); !w.IsZero() {
			wake.Reset(time.Until(w))
		} else {
			wake.Stop()
		}
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
			if addr.IsValid() {
				err = startStream()
			} else {
				resolve()
			}
		case <-refresh:
			resolve()
		case o, ok := <-stream:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				logger.Warn("probe stream ended, restarting", "target", m.cfg.MonitorIP)
				stream = nil
				retry.Reset(m.cfg.DownInterval)
				break
			}
			err = do(mach.Probe(time.Now(), o))
		case r := <-results:
			now := time.Now()
			switch r := r.(type) {
			case dnsDone:
				err = do(mach.DNSResult(now, r.id, r.err))
			case addpingDone:
				err = do(mach.AddpingResult(now, r.id, r.res))
			case resolved:
				resolving = false
				switch {
				case r.err != nil && addr.IsValid():
					logger.Debug("refreshing the target address failed, keeping it", "target", m.cfg.MonitorIP, "addr", addr, "err", r.err)
				case r.err != nil:
					retry.Reset(m.cfg.DownInterval)
					err = do(mach.ResolveFailed(now, r.err))
				default:
					if err = do(mach.Resolved(now, r.addr)); err != nil || (r.addr == addr && stream != nil) {
						break
					}
					if addr.IsValid() {
						logger.Info("target address changed", "target", m.cfg.MonitorIP, "old", addr, "addr", r.addr)
					}
					addr = r.addr
					err = startStream()
				}
			}
		case <-wake.C:
			err = do(mach.Tick(time.Now()))
		case f := <-env.Liveness: // the agent's watchdog: this loop runs
			f()
		}
		if err != nil {
			return err
		}
	}
}

// addping pings every addping entry concurrently (up to pingcount requests
// AddpingSpacing apart, each waiting pingwait, stopping at the first reply)
// and returns their status in configuration order. A live host costs one
// RTT; a dead one (pingcount-1)·AddpingSpacing + pingwait.
func (m *Monitor) addping(ctx context.Context) []AddpingStatus {
	res := make([]AddpingStatus, len(m.cfg.AddPing))
	var wg sync.WaitGroup
	for i, host := range m.cfg.AddPing {
		wg.Go(func() {
			st := AddpingStatus{IP: host}
			defer func() { res[i] = st }()
			addr, err := m.deps.Resolver.Resolve(ctx, host)
			if err != nil {
				st.Error = err.Error()
				return
			}
			st.Addr = addr.String()
			r, err := m.deps.Pinger.Ping(ctx, addr, probe.PingOptions{
				Count: m.cfg.PingCount, Spacing: AddpingSpacing, Wait: m.cfg.PingWait, UntilReply: true})
			if err != nil {
				st.Error = err.Error()
				return
			}
			st.Alive = r.Alive()
			if st.Alive {
				st.RTTms = ms(r.Avg)
			}
		})
	}
	wg.Wait()
	return res
}
