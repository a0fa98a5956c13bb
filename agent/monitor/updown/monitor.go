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

// Deps are the network seams of the monitor. Every field is required:
// cmd/imon injects the real ones (the ICMP prober, the system resolver,
// miekg/dns), tests inject fakes from package probetest.
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

// Monitor is the updown monitor; it implements monitor.Monitor.
type Monitor struct {
	cfg  config.Updown
	deps Deps
}

var _ monitor.Monitor = (*Monitor)(nil)

// New returns the monitor for the "updown" section. Zero settings get the
// config defaults (interval 10 s, pingcount 2, pingwait 1 s, down-interval
// min(interval, 1 s)), so a hand-built config works too. It fails when a
// seam of deps is missing.
func New(cfg config.Updown, deps Deps) (*Monitor, error) {
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
	if cfg.DownInterval <= 0 {
		cfg.DownInterval = min(cfg.Interval, time.Second)
	}
	return &Monitor{cfg: cfg, deps: deps}, nil
}

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

// run is the state of one Run. Only the loop goroutine touches it; the
// helpers (DNS checks, addping rounds, resolutions) answer on its channels.
type run struct {
	m    *Monitor
	env  monitor.Env
	log  *slog.Logger
	mach *Machine
	wg   sync.WaitGroup // the helpers

	dnsDone     chan dnsDone
	addpingDone chan addpingDone
	resolved    chan resolved

	addr      netip.Addr // monitorip resolved (zero: not yet)
	resolving bool
	stream    <-chan probe.Outcome
	stop      context.CancelFunc // stops the stream
	retry     *time.Timer        // resolve / (re)start the stream
	wake      *time.Timer        // the machine's next deadline
	refresh   <-chan time.Time   // re-resolve a monitorip given as a name
}

// Run implements monitor.Monitor. It returns nil when ctx ends, and an
// error when the journal cannot be written or the probe stream cannot start
// (no CAP_NET_RAW): the supervisor restarts it.
//
// The Machine decides; the loop (loop) observes and the steps act: act
// journals the machine's events and starts what it asks for, startStream
// and resolve run the probes and the lookups.
func (m *Monitor) Run(ctx context.Context, env monitor.Env) error {
	ctx, cancel := context.WithCancel(ctx)
	r := m.newRun(env)
	defer func() {
		cancel() // first: a helper blocked in deliver gives up
		r.wg.Wait()
	}()
	defer r.retry.Stop()
	defer r.wake.Stop()
	defer func() { r.stop() }()
	if !(&probe.Target{Host: m.cfg.MonitorIP}).Literal() {
		t := time.NewTicker(probe.DefaultRefresh)
		defer t.Stop()
		r.refresh = t.C
	}
	return r.loop(ctx)
}

// newRun restores the machine from the last journaled state and arms the
// first resolution.
func (m *Monitor) newRun(env monitor.Env) *run {
	r := &run{
		m: m, env: env, log: env.Logger,
		mach:        NewMachine(m.Params()),
		dnsDone:     make(chan dnsDone),
		addpingDone: make(chan addpingDone),
		resolved:    make(chan resolved),
		stop:        func() {},
		retry:       time.NewTimer(0),
		wake:        time.NewTimer(0),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.wake.Stop()
	var last *State
	if env.Last.Seq != 0 && len(env.Last.State) > 0 {
		var st State
		if err := env.Last.DecodeState(&st); err != nil {
			r.log.Warn("ignoring the previous state", "err", err)
		} else {
			last = &st
		}
	}
	r.mach.Start(time.Now(), last)
	return r
}

// loop feeds the machine until ctx ends: every case hands one observation
// to it and acts on its Output.
func (r *run) loop(ctx context.Context) error {
	for {
		if w := r.mach.Wake(); !w.IsZero() {
			r.wake.Reset(time.Until(w))
		} else {
			r.wake.Stop()
		}
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-r.retry.C:
			if r.addr.IsValid() {
				err = r.startStream(ctx)
			} else {
				r.resolve(ctx)
			}
		case <-r.refresh:
			r.resolve(ctx)
		case o, ok := <-r.stream:
			if ok {
				err = r.act(ctx, r.mach.Probe(time.Now(), o))
			} else if ctx.Err() != nil {
				return nil
			} else {
				r.streamEnded()
			}
		case d := <-r.dnsDone:
			err = r.act(ctx, r.mach.DNSResult(time.Now(), d.id, d.err))
		case a := <-r.addpingDone:
			err = r.act(ctx, r.mach.AddpingResult(time.Now(), a.id, a.res))
		case res := <-r.resolved:
			err = r.onResolved(ctx, res)
		case <-r.wake.C:
			err = r.act(ctx, r.mach.Tick(time.Now()))
		case f := <-r.env.Liveness: // the agent's watchdog: this loop runs
			f()
		}
		if err != nil {
			return err
		}
	}
}

// act carries out the machine's Output: journal its events in order, then
// start the DNS check and the addping round it asks for.
func (r *run) act(ctx context.Context, out Output) error {
	for _, ev := range out.Events {
		if _, err := r.env.Emit(ctx, ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("journaling %s: %w", ev.Kind, err)
		}
	}
	cfg := r.m.cfg
	if id := out.DNSCheck; id != 0 {
		r.wg.Go(func() {
			err := r.m.deps.DNS.Check(ctx, cfg.DNSServer, cfg.DNSLookup)
			r.log.Debug("dns check", "server", cfg.DNSServer, "name", cfg.DNSLookup, "err", err)
			deliver(ctx, r.dnsDone, dnsDone{id, err})
		})
	}
	if id := out.Addping; id != 0 {
		r.wg.Go(func() { deliver(ctx, r.addpingDone, addpingDone{id, r.m.addping(ctx)}) })
	}
	return nil
}

// deliver hands a helper's answer to the loop, or gives up when ctx ends.
func deliver[T any](ctx context.Context, ch chan<- T, v T) {
	select {
	case ch <- v:
	case <-ctx.Done():
	}
}

// resolve looks monitorip up in a helper, so that a dead DNS never holds
// up the probe outcomes.
func (r *run) resolve(ctx context.Context) {
	if r.resolving {
		return
	}
	r.resolving = true
	r.wg.Go(func() {
		a, err := r.m.deps.Resolver.Resolve(ctx, r.m.cfg.MonitorIP)
		deliver(ctx, r.resolved, resolved{a, err})
	})
}

// onResolved takes a resolution's answer: a failure keeps a known address
// (or reports it to the machine and retries), a new address restarts the
// stream.
func (r *run) onResolved(ctx context.Context, res resolved) error {
	r.resolving = false
	now := time.Now()
	switch {
	case res.err != nil && r.addr.IsValid():
		r.log.Debug("refreshing the target address failed, keeping it", "target", r.m.cfg.MonitorIP, "addr", r.addr, "err", res.err)
		return nil
	case res.err != nil:
		r.retry.Reset(r.m.cfg.DownInterval)
		return r.act(ctx, r.mach.ResolveFailed(now, res.err))
	}
	if err := r.act(ctx, r.mach.Resolved(now, res.addr)); err != nil || (res.addr == r.addr && r.stream != nil) {
		return err
	}
	if r.addr.IsValid() {
		r.log.Info("target address changed", "target", r.m.cfg.MonitorIP, "old", r.addr, "addr", res.addr)
	}
	r.addr = res.addr
	return r.startStream(ctx)
}

// startStream (re)starts the probe stream to the resolved address.
func (r *run) startStream(ctx context.Context) error {
	sctx, scancel := context.WithCancel(ctx)
	ch, err := r.m.deps.Streamer.Stream(sctx, r.addr, r.m.StreamOptions())
	if err != nil {
		scancel()
		return fmt.Errorf("probing %s: %w", r.m.cfg.MonitorIP, err)
	}
	r.stop()
	r.stream, r.stop = ch, scancel
	r.mach.StreamRestarted()
	return nil
}

// streamEnded arms a restart of a stream that ended by itself.
func (r *run) streamEnded() {
	r.log.Warn("probe stream ended, restarting", "target", r.m.cfg.MonitorIP)
	r.stream = nil
	r.retry.Reset(r.m.cfg.DownInterval)
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
