package updown

import (
	"net/netip"
	"strings"
	"time"

	"imon/agent/monitor"
	"imon/agent/probe"
	"imon/event"
)

// Params are the settings the decision logic needs.
type Params struct {
	// Target is monitorip as configured (used in messages and Args).
	Target string
	// PingCount is how many consecutive lost probes make the target
	// unreachable.
	PingCount int
	// DNSServer and DNSLookup enable the DNS check when both are set.
	DNSServer, DNSLookup string
	// DownInterval is the period of DNS rechecks while down or refuted.
	DownInterval time.Duration
	// AddPing are the addping entries; when set, every status change waits
	// for their results, which go into the event.
	AddPing []string
	// PathGrace is how long after the start of a run a probe that could
	// not be sent for want of a route (ENETUNREACH, EHOSTUNREACH) is not
	// counted as lost while no reply has been seen in the run: at boot the
	// default route comes later (failover still choosing, dhcpcd with
	// nogateway), and the path not being up yet is not an outage. Default
	// DefaultPathGrace.
	PathGrace time.Duration
}

// DefaultPathGrace is Params.PathGrace when unset (monitor.PathGrace).
const DefaultPathGrace = monitor.PathGrace

func (p Params) dnsCheck() bool { return p.DNSServer != "" && p.DNSLookup != "" }

// Output is what the Run loop must do after a Machine step.
type Output struct {
	// Events to journal, in order.
	Events []event.Event
	// DNSCheck, when not 0, asks for a DNS check whose result is reported
	// with this id to Machine.DNSResult.
	DNSCheck int
	// Addping, when not 0, asks for an addping round whose results are
	// reported with this id to Machine.AddpingResult.
	Addping int
}

// pending is an event waiting for its turn: events leave in the order they
// were decided, and a status change waits for its addping results.
type pending struct {
	ev        event.Event
	state     State
	data      map[string]any
	addpingID int // 0: ready
	msg       string
}

// Machine is the updown monitor's pure decision logic. Every method takes
// the current time and returns what to do; none performs I/O. Not safe for
// concurrent use.
//
// Rules (docs/updown-ping.md has the user's version):
//   - A reply makes the target up at once (an outage ends at the first
//     reply after it).
//   - PingCount consecutive lost probes (in Seq order, probe.Tracker) make
//     it unreachable. With the DNS check configured, a DNS query decides:
//     an answer refutes the outage (updown-refuted, once per streak, and
//     rechecked every DownInterval while the pings keep failing); no answer
//     declares it. Without the check it is declared at once.
//   - A declared outage starts at the last reply before it (or at the start
//     of this run if no reply was seen), but no earlier than the target was
//     last declared up (via DNS, the pings may have kept failing). While down, the DNS check is
//     repeated every DownInterval; an answer ends the outage (via "dns"),
//     like the original.
//   - The first determination without a restored state is an updown-status
//     event; transitions after it are updown-offline/updown-online.
type Machine struct {
	p  Params
	st State

	origin    time.Time // start of this run
	lastReply time.Time // newest reply of this run
	tr        probe.Tracker

	checking int       // DNS check in flight (0: none)
	refuted  bool      // pings failing, DNS answering
	dnsDue   time.Time // next DNS recheck (zero: none)

	resolveFailing bool
	nextID         int
	queue          []*pending
}

// NewMachine returns a machine for p; call Start before anything else.
func NewMachine(p Params) *Machine {
	if p.PingCount < 1 {
		p.PingCount = 1
	}
	if p.DownInterval <= 0 {
		p.DownInterval = time.Second
	}
	if p.PathGrace <= 0 {
		p.PathGrace = DefaultPathGrace
	}
	return &Machine{p: p, st: State{Target: p.Target, Status: StatusUnknown}}
}

// Start begins a run at now, continuing from last (the state journaled by
// a previous run; nil or another target's state means a fresh start).
//
// A restored "down" keeps its start time: no new updown-offline, and the
// updown-online at recovery measures from the original start. A restored
// "up" dates a new outage no earlier than now: what happened while the
// agent was not running is unknown.
func (m *Machine) Start(now time.Time, last *State) {
	m.origin = now
	m.st = State{Target: m.p.Target, Status: StatusUnknown}
	if last == nil || last.Target != m.p.Target {
		return
	}
	m.st.Outages = last.Outages
	m.st.LastOutageStart = last.LastOutageStart
	m.st.LastOutageDurationS = last.LastOutageDurationS
	m.st.LastReply = last.LastReply
	m.st.Addr = last.Addr
	switch last.Status {
	case StatusUp:
		m.st.Status, m.st.Up, m.st.Since = StatusUp, true, last.Since
	case StatusDown:
		m.st.Status, m.st.Since = StatusDown, last.Since
		if m.p.dnsCheck() {
			m.dnsDue = now
		}
	}
}

// State returns the current state.
func (m *Machine) State() State { return m.st }

// Wake is when Tick should be called next (zero: not needed).
func (m *Machine) Wake() time.Time {
	if m.checking != 0 || !m.p.dnsCheck() {
		return time.Time{}
	}
	return m.dnsDue
}

// StreamRestarted tells the machine that a new probe stream (Seq from 1)
// replaces the old one; the status is kept.
func (m *Machine) StreamRestarted() { m.tr.Reset() }

// Resolved records the address monitorip resolved to.
func (m *Machine) Resolved(_ time.Time, addr netip.Addr) Output {
	m.resolveFailing = false
	m.st.ResolveError = ""
	m.st.Addr = addr.String()
	return Output{}
}

// ResolveFailed records that monitorip did not resolve; the first failure
// of a streak is journaled.
func (m *Machine) ResolveFailed(now time.Time, err error) Output {
	m.st.ResolveError = err.Error()
	if m.resolveFailing {
		return Output{}
	}
	m.resolveFailing = true
	return m.enqueue(
		event.New(event.MonitorUpdown, KindResolveFailed,
			"Cannot resolve monitored IP "+m.p.Target+": "+err.Error(),
			map[string]any{"ip": m.p.Target, "error": err.Error()}).WithLevel(event.LevelWarn),
		nil, "", false)
}

// Probe folds in one probe outcome.
//
// Until the first reply of the run, and for at most PathGrace after its
// start, a probe that could not be sent for want of a route is ignored:
// the path to the target is not up yet, which leaves the status as it is
// (unknown on a first start, the restored one otherwise), and no outage is
// declared.
func (m *Machine) Probe(now time.Time, o probe.Outcome) Output {
	if !o.OK && m.lastReply.IsZero() && probe.NoRoute(o.Err) && now.Sub(m.origin) < m.p.PathGrace {
		return Output{}
	}
	m.tr.Add(o)
	if o.OK {
		if o.At.After(m.lastReply) {
			m.lastReply = o.At
			m.st.LastReply = At(o.At)
		}
		m.checking = 0 // a pending DNS result is now moot
		m.dnsDue = time.Time{}
		m.refuted, m.st.Refuted = false, false
		if m.st.Status != StatusUp {
			return m.goUp(o.At, "ping")
		}
		return Output{}
	}
	if m.tr.LostStreak() < m.p.PingCount || m.st.Status == StatusDown {
		return Output{}
	}
	if m.checking != 0 || m.refuted {
		return Output{} // a check is running, or the DNS recheck timer decides
	}
	if m.p.dnsCheck() {
		m.nextID++
		m.checking = m.nextID
		return Output{DNSCheck: m.checking}
	}
	return m.goDown(now)
}

// DNSResult folds in the result of DNS check id (err nil: answered).
func (m *Machine) DNSResult(now time.Time, id int, err error) Output {
	if id == 0 || id != m.checking {
		return Output{} // overtaken by a reply
	}
	m.checking = 0
	if err == nil {
		m.dnsDue = now.Add(m.p.DownInterval)
		wasRefuted := m.refuted
		m.refuted, m.st.Refuted = true, true
		switch {
		case m.st.Status != StatusUp:
			return m.goUp(now, "dns")
		case !wasRefuted:
			data := map[string]any{"ip": m.p.Target, "addr": m.st.Addr, "dnsserver": m.p.DNSServer, "dnslookup": m.p.DNSLookup}
			if !m.st.LastReply.IsZero() {
				data["last_reply"] = m.st.LastReply
			}
			msg := "Offline of " + m.p.Target + " refuted by DNS query of '" + m.p.DNSLookup + "' on DNS server '" + m.p.DNSServer + "'"
			return m.enqueue(event.New(event.MonitorUpdown, KindRefuted, msg, nil), data, msg, true)
		}
		return Output{}
	}
	m.refuted, m.st.Refuted = false, false
	if m.st.Status == StatusDown {
		m.dnsDue = now.Add(m.p.DownInterval)
		return Output{}
	}
	if m.tr.LostStreak() >= m.p.PingCount {
		return m.goDown(now)
	}
	return Output{}
}

// Tick starts a due DNS recheck.
func (m *Machine) Tick(now time.Time) Output {
	if m.dnsDue.IsZero() || now.Before(m.dnsDue) || m.checking != 0 || !m.p.dnsCheck() {
		return Output{}
	}
	if m.st.Status != StatusDown && !m.refuted {
		m.dnsDue = time.Time{}
		return Output{}
	}
	m.dnsDue = time.Time{}
	m.nextID++
	m.checking = m.nextID
	return Output{DNSCheck: m.checking}
}

// AddpingResult completes the status change waiting for addping round id.
func (m *Machine) AddpingResult(_ time.Time, id int, res []AddpingStatus) Output {
	for _, p := range m.queue {
		if p.addpingID != id {
			continue
		}
		p.addpingID = 0
		p.data["addping"] = res
		var b strings.Builder
		b.WriteString(p.msg)
		for _, r := range res {
			b.WriteString("; Secondary IP " + r.IP + " " + onOff(r.Alive))
		}
		p.ev.Msg = b.String()
	}
	return Output{Events: m.flush()}
}

func (m *Machine) goDown(now time.Time) Output {
	since := m.lastReply
	if since.IsZero() {
		since = m.origin
	}
	// An outage starts no earlier than the target was last declared up: a
	// DNS answer ends an outage while the pings may keep failing, and the
	// next outage must not be dated back to the reply before the last one.
	if m.st.Status == StatusUp && m.st.Since.After(since) {
		since = m.st.Since.Time
	}
	prev := m.st.Status
	m.st.Status, m.st.Up, m.st.Since = StatusDown, false, At(since)
	m.st.Outages++
	m.st.LastOutageStart = At(since)
	if m.p.dnsCheck() {
		m.dnsDue = now.Add(m.p.DownInterval)
	}
	msg := "Monitored IP " + m.p.Target + " offline"
	data := map[string]any{"ip": m.p.Target, "addr": m.st.Addr, "since": At(since)}
	ev := event.New(event.MonitorUpdown, event.KindUpdownOffline, msg, nil).WithArgs(m.p.Target)
	if prev == StatusUnknown {
		data["up"] = false
		ev = event.New(event.MonitorUpdown, KindStatus, msg, nil)
	}
	return m.enqueue(ev, data, msg, false)
}

func (m *Machine) goUp(at time.Time, via string) Output {
	prev := m.st.Status
	since := m.st.Since
	m.st.Status, m.st.Up, m.st.Since = StatusUp, true, At(at)
	msg := "Monitored IP " + m.p.Target + " online"
	data := map[string]any{"ip": m.p.Target, "addr": m.st.Addr, "via": via}
	var ev event.Event
	if prev == StatusDown {
		d := at.Sub(since.Time)
		m.st.LastOutageDurationS = seconds(d)
		msg += ". Outage Duration: " + Words(d)
		data["since"], data["until"], data["duration_s"] = since, At(at), seconds(d)
		ev = event.New(event.MonitorUpdown, event.KindUpdownOnline, msg, nil).WithArgs(m.p.Target, DHMS(d))
	} else {
		data["up"], data["since"] = true, At(at)
		ev = event.New(event.MonitorUpdown, KindStatus, msg, nil)
	}
	return m.enqueue(ev, data, msg, false)
}

// enqueue queues ev with the current state; a status change (addping false
// for kinds that never wait) waits for an addping round when addping is
// configured. data, when not nil, becomes ev.Data at flush time.
func (m *Machine) enqueue(ev event.Event, data map[string]any, msg string, noAddping bool) Output {
	p := &pending{ev: ev, state: m.st, data: data, msg: msg}
	var out Output
	if data != nil && !noAddping && len(m.p.AddPing) > 0 {
		m.nextID++
		p.addpingID = m.nextID
		out.Addping = p.addpingID
	}
	m.queue = append(m.queue, p)
	out.Events = m.flush()
	return out
}

// flush returns the queued events that are complete, in order.
func (m *Machine) flush() []event.Event {
	var evs []event.Event
	for len(m.queue) > 0 && m.queue[0].addpingID == 0 {
		p := m.queue[0]
		m.queue = m.queue[1:]
		if p.data != nil {
			p.ev.Data = event.MustJSON(p.data)
		}
		evs = append(evs, p.ev.WithState(p.state))
	}
	return evs
}

func onOff(up bool) string {
	if up {
		return "online"
	}
	return "offline"
}
