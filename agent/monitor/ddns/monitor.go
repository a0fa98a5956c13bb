package ddns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"imon/agent/monitor"
	"imon/agent/probe/extip"
	"imon/config"
	"imon/event"
	"imon/internal/backoff"
)

// Event kinds of the ddns monitor that are not action-script commands (the
// action kinds ddns-ip-update, ddns-ip6-update and ddns-no-update are in
// package event).
const (
	// KindProviderFault: a provider's answer was rejected. Level warn, data
	// {provider, operator, family, reason, answer}.
	KindProviderFault = "ddns-provider-fault"
	// KindCGNAT: the WAN interface gained or lost a shared (CGNAT)
	// address. Data {interface, cgnat, address}.
	KindCGNAT = "ddns-cgnat"
	// KindStatus: provider health or the consensus changed without an
	// address change; rate-limited. Data {consensus, consensus6, ok,
	// providers}.
	KindStatus = "ddns-status"
)

// Defaults for zero config values.
const (
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 2 * time.Second
	DefaultQuorum   = 2
)

const (
	// maxBackoff caps the backoff of a provider that fails while others
	// answer: a broken or rate-limiting service is asked at most every
	// five minutes.
	maxBackoff = 5 * time.Minute
	// outageBackoff caps the backoff when no provider of the family
	// answered: the line is probably down, not the providers, and a
	// recovered line should be seen within a minute even without the
	// updown or failover monitors to trigger a re-check.
	outageBackoff = time.Minute
	// statusMinInterval rate-limits ddns-status events: a flapping
	// provider produces at most one a minute.
	statusMinInterval = time.Minute
)

// Messages, in the original imon's wording where it had one.
const (
	msgNoUpdate = "%% Unable to obtain External IP Address"
)

// Deps are the seams of the ddns monitor. Every field is required:
// cmd/imon injects the real ones (extip.New, InterfaceAddrs), tests inject
// fakes.
type Deps struct {
	// NewQuerier builds each provider's querier.
	NewQuerier func(spec extip.Spec) (extip.Querier, error)
	// InterfaceAddrs lists the addresses of a network interface (the
	// CGNAT check of the interface setting).
	InterfaceAddrs func(name string) ([]netip.Addr, error)
}

// Monitor is the ddns monitor: it tracks the external address the internet
// sees, from several providers in parallel, and reports a change only when
// independent operators agree (see the package doc).
type Monitor struct {
	interval     time.Duration
	timeout      time.Duration
	allowPrivate bool
	iface        string
	provs        []prov
	families     []extip.Family
	quorum       map[extip.Family]int
	ifAddrs      func(string) ([]netip.Addr, error)
}

type prov struct {
	spec     extip.Spec
	operator string
	family   extip.Family
	fallback bool
	q        extip.Querier
}

var _ monitor.Monitor = (*Monitor)(nil)

// New builds the monitor from its config section. Providers default to
// config.DefaultDDNSProviders, the interval to DefaultInterval, the timeout
// to DefaultTimeout and the quorum to DefaultQuorum. It fails on a bad
// provider (naming it) and when a seam of deps is missing.
func New(cfg config.DDNS, deps Deps) (*Monitor, error) {
	if err := monitor.CheckDeps(deps); err != nil {
		return nil, err
	}
	m := &Monitor{
		interval:     cfg.Interval,
		timeout:      cfg.Timeout,
		allowPrivate: cfg.AllowPrivate,
		iface:        cfg.Interface,
		quorum:       map[extip.Family]int{},
		ifAddrs:      deps.InterfaceAddrs,
	}
	if m.interval <= 0 {
		m.interval = DefaultInterval
	}
	if m.timeout <= 0 {
		m.timeout = DefaultTimeout
	}
	raw := cfg.Providers
	if len(raw) == 0 {
		raw = config.DefaultDDNSProviders
	}
	var specs []extip.Spec
	var errs []error
	for _, s := range raw {
		sp, err := extip.Parse(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if slices.ContainsFunc(specs, func(o extip.Spec) bool { return o.Raw == sp.Raw }) {
			errs = append(errs, fmt.Errorf("provider %q listed twice", s))
			continue
		}
		specs = append(specs, sp)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ddns providers: %w", err)
	}
	ops := extip.Operators(specs)
	hasDNS := map[extip.Family]bool{}
	for _, s := range specs {
		if s.IsDNS() {
			hasDNS[s.Family()] = true
		}
	}
	opsOf := map[extip.Family][]string{}
	for i, s := range specs {
		q, err := deps.NewQuerier(s)
		if err != nil {
			return nil, fmt.Errorf("ddns provider %q: %w", s.Raw, err)
		}
		f := s.Family()
		m.provs = append(m.provs, prov{spec: s, operator: ops[i], family: f, fallback: !s.IsDNS() && hasDNS[f], q: q})
		if !slices.Contains(m.families, f) {
			m.families = append(m.families, f)
		}
		if !slices.Contains(opsOf[f], ops[i]) {
			opsOf[f] = append(opsOf[f], ops[i])
		}
	}
	slices.Sort(m.families) // IPv4 first
	for _, f := range m.families {
		m.quorum[f] = EffectiveQuorum(cfg.Quorum, len(opsOf[f]))
	}
	return m, nil
}

// Name returns "ddns".
func (m *Monitor) Name() string { return event.MonitorDDNS }

// health is one provider's health during a run.
type health struct {
	status       string
	answer       netip.Addr
	lastError    string
	failures     int
	backoffUntil time.Time
	retryAfter   time.Duration
	fault        *extip.FaultError // the last fault
	faultReason  string            // reason of the last journaled fault, "" once it answers well
}

// run is the state of one Run.
type run struct {
	env        monitor.Env
	log        *slog.Logger
	tracks     map[extip.Family]Track
	health     []health
	cgnat      bool
	cgnatAddr  string
	lastSig    string
	lastStatus time.Time
}

// Run tracks the external address until ctx ends. It restores the last
// confirmed address from env.Last, so that a restart with an unchanged
// address reports nothing; runs a round at once and then at each tick of
// interval (rounds never overlap: a slow round delays the next); and
// re-checks at once, with backoffs cleared, when the failover monitor
// switches WAN (failover-primary, failover-standby) or the updown monitor
// sees the line come back (updown-online).
func (m *Monitor) Run(ctx context.Context, env monitor.Env) error {
	r := m.restore(env)
	recheck, stopWatch := watchRechecks(ctx, env.Watch)
	defer stopWatch()
	// On the probe engine's grid in imon (env.Every): the round starts on
	// the tick of failover's probes and shares their wakeup.
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	tick := env.Ticks(tctx, m.interval)
	for {
		if err := m.round(ctx, r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// A tick that came while the round ran is kept: a round slower
		// than the interval is followed by the next at once.
		if !r.wait(ctx, tick, recheck) {
			return nil
		}
	}
}

// wait answers the agent watchdog's liveness requests until the next
// round is due (true): at the timer, or at once on a re-check, with the
// backoffs cleared. It returns false when ctx ends.
func (r *run) wait(ctx context.Context, timer <-chan time.Time, recheck <-chan struct{}) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case f := <-r.env.Liveness: // the agent's watchdog: this loop runs
			f()
		case <-timer:
			return true
		case <-recheck:
			r.log.Debug("re-check after a network change")
			for i := range r.health {
				r.health[i].backoffUntil = time.Time{}
				r.health[i].retryAfter = 0
			}
			return true
		}
	}
}

// watchRechecks follows the journal (when watch is set) and signals on the
// returned channel, coalesced, each event that calls for a re-check. stop
// waits for the follower to end, after ctx ends.
func watchRechecks(ctx context.Context, watch func(context.Context) <-chan event.Event) (recheck <-chan struct{}, stop func()) {
	if watch == nil {
		return nil, func() {}
	}
	ch := watch(ctx)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-ch:
				if !ok {
					return
				}
				if triggersRecheck(ev) {
					select {
					case out <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return out, func() { <-done }
}

func triggersRecheck(ev event.Event) bool {
	switch ev.Kind {
	case event.KindFailoverPrimary, event.KindFailoverStandby, event.KindUpdownOnline:
		return true
	}
	return false
}

// restore rebuilds the run's state from the last journaled ddns state.
func (m *Monitor) restore(env monitor.Env) *run {
	r := &run{env: env, log: env.Logger, tracks: map[extip.Family]Track{}, health: make([]health, len(m.provs))}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for i := range r.health {
		r.health[i].status = statusIdle
	}
	if env.Last.Seq == 0 || len(env.Last.State) == 0 {
		r.lastSig = m.state(r).signature()
		return r
	}
	var st State
	if err := env.Last.DecodeState(&st); err != nil {
		r.log.Warn("cannot restore the last ddns state; starting without a known address", "err", err)
		r.lastSig = m.state(r).signature()
		return r
	}
	restoreTrack := func(f extip.Family, ip, prev string, changed, noAnswer *time.Time, agreed []string, outcome Outcome) {
		var t Track
		if a, err := netip.ParseAddr(ip); err == nil {
			t.Addr = a
		}
		if a, err := netip.ParseAddr(prev); err == nil {
			t.Previous = a
		}
		if changed != nil {
			t.ChangedAt = *changed
		}
		if noAnswer != nil {
			t.NoAnswer, t.NoAnswerSince = true, *noAnswer
		}
		t.Agreed, t.Outcome = agreed, outcome
		r.tracks[f] = t
	}
	restoreTrack(extip.IPv4, st.IP, st.Previous, st.ChangedAt, st.NoAnswerSince, st.Agreed, st.Consensus)
	restoreTrack(extip.IPv6, st.IP6, st.Previous6, st.ChangedAt6, st.NoAnswerSince6, st.Agreed6, st.Consensus6)
	if m.iface != "" { // without an interface the CGNAT flag is not known
		r.cgnat, r.cgnatAddr = st.CGNAT, st.CGNATAddress
	}
	for i, p := range m.provs {
		for _, ps := range st.Providers {
			if ps.Name == p.spec.Raw && ps.Status != "" {
				r.health[i].status = ps.Status
				if a, err := netip.ParseAddr(ps.Answer); err == nil {
					r.health[i].answer = a
				}
				r.health[i].lastError = ps.LastError
			}
		}
	}
	r.lastSig = m.state(r).signature()
	r.lastStatus = env.Last.Time
	return r
}

// state renders the run's state.
func (m *Monitor) state(r *run) State {
	st := State{CGNAT: r.cgnat, CGNATAddress: r.cgnatAddr, Agreed: []string{}, Providers: []ProviderState{}}
	if t, ok := r.tracks[extip.IPv4]; ok {
		st.IP, st.ChangedAt, st.Consensus, st.NoAnswerSince = addrString(t.Addr), timePtr(t.ChangedAt), t.Outcome, nil
		st.Previous = addrString(t.Previous)
		if t.Agreed != nil {
			st.Agreed = t.Agreed
		}
		if t.NoAnswer {
			st.NoAnswerSince = timePtr(t.NoAnswerSince)
		}
	}
	if slices.Contains(m.families, extip.IPv6) {
		t := r.tracks[extip.IPv6]
		st.IP6, st.ChangedAt6, st.Consensus6 = addrString(t.Addr), timePtr(t.ChangedAt), t.Outcome
		st.Previous6 = addrString(t.Previous)
		st.Agreed6 = t.Agreed
		if st.Agreed6 == nil {
			st.Agreed6 = []string{}
		}
		if t.NoAnswer {
			st.NoAnswerSince6 = timePtr(t.NoAnswerSince)
		}
	}
	for i, p := range m.provs {
		h := r.health[i]
		st.Providers = append(st.Providers, ProviderState{
			Name:         p.spec.Raw,
			Operator:     p.operator,
			Family:       p.family.String(),
			Fallback:     p.fallback,
			OK:           h.status == statusOK,
			Status:       h.status,
			Answer:       addrString(h.answer),
			LastError:    h.lastError,
			Failures:     h.failures,
			BackoffUntil: timePtr(h.backoffUntil),
		})
	}
	return st
}

// emit journals ev with the current state attached.
func (m *Monitor) emit(ctx context.Context, r *run, ev event.Event) error {
	st := m.state(r)
	ev.Monitor = event.MonitorDDNS
	if _, err := r.env.Emit(ctx, ev.WithState(st)); err != nil {
		return fmt.Errorf("emit %s: %w", ev.Kind, err)
	}
	r.lastSig = st.signature()
	return nil
}

type result struct {
	i   int
	raw string
	err error
}

// decisionGrace is how long a round waits for the outstanding answers once
// the consensus can no longer change, before acting on it: long enough for
// healthy providers to answer (so the event's state shows them), much
// shorter than the timeout a blackholed provider would cost.
func (m *Monitor) decisionGrace() time.Duration { return m.timeout / 10 }

// round asks the providers once and acts on the consensus of each family.
// Queries run in parallel, each with its own timeout; the HTTP fallback
// starts as soon as the DNS answers cannot reach the quorum. A family's
// decision is acted on when no outstanding answer can change it (after
// decisionGrace) or when all answers are in, so a round takes at most the
// slowest needed timeout, twice when the fallback is needed.
//
// It reads as: ask (launch), collect answers and decide as they come
// (record, decide), act on the final decisions (apply), then back off the
// providers that failed and report (finish).
func (m *Monitor) round(ctx context.Context, r *run) error {
	if err := m.checkCGNAT(ctx, r); err != nil {
		return err
	}
	rs := m.newRound(ctx, r)
	// Every launched query sends exactly one result: wait for them all, so
	// that no query outlives its round, whatever happens below.
	defer rs.drain()
	for i, p := range m.provs {
		if !p.fallback && rs.eligible(i) {
			rs.launch(i)
		}
	}
	rs.decide()
	for len(rs.pending) > 0 {
		select {
		case res := <-rs.results:
			delete(rs.pending, res.i)
			if ctx.Err() != nil {
				continue // shutting down: not the provider's fault
			}
			rs.record(res)
			rs.decide()
		case <-rs.grace:
			rs.grace = nil
			if err := rs.apply(false); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return rs.finish()
}

// roundState is one round of asking the providers: what was asked, what
// is still outstanding, the votes per family and what was decided.
type roundState struct {
	m       *Monitor
	r       *run
	ctx     context.Context
	now     time.Time
	results chan result
	pending map[int]bool // launched, no result yet
	queried map[int]bool // launched this round
	votes   map[extip.Family][]Vote
	decided map[extip.Family]bool // final, acted on or about to be
	applied map[extip.Family]bool
	// fellBack: the family's HTTP fallback providers were launched.
	fellBack map[extip.Family]bool
	answered map[extip.Family]bool // some provider of the family answered
	faults   []int                 // providers with a new fault this round
	grace    <-chan time.Time      // decisionGrace after the first final decision
}

func (m *Monitor) newRound(ctx context.Context, r *run) *roundState {
	return &roundState{
		m: m, r: r, ctx: ctx, now: time.Now(),
		results:  make(chan result, len(m.provs)),
		pending:  map[int]bool{},
		queried:  map[int]bool{},
		votes:    map[extip.Family][]Vote{},
		decided:  map[extip.Family]bool{},
		applied:  map[extip.Family]bool{},
		fellBack: map[extip.Family]bool{},
		answered: map[extip.Family]bool{},
	}
}

// eligible reports whether provider i is out of its backoff.
func (rs *roundState) eligible(i int) bool { return !rs.now.Before(rs.r.health[i].backoffUntil) }

// launch queries provider i in its own goroutine; its result arrives on
// rs.results.
func (rs *roundState) launch(i int) {
	rs.pending[i], rs.queried[i] = true, true
	q, timeout := rs.m.provs[i].q, rs.m.timeout
	go func() {
		qctx, cancel := context.WithTimeout(rs.ctx, timeout)
		defer cancel()
		raw, err := q.Query(qctx)
		rs.results <- result{i: i, raw: raw, err: err}
	}()
}

// drain waits for every outstanding query.
func (rs *roundState) drain() {
	for range rs.pending {
		<-rs.results
	}
}

// pendingOps returns the operators of family f's outstanding queries.
func (rs *roundState) pendingOps(f extip.Family) []string {
	var ops []string
	for i := range rs.pending {
		if rs.m.provs[i].family == f {
			ops = append(ops, rs.m.provs[i].operator)
		}
	}
	return ops
}

// consensus is family f's consensus from the votes so far.
func (rs *roundState) consensus(f extip.Family) Consensus {
	return Decide(rs.votes[f], rs.pendingOps(f), rs.m.quorum[f])
}

// record takes one provider's result: a vote, or a failure or fault on
// the provider's health.
func (rs *roundState) record(res result) {
	p := rs.m.provs[res.i]
	h := &rs.r.health[res.i]
	err := res.err
	var addr netip.Addr
	if err == nil {
		addr, err = extip.ParseAnswer(res.raw, p.family, rs.m.allowPrivate)
	}
	if err == nil {
		*h = health{status: statusOK, answer: addr}
		rs.answered[p.family] = true
		rs.votes[p.family] = append(rs.votes[p.family], Vote{Provider: p.spec.Raw, Operator: p.operator, Addr: addr})
		return
	}
	h.failures++
	h.lastError = err.Error()
	h.retryAfter = 0
	var se *extip.StatusError
	if errors.As(err, &se) {
		h.retryAfter = se.RetryAfter
	}
	if f, ok := extip.IsFault(err); ok {
		h.status, h.fault = statusFault, f
		if f.Reason != h.faultReason {
			h.faultReason = f.Reason
			rs.faults = append(rs.faults, res.i)
		}
	} else {
		h.status = statusFailed
	}
	rs.r.log.Debug("provider failed", "provider", p.spec.Raw, "err", err)
}

// decide marks the families whose consensus became final (starting the
// grace period), and launches a family's fallback providers once its
// primary ones cannot reach the quorum any more.
func (rs *roundState) decide() {
	for _, f := range rs.m.families {
		if rs.decided[f] {
			continue
		}
		c := rs.consensus(f)
		if c.Outcome == Accepted && c.Final {
			rs.decided[f] = true
			if rs.grace == nil {
				rs.grace = time.After(rs.m.decisionGrace())
			}
			continue
		}
		if c.Hopeless && !rs.fellBack[f] {
			rs.fellBack[f] = true
			for i, p := range rs.m.provs {
				if p.fallback && p.family == f && rs.eligible(i) {
					rs.launch(i)
				}
			}
		}
	}
}

// apply acts on the families whose consensus is final, and at the end of
// the round (all true) on every family: every track is updated before the
// first event is journaled, so that each event carries the round's
// complete state.
func (rs *roundState) apply(all bool) error {
	var evs []event.Event
	for _, f := range rs.m.families {
		if (rs.decided[f] || all) && !rs.applied[f] {
			rs.applied[f] = true
			evs = append(evs, rs.m.observe(rs.r, f, rs.consensus(f), rs.now)...)
		}
	}
	for _, ev := range evs {
		if err := rs.m.emit(rs.ctx, rs.r, ev); err != nil {
			return err
		}
	}
	return nil
}

// finish backs off the providers that failed this round, acts on every
// family, and journals new faults and a changed status.
func (rs *roundState) finish() error {
	m, r := rs.m, rs.r
	for i := range m.provs {
		h := &r.health[i]
		if !rs.queried[i] || h.status == statusOK {
			continue
		}
		limit := maxBackoff
		if !rs.answered[m.provs[i].family] {
			limit = outageBackoff
		}
		h.backoffUntil = rs.now.Add(max(Backoff(h.failures, m.interval, limit), h.retryAfter))
	}
	if err := rs.apply(true); err != nil {
		return err
	}
	for _, i := range rs.faults {
		if err := m.emit(rs.ctx, r, m.faultEvent(i, r.health[i])); err != nil {
			return err
		}
	}
	if st := m.state(r); st.signature() != r.lastSig && rs.now.Sub(r.lastStatus) >= statusMinInterval {
		if err := m.emit(rs.ctx, r, statusEvent(st)); err != nil {
			return err
		}
		r.lastStatus = rs.now
	}
	return nil
}

// observe updates a family's track with the round's consensus and returns
// the events its decision calls for.
func (m *Monitor) observe(r *run, f extip.Family, c Consensus, now time.Time) []event.Event {
	t, d := r.tracks[f].Observe(c, m.quorum[f], now)
	r.tracks[f] = t
	if d.Change {
		old := "unknown"
		if d.Old.IsValid() {
			old = d.Old.String()
		}
		kind, what := event.KindDDNSIPUpdate, "External IP Address"
		if f == extip.IPv6 {
			kind, what = event.KindDDNSIP6Update, "External IPv6 Address"
		}
		ev := event.New(event.MonitorDDNS, kind, fmt.Sprintf("%s changed from %s to %s", what, old, d.New),
			map[string]any{"ip": d.New.String(), "old": old, "family": f.String(), "agreed": c.Agreed, "operators": c.Operators}).
			WithArgs(d.New.String(), old)
		return []event.Event{ev}
	}
	if d.NoUpdate {
		msg := msgNoUpdate
		if f == extip.IPv6 {
			msg = "%% Unable to obtain External IPv6 Address"
		}
		var errs []map[string]string
		for i, p := range m.provs {
			if p.family == f {
				errs = append(errs, map[string]string{"provider": p.spec.Raw, "error": r.health[i].lastError})
			}
		}
		ev := event.New(event.MonitorDDNS, event.KindDDNSNoUpdate, msg,
			map[string]any{"family": f.String(), "providers": errs}).WithLevel(event.LevelWarn)
		return []event.Event{ev}
	}
	if d.Recovered {
		r.log.Debug("external address obtained again", "family", f.String())
	}
	return nil
}

func (m *Monitor) faultEvent(i int, h health) event.Event {
	p := m.provs[i]
	reason, answer := h.lastError, ""
	if h.fault != nil {
		reason, answer = h.fault.Reason, h.fault.Answer
	}
	return event.New(event.MonitorDDNS, KindProviderFault,
		fmt.Sprintf("Provider %s (%s) answer rejected: %s", p.spec.Raw, p.operator, h.lastError),
		map[string]any{"provider": p.spec.Raw, "operator": p.operator, "family": p.family.String(), "reason": reason, "answer": answer}).
		WithLevel(event.LevelWarn)
}

func statusEvent(st State) event.Event {
	ok := 0
	for _, p := range st.Providers {
		if p.OK {
			ok++
		}
	}
	msg := fmt.Sprintf("External IP providers: %d of %d ok, consensus %s", ok, len(st.Providers), orNone(st.Consensus))
	data := map[string]any{"consensus": st.Consensus, "ok": ok, "providers": len(st.Providers)}
	if st.Consensus6 != "" {
		msg += fmt.Sprintf(", IPv6 consensus %s", st.Consensus6)
		data["consensus6"] = st.Consensus6
	}
	return event.New(event.MonitorDDNS, KindStatus, msg, data)
}

func orNone(o Outcome) string {
	if o == "" {
		return "none"
	}
	return string(o)
}

// Backoff is how long a provider is skipped after its n-th consecutive
// failure: the interval doubled for each failure after the first (so the
// first failure costs no round), capped at limit.
func Backoff(n int, interval, limit time.Duration) time.Duration {
	return backoff.Policy{Min: interval, Max: limit}.Delay(n)
}

// checkCGNAT looks for a shared address on the WAN interface and journals
// a change.
func (m *Monitor) checkCGNAT(ctx context.Context, r *run) error {
	if m.iface == "" {
		return nil
	}
	addrs, err := m.ifAddrs(m.iface)
	if err != nil {
		r.log.Debug("cannot read the WAN interface's addresses", "interface", m.iface, "err", err)
		return nil
	}
	a, cg := CGNATAddress(addrs)
	if cg == r.cgnat && addrString(a) == r.cgnatAddr {
		return nil
	}
	r.cgnat, r.cgnatAddr = cg, addrString(a)
	msg := fmt.Sprintf("Interface %s has no shared address: not behind CGNAT", m.iface)
	if cg {
		msg = fmt.Sprintf("Interface %s has CGNAT address %s: the line is behind carrier-grade NAT, inbound connections will not arrive", m.iface, a)
	}
	return m.emit(ctx, r, event.New(event.MonitorDDNS, KindCGNAT, msg,
		map[string]any{"interface": m.iface, "cgnat": cg, "address": addrString(a)}))
}

var cgnatPrefix = netip.MustParsePrefix("100.64.0.0/10")

// CGNATAddress returns the first shared address (100.64.0.0/10, RFC 6598)
// among addrs.
func CGNATAddress(addrs []netip.Addr) (netip.Addr, bool) {
	for _, a := range addrs {
		if cgnatPrefix.Contains(a.Unmap()) {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// InterfaceAddrs lists the addresses of the network interface name (in the
// calling thread's network namespace): the default Options.InterfaceAddrs.
func InterfaceAddrs(name string) ([]netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("addresses of %q: %w", name, err)
	}
	var out []netip.Addr
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}
