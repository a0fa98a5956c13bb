// Package failover is imon's failover monitor: it keeps the LAN on the
// internet over one of two WAN links.
//
// Each WAN is probed through itself, whether or not it is active (probe
// sockets carry the WAN's source address and fwmark; the route manager's
// per-WAN tables and rules steer them), with paced probes every
// probe-interval. A WAN is down after down-after probes in a row went
// unanswered and up after up-after replies in a row; carrier loss, a
// missing interface or address marks it down at once. The main table's
// default route follows the policy (prefer-primary, or a manual pin) with an
// atomic replace, and failback waits for a hold that doubles after each
// flap.
//
// The policy is the pure function [Decide] (state, input, time) → (state,
// effects), table-tested with a fake clock. [Monitor.Run] is the thin loop
// around it: it feeds probe outcomes, netlink link/address/route changes,
// manual commands and timers into Decide and carries out the effects
// (journal an event, switch the route, delete conntrack entries, post-ping).
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"imon/agent/command"
	"imon/agent/monitor"
	"imon/agent/probe"
	"imon/agent/route"
	"imon/config"
	"imon/event"
)

// Name is the monitor's name in events and config.
const Name = event.MonitorFailover

// Timing of the loop.
const (
	// resyncEvery re-reads links and re-asserts routes even without netlink
	// events: a safety net. Notifications lost to a full socket buffer
	// already cause a resync at once (route.Watch resubscribes and sends
	// route.Resync), and a foreign default route is checked 100 ms after its
	// notification (reassert), so this only catches what nothing reported.
	// A resync is about 15 netlink round trips, each an ordinary system call
	// that wakes the runtime's sysmon: at the default intervals the 30 s it
	// was made about a hundred wakeups a minute, more than a tenth of the
	// agent's (strace, docs/bench.md). 5 minutes since 2026-12-06.
	resyncEvery = 5 * time.Minute
	// reassertDelay coalesces bursts of route notifications (our own
	// changes included) before the routes are checked again.
	reassertDelay = 100 * time.Millisecond
	// restartDelay is the pause before a failed probe stream is restarted.
	restartDelay = time.Second
	// resolveTimeout bounds one resolution of a probe target name.
	resolveTimeout = 3 * time.Second
	// stopTimeout bounds the cleanup and the final event after ctx ended.
	stopTimeout = 5 * time.Second
)

// Deps are the seams of the failover monitor. Every field is required:
// cmd/imon injects the real ones (netlink and the probe engine in the
// agent's network namespace, the system resolver), tests inject fakes.
type Deps struct {
	// OpenKernel opens the routing seam for one run (real:
	// route.NewNetlink); Run closes it when it returns if it has a Close
	// method.
	OpenKernel func() (route.Kernel, error)
	// Streamer sends the paced probes.
	Streamer probe.Streamer
	// Pinger runs the post-switch checks.
	Pinger probe.Pinger
	// Resolver resolves probe target names.
	Resolver probe.Resolver
	// Updates streams kernel changes until ctx ends (real: route.Watch),
	// logging to log, the run's logger; a func returning nil disables it.
	Updates func(ctx context.Context, log *slog.Logger) <-chan route.Update
	// Carrier watches an interface's carrier flag until ctx ends: the
	// channel gets each new value (real: /sys/class/net/IF/carrier read on
	// the probe engine's grid, [probe.Engine.WatchCarrier]). The kernel
	// flips the flag at once but sends the netlink notification from its
	// linkwatch worker, which batches events to one run a second: the grid
	// read sees a carrier loss within a tick, at no wakeup of its own.
	Carrier func(ctx context.Context, ifname string) <-chan bool
}

// Monitor is the failover monitor; it implements monitor.Monitor.
type Monitor struct {
	cfg  config.Failover // defaulted
	deps Deps
}

// New returns the monitor for the (defaulted) "failover" section. It fails
// when a seam of deps is missing.
func New(cfg config.Failover, deps Deps) (*Monitor, error) {
	if err := monitor.CheckDeps(deps); err != nil {
		return nil, err
	}
	return &Monitor{cfg: cfg, deps: deps}, nil
}

var _ monitor.Monitor = (*Monitor)(nil)

// Name implements monitor.Monitor.
func (m *Monitor) Name() string { return Name }

// RouteConfig is the route manager configuration of a failover section.
func RouteConfig(f config.Failover) route.Config {
	return route.Config{
		WANs:         []route.WAN{{If: f.Primary.If, GW: f.Primary.GW}, {If: f.Standby.If, GW: f.Standby.GW}},
		Metric:       f.Metric,
		TableBase:    f.TableBase,
		RulePriority: f.RulePriority,
		FwmarkBase:   f.FwmarkBase,
		Protocol:     f.RouteProtocol,
	}
}

// probeMsg is one outcome of WAN wan's stream generation gen.
type probeMsg struct {
	wan, gen int
	o        probe.Outcome
	err      error // the stream could not start
}

// stream is one WAN's probe stream.
type stream struct {
	gen    int
	cancel context.CancelFunc
	source netip.Addr
	retry  time.Time // restart after this when it failed
	target netip.Addr
}

// runner is one Run's loop state. Only the loop goroutine touches it.
type runner struct {
	m              *Monitor
	env            monitor.Env
	log            *slog.Logger
	mgr            *route.Manager
	st             State
	links          [2]route.Link
	streams        [2]stream
	probes         chan probeMsg
	results        chan Input // answers of asynchronous effects (post-ping)
	wg             sync.WaitGroup
	gen            int
	targets        [2]netip.Addr // resolved probe targets (invalid = unresolved)
	resolvedCh     chan resolved
	resolveFaulted [2]bool
	queue          []Input
}

// Run implements monitor.Monitor.
//
// Decide decides; the runner observes and acts. loop hands each
// observation (probe outcomes, kernel changes, carrier, commands, timers,
// answers of background work) to a step that turns it into Decide's
// inputs; drain runs Decide over them and do carries out its effects.
func (m *Monitor) Run(ctx context.Context, env monitor.Env) error {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k, err := m.deps.OpenKernel()
	if err != nil {
		return err
	}
	if c, ok := k.(interface{ Close() }); ok {
		defer c.Close()
	}
	r := &runner{
		m: m, env: env, log: log,
		mgr:        route.NewManager(k, RouteConfig(m.cfg)),
		probes:     make(chan probeMsg, 256),
		results:    make(chan Input, 8),
		resolvedCh: make(chan resolved, 2),
	}
	now := time.Now()
	r.st = NewState(ParamsFrom(m.cfg), now)
	if env.Last.Seq != 0 {
		r.st = Restore(r.st, env.Last.State)
	}
	loopCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		r.wg.Wait()
	}()
	err = r.loop(loopCtx)
	cancel()
	r.wg.Wait()
	if ctx.Err() != nil && err == nil {
		return r.stop(ctx)
	}
	return err
}

// sources are the loop's channels besides the runner's own.
type sources struct {
	updates  <-chan route.Update // kernel changes (nil: closed)
	cmds     <-chan event.Event  // the journal's live stream (nil: none)
	carrier  [2]<-chan bool      // each WAN's carrier watch
	reassert <-chan time.Time    // routes to check again (nil: none due)
	timer    *time.Timer         // Decide's next deadline, or a stream retry
	resync   *time.Ticker        // the safety net
}

// loop runs the monitor until ctx ends: start, then one step per
// observation, each followed by drain (decide and act).
func (r *runner) loop(ctx context.Context) error {
	src := &sources{updates: r.m.deps.Updates(ctx, r.log)}
	if r.env.Watch != nil {
		src.cmds = r.env.Watch(ctx)
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	src.timer = time.NewTimer(time.Hour)
	defer src.timer.Stop()
	src.resync = time.NewTicker(resyncEvery)
	defer src.resync.Stop()
	for i := range src.carrier {
		src.carrier[i] = r.m.deps.Carrier(ctx, r.m.wanIf(i))
	}
	for {
		r.manageStreams(ctx)
		src.timer.Reset(r.untilNext())
		select {
		case <-ctx.Done():
			return nil
		case f := <-r.env.Liveness: // the agent's watchdog: this loop runs
			f()
		case <-src.timer.C:
			r.push(Tick{})
		case p := <-r.probes:
			r.onProbes(p)
		case u, ok := <-src.updates:
			r.onUpdate(src, u, ok)
		case <-src.reassert:
			src.reassert = nil
			r.reassert()
			r.checkShadowed()
		case c := <-src.carrier[0]:
			r.onCarrier(0, c)
		case c := <-src.carrier[1]:
			r.onCarrier(1, c)
		case <-src.resync.C:
			r.resync()
		case ev, ok := <-src.cmds:
			if !ok {
				src.cmds = nil
			} else {
				r.onCommand(ev)
			}
		case in := <-r.results:
			r.push(in)
		case res := <-r.resolvedCh:
			r.onResolved(res)
		}
		if err := r.drain(ctx); err != nil {
			return err
		}
	}
}

// start reads the links, sets up the tables and rules, adopts the default
// route that is there, starts resolving the probe targets, and decides.
func (r *runner) start(ctx context.Context) error {
	for i := range r.links {
		r.refreshLink(i)
	}
	active, err := r.mgr.Active()
	if err != nil {
		r.push(Fault{WAN: -1, Msg: fmt.Sprintf("reading routes: %v", err)})
	}
	routeText := ""
	if active >= 0 {
		if owned, _, err := r.mgr.Defaults(); err == nil {
			for _, o := range owned {
				if o.Dev == r.m.cfg.Primary.If && active == 0 || o.Dev == r.m.cfg.Standby.If && active == 1 {
					routeText = o.String()
				}
			}
		}
	}
	r.push(Adopted{Active: active, Route: routeText})
	r.resolveTargets(ctx)
	r.checkShadowed()
	return r.drain(ctx)
}

// untilNext is the wait until Decide's next deadline or a failed stream's
// retry, whichever comes first (an hour when there is none).
func (r *runner) untilNext() time.Duration {
	next := Next(r.st, time.Now())
	for i := range r.streams {
		if t := r.streams[i].retry; t.After(time.Now()) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if next.IsZero() {
		return time.Hour
	}
	return max(time.Until(next), time.Millisecond)
}

// onProbes takes probe outcome p and every outcome already queued before
// deciding further.
func (r *runner) onProbes(p probeMsg) {
	r.onProbe(p)
	for {
		select {
		case p := <-r.probes:
			r.onProbe(p)
		default:
			return
		}
	}
}

// onCarrier takes WAN i's carrier as watched: only a change in a known
// link's carrier matters here.
func (r *runner) onCarrier(i int, c bool) {
	if r.links[i].Index != 0 && c != r.links[i].Carrier {
		r.refreshLink(i)
	}
}

// resync re-reads the links and re-asserts the routes (the safety net for
// missed notifications).
func (r *runner) resync() {
	for i := range r.links {
		r.refreshLink(i)
	}
	r.reassert()
	r.checkShadowed()
}

func (r *runner) push(in Input) { r.queue = append(r.queue, in) }

// drain runs Decide over the queued inputs and carries out the effects;
// effects that answer synchronously queue more inputs.
func (r *runner) drain(ctx context.Context) error {
	for len(r.queue) > 0 {
		in := r.queue[0]
		r.queue = r.queue[1:]
		var effects []Effect
		r.st, effects = Decide(r.st, in, time.Now())
		for _, e := range effects {
			if err := r.do(ctx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) do(ctx context.Context, e Effect) error {
	switch e := e.(type) {
	case Emit:
		if _, err := r.env.Emit(ctx, e.Event); err != nil {
			return fmt.Errorf("journal %s: %w", e.Event.Kind, err)
		}
	case Switch:
		start := time.Now()
		err := r.mgr.SetDefault(e.To, r.links[e.To])
		r.log.Debug("route switch", "to", role(e.To), "reason", e.Reason, "took", time.Since(start), "err", err)
		r.push(SwitchDone{To: e.To, Err: err})
	case Flush:
		n, err := r.mgr.FlushConntrack(e.Addr)
		if err != nil {
			r.push(Fault{WAN: -1, Msg: fmt.Sprintf("deleting conntrack entries of %s: %v", e.Addr, err)})
		}
		r.log.Debug("conntrack entries deleted", "addr", e.Addr, "count", n)
	case PostPing:
		r.postPing(ctx, e)
	}
	return nil
}

// refreshLink reads WAN i's interface, re-applies its table and rules, and
// feeds the result to Decide.
func (r *runner) refreshLink(i int) {
	l, err := r.mgr.Link(i)
	if err != nil {
		r.push(Fault{WAN: i, Msg: fmt.Sprintf("reading interface: %v", err)})
		return
	}
	r.links[i] = l
	info := LinkInfo{WAN: i, IP: l.IPv4().Prefix.Addr(), Carrier: l.Carrier}
	if p := r.mgr.Config().Usable(i, l); p != nil {
		info.Problem = p.Error()
	}
	// Decide first: a carrier loss switches before anything else is done.
	r.push(info)
	if err := r.mgr.SyncPolicy(i, l); err != nil && !errors.Is(err, route.ErrNoRoute) {
		r.push(Fault{WAN: -1, Msg: fmt.Sprintf("applying the routing table and rules of %s: %v", r.m.wanIf(i), err)})
	}
}

func (m *Monitor) wanIf(i int) string {
	if i == 0 {
		return m.cfg.Primary.If
	}
	return m.cfg.Standby.If
}

// onUpdate takes a kernel change (ok false: the stream closed): the links
// it concerns are read again, and the routes re-asserted a little later
// (reassertDelay coalesces bursts) when it concerns them.
func (r *runner) onUpdate(src *sources, u route.Update, ok bool) {
	if !ok {
		src.updates = nil
		return
	}
	if r.kernelChanged(u) && src.reassert == nil {
		src.reassert = time.After(reassertDelay)
	}
}

// kernelChanged handles a kernel change; it reports whether routes should
// be re-asserted.
func (r *runner) kernelChanged(u route.Update) bool {
	switch u.Kind {
	case route.Resync:
		for i := range r.links {
			r.refreshLink(i)
		}
		return true
	case route.LinkChanged, route.AddrChanged:
		for i := range r.links {
			if u.LinkName == r.m.wanIf(i) || (u.LinkIndex != 0 && u.LinkIndex == r.links[i].Index) || r.links[i].Index == 0 {
				r.refreshLink(i)
			}
		}
		return true
	case route.RuleChanged:
		return true
	case route.RouteChanged:
		t := u.Route.Table
		cfg := r.mgr.Config()
		return (t == route.MainTable && u.Route.IsDefault()) || t == cfg.Table(0) || t == cfg.Table(1)
	}
	return false
}

// reassert puts back imon's routes if something else changed them.
func (r *runner) reassert() {
	for i := range r.links {
		if err := r.mgr.SyncPolicy(i, r.links[i]); err != nil && !errors.Is(err, route.ErrNoRoute) {
			r.push(Fault{WAN: -1, Msg: fmt.Sprintf("applying the routing table and rules of %s: %v", r.m.wanIf(i), err)})
		}
	}
	a := r.st.Active
	if a < 0 || r.st.Pending >= 0 {
		return
	}
	cur, err := r.mgr.Active()
	if err != nil {
		return
	}
	owned, _, _ := r.mgr.Defaults()
	if cur == a && len(owned) == 1 {
		return
	}
	if err := r.mgr.SetDefault(a, r.links[a]); err != nil {
		r.push(Fault{WAN: -1, Msg: fmt.Sprintf("restoring the default route via %s: %v", r.m.wanIf(a), err)})
		return
	}
	r.log.Info("default route re-asserted", "wan", role(a))
	r.push(Fault{WAN: -1, Msg: ""})
}

// checkShadowed journals a foreign default route that takes precedence.
func (r *runner) checkShadowed() {
	sh, err := r.mgr.Shadowed()
	if err != nil || len(sh) == 0 {
		return
	}
	r.push(Fault{WAN: -1, Msg: fmt.Sprintf("default route %s has a lower metric than imon's (%d) and takes precedence; remove it (dhcpcd: nogateway) or give imon a metric below %d", sh[0], r.m.cfg.Metric, sh[0].Metric)})
}

func (r *runner) onCommand(ev event.Event) {
	if ev.Kind != event.KindFailoverCommand {
		return
	}
	var d struct {
		Mode   string `json:"mode"`
		Source string `json:"source"`
	}
	if err := ev.DecodeData(&d); err != nil {
		r.log.Debug("bad failover-command", "err", err)
		return
	}
	mode, err := command.ParseMode(d.Mode)
	if err != nil {
		r.log.Debug("bad failover-command", "err", err)
		return
	}
	r.push(Command{Mode: mode, Source: d.Source, Seq: ev.Seq})
}

func (r *runner) onProbe(p probeMsg) {
	if p.gen != r.streams[p.wan].gen {
		return // an old stream's outcome
	}
	if p.err != nil {
		r.streams[p.wan].cancel()
		r.streams[p.wan] = stream{gen: -1, retry: time.Now().Add(restartDelay)}
		r.push(Fault{WAN: p.wan, Msg: fmt.Sprintf("probing: %v", p.err)})
		return
	}
	r.push(ProbeResult{WAN: p.wan, Outcome: p.o})
}

// manageStreams starts, restarts or stops each WAN's probe stream so that
// it runs exactly when the WAN has an address, with that address as source.
func (r *runner) manageStreams(ctx context.Context) {
	// (A failed stream waits for its retry time; see onProbe.)
	for i := range r.streams {
		s := &r.streams[i]
		src := r.links[i].IPv4().Prefix.Addr()
		want := src.IsValid() && r.links[i].AdminUp
		running := s.cancel != nil
		if running && (!want || s.source != src || s.target != r.target(i)) {
			s.cancel()
			*s = stream{gen: -1}
			running = false
		}
		if running || !want || time.Now().Before(s.retry) {
			continue
		}
		target := r.target(i)
		r.gen++
		sctx, cancel := context.WithCancel(ctx)
		*s = stream{gen: r.gen, cancel: cancel, source: src, target: target}
		r.push(StreamReset{WAN: i})
		// Recheck: the sixth probe of a dead WAN is seen unanswered half a
		// tick after the first loss settles, not a tick (docs/failover.md).
		opt := probe.StreamOptions{Spacing: r.st.p.Spacing, Wait: r.st.p.Wait, Source: src, Mark: r.mgr.Config().Mark(i), Recheck: r.st.p.DownAfter}
		r.wg.Add(1)
		go r.runStream(sctx, i, r.gen, target, opt)
	}
}

// target returns WAN i's probe address: *-ping (an IP, or a name once
// resolved) or else the gateway.
func (r *runner) target(i int) netip.Addr {
	w := r.st.p.WANs[i]
	if w.Target == "" {
		return w.GW
	}
	if a, err := netip.ParseAddr(w.Target); err == nil {
		return a
	}
	if r.targets[i].IsValid() {
		return r.targets[i]
	}
	return w.GW
}

// resolved is the outcome of one resolution of WAN wan's probe target.
type resolved struct {
	wan  int
	addr netip.Addr
	err  error
}

// resolveTargets resolves probe target names in the background (never in
// the loop, since DNS is often dead exactly when a WAN is): every 30 s until
// it works, then every 10 minutes.
func (r *runner) resolveTargets(ctx context.Context) {
	for i, w := range r.st.p.WANs {
		if w.Target == "" {
			continue
		}
		if _, err := netip.ParseAddr(w.Target); err == nil {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
				a, err := r.m.deps.Resolver.Resolve(rctx, w.Target)
				cancel()
				select {
				case r.resolvedCh <- resolved{wan: i, addr: a, err: err}:
				case <-ctx.Done():
					return
				}
				next := 10 * time.Minute
				if err != nil {
					next = 30 * time.Second
				}
				select {
				case <-time.After(next):
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

func (r *runner) onResolved(res resolved) {
	w := r.st.p.WANs[res.wan]
	if res.err != nil {
		if !r.targets[res.wan].IsValid() && !r.resolveFaulted[res.wan] {
			r.resolveFaulted[res.wan] = true
			r.push(Fault{WAN: res.wan, Msg: fmt.Sprintf("cannot resolve probe target %s (%v); probing the gateway %s until it resolves", w.Target, res.err, w.GW)})
		}
		return
	}
	r.targets[res.wan] = res.addr
}

func (r *runner) runStream(ctx context.Context, wan, gen int, target netip.Addr, opt probe.StreamOptions) {
	defer r.wg.Done()
	send := func(p probeMsg) bool {
		select {
		case r.probes <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	ch, err := r.m.deps.Streamer.Stream(ctx, target, opt)
	if err != nil {
		send(probeMsg{wan: wan, gen: gen, err: err})
		return
	}
	for o := range ch {
		if !send(probeMsg{wan: wan, gen: gen, o: o}) {
			break
		}
	}
	for range ch {
		// Drain until the stream closes it (after ctx ends).
	}
}

// postPing checks the post-ping target through WAN e.WAN in the
// background and answers with PostPingDone.
func (r *runner) postPing(ctx context.Context, e PostPing) {
	opt := probe.PingOptions{
		Count: max(r.m.cfg.PingCount, 1), Spacing: time.Second, Wait: r.st.p.Wait,
		Source: r.links[e.WAN].IPv4().Prefix.Addr(), Mark: r.mgr.Config().Mark(e.WAN),
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ok := false
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		addr, err := r.m.deps.Resolver.Resolve(rctx, e.Target)
		cancel()
		if err == nil {
			res, err := r.m.deps.Pinger.Ping(ctx, addr, opt)
			ok = err == nil && res.Alive()
		}
		select {
		case r.results <- PostPingDone{WAN: e.WAN, Target: e.Target, OK: ok}:
		case <-ctx.Done():
		}
	}()
}

// stop runs after ctx ended: it removes the probe rules and tables, leaves
// the default route in place, and journals it.
func (r *runner) stop(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), stopTimeout)
	defer cancel()
	n, err := r.mgr.Cleanup()
	msg := "Stop Network Failover Monitor"
	data := map[string]any{"rules_and_routes_removed": n, "active": role(r.st.Active)}
	if r.st.Active >= 0 {
		msg += fmt.Sprintf(": default route via %s Network %s left in place", ename(r.st.Active), r.st.devnam(r.st.Active))
	}
	ev := event.New(event.MonitorFailover, KindStopped, msg, data).WithState(r.st.Snapshot(time.Now()))
	if err != nil {
		data["error"] = err.Error()
		ev = event.New(event.MonitorFailover, KindStopped, msg, data).WithState(r.st.Snapshot(time.Now())).WithLevel(event.LevelWarn)
	}
	if _, err := r.env.Emit(ctx, ev); err != nil {
		return fmt.Errorf("journal %s: %w", KindStopped, err)
	}
	return nil
}
