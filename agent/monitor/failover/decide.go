package failover

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"imon/agent/command"
	"imon/agent/probe"
	"imon/event"
)

// Non-action event kinds of the failover monitor (imon extensions; never
// passed to the action script).
const (
	// KindError: a route, rule, link or probe problem; retried. Level error.
	KindError = "failover-error"
	// KindAdopted: on start, imon found (and kept) the default route a
	// previous run left.
	KindAdopted = "failover-adopted"
	// KindMode: a manual failover command was applied.
	KindMode = "failover-mode"
	// KindStopped: clean stop; the default route is left in place and the
	// probe rules removed.
	KindStopped = "failover-stopped"
)

// Input is something Decide reacts to.
type Input interface{ isInput() }

// ProbeResult is one probe outcome of WAN i's stream.
type ProbeResult struct {
	WAN     int
	Outcome probe.Outcome
}

// StreamReset says WAN i's probe stream restarted (Seq starts at 1 again).
type StreamReset struct{ WAN int }

// LinkInfo is WAN i's interface as read from the kernel.
type LinkInfo struct {
	WAN     int
	IP      netip.Addr // first IPv4 address (invalid = none)
	Carrier bool
	// Problem says why the WAN cannot be routed (missing interface, down,
	// no address, gateway outside its subnet); "" = usable.
	Problem string
}

// Command is a manual failover request (event failover-command).
type Command struct {
	Mode   command.Mode
	Source string // "cli", "mqtt"
	Seq    uint64 // the failover-command event's seq (0 = unknown)
}

// Adopted reports, once at start, which WAN imon's default route already
// goes through (-1 = none).
type Adopted struct {
	Active int
	Route  string // the route as `ip route` prints it
}

// SwitchDone reports the outcome of a Switch effect.
type SwitchDone struct {
	To  int
	Err error
}

// PostPingDone reports the outcome of a PostPing effect.
type PostPingDone struct {
	WAN    int
	Target string
	OK     bool
}

// Fault reports (Msg != "") or clears (Msg == "") an error of WAN i (-1 =
// not WAN-specific), such as a rule that cannot be applied. Repeated
// reports of the same message are journaled once.
type Fault struct {
	WAN int
	Msg string
}

// Tick lets time pass (hold expiry, retry, startup grace).
type Tick struct{}

func (ProbeResult) isInput()  {}
func (StreamReset) isInput()  {}
func (LinkInfo) isInput()     {}
func (Command) isInput()      {}
func (Adopted) isInput()      {}
func (SwitchDone) isInput()   {}
func (PostPingDone) isInput() {}
func (Fault) isInput()        {}
func (Tick) isInput()         {}

// Effect is something the monitor's loop must do, in order.
type Effect interface{ isEffect() }

// Emit journals an event (it carries the state snapshot).
type Emit struct{ Event event.Event }

// Switch makes WAN To the main table's default route; the loop answers
// with SwitchDone.
type Switch struct {
	To     int
	From   int
	Reason string
}

// Flush deletes the conntrack entries masqueraded to Addr (the failed
// WAN's address).
type Flush struct {
	WAN  int
	Addr netip.Addr
}

// PostPing checks Target through WAN; the loop answers with PostPingDone.
type PostPing struct {
	WAN    int
	Target string
}

func (Emit) isEffect()     {}
func (Switch) isEffect()   {}
func (Flush) isEffect()    {}
func (PostPing) isEffect() {}

// decider accumulates the effects of one Decide call.
type decider struct {
	s   State
	now time.Time
	out []Effect
	why string // reason of the next switch
}

func (d *decider) emit(kind, msg string, data any, args ...string) {
	ev := event.New(event.MonitorFailover, kind, msg, data)
	if len(args) > 0 {
		ev = ev.WithArgs(args...)
	}
	d.out = append(d.out, Emit{Event: ev})
}

func (d *decider) emitLevel(level, kind, msg string, data any) {
	ev := event.New(event.MonitorFailover, kind, msg, data).WithLevel(level)
	d.out = append(d.out, Emit{Event: ev})
}

// Decide is the failover monitor's whole policy: given the state, one input
// and the time, it returns the next state and the effects to carry out.
// It is pure: no I/O, no clock. Every Emit carries the resulting state.
func Decide(s State, in Input, now time.Time) (State, []Effect) {
	d := &decider{s: s, now: now}
	d.input(in)
	d.settle()
	var snap json.RawMessage // only when something is emitted: most inputs (probe outcomes) emit nothing
	for i, e := range d.out {
		if em, ok := e.(Emit); ok {
			if snap == nil {
				snap = event.MustJSON(d.s.Snapshot(now))
			}
			em.Event.State = snap
			d.out[i] = em
		}
	}
	return d.s, d.out
}

func (d *decider) input(in Input) {
	s := &d.s
	switch in := in.(type) {
	case ProbeResult:
		d.probe(in)
	case StreamReset:
		s.WAN[in.WAN].tracker.Reset()
		s.WAN[in.WAN].lastLost = probe.Outcome{}
		s.WAN[in.WAN].flight = probe.Outcome{}
	case LinkInfo:
		d.link(in)
	case Command:
		s.Mode = in.Mode
		s.SkipHold = in.Mode != command.ModeAuto
		msg := fmt.Sprintf("Failover mode set to %s (%s)", in.Mode, in.Source)
		d.emit(KindMode, msg, map[string]any{"mode": in.Mode, "source": in.Source, "command": in.Seq})
		d.why = "manual " + string(in.Mode)
	case Adopted:
		s.Active = in.Active
		if in.Active >= 0 {
			d.emit(KindAdopted, fmt.Sprintf("Adopted default route %s (%s Network %s)", in.Route, ename(in.Active), s.devnam(in.Active)),
				map[string]any{"wan": role(in.Active), "route": in.Route})
		}
		// Tell the action script which WAN is active unless the previous
		// run already did for this very route.
		s.Announce = in.Active < 0 || s.restored != in.Active
	case SwitchDone:
		d.switched(in)
	case PostPingDone:
		state, level, msg := "online", event.LevelInfo, fmt.Sprintf("Info: %s Network Ping Target %s Online After Failover", ename(in.WAN), in.Target)
		if !in.OK {
			state, level = "offline", event.LevelWarn
			msg = fmt.Sprintf("Warn: %s Network Ping Target %s Not Responding After Failover", ename(in.WAN), in.Target)
		}
		ev := event.New(event.MonitorFailover, event.KindFailoverPostping, msg,
			map[string]any{"wan": role(in.WAN), "target": in.Target, "online": in.OK}).
			WithArgs(s.netinfo(in.WAN), state).WithLevel(level)
		d.out = append(d.out, Emit{Event: ev})
	case Fault:
		d.fault(in.WAN, in.Msg)
	case Tick:
	}
}

// fault journals an error once per distinct message.
func (d *decider) fault(wan int, msg string) {
	last := &d.s.Fault
	if wan >= 0 {
		last = &d.s.WAN[wan].Fault
	}
	if msg == *last {
		return
	}
	*last = msg
	if msg == "" {
		return
	}
	data := map[string]any{"error": msg}
	if wan >= 0 {
		data["wan"] = role(wan)
		msg = fmt.Sprintf("Error: %s Network %s: %s", ename(wan), d.s.devnam(wan), msg)
	} else {
		msg = "Error: " + msg
	}
	d.emitLevel(event.LevelError, KindError, msg, data)
}

func (d *decider) link(in LinkInfo) {
	w := &d.s.WAN[in.WAN]
	wasOK, oldIP := w.LinkOK, w.IP
	w.IP = in.IP
	w.Carrier = in.Carrier
	w.Problem = in.Problem
	w.LinkOK = in.Problem == "" && in.Carrier
	if w.LinkOK && (!wasOK || oldIP != in.IP) {
		// The link is back or renumbered: only probes from now on count.
		w.tracker.Reset()
		w.lastLost = probe.Outcome{}
		w.flight = probe.Outcome{}
	}
	d.fault(in.WAN, in.Problem)
	if !w.LinkOK && w.Status != StatusDown {
		reason := in.Problem
		if reason == "" {
			reason = "carrier lost"
		}
		d.setStatus(in.WAN, StatusDown, reason)
	}
}

// lateAfter is how long a probe sent after a lost one is given before it
// counts as unanswered too: four smoothed RTTs, at least minLate, at most
// the probe wait.
func (s State) lateAfter(i int) time.Duration {
	rtt := s.WAN[i].RTT
	if rtt <= 0 {
		return s.p.Wait
	}
	return min(max(4*rtt, minLate), s.p.Wait)
}

// unanswered counts the consecutive probes of WAN i that have gone without
// a reply: the settled losses ending at the newest settled probe (which
// must itself be lost, having waited the full pingwait), plus the probes
// sent after it that the stream reported still without a reply at its
// latest read, lateAfter or more after their send.
//
// Only what the stream reported counts, never the clock alone: a probe is
// known to be sent and its reply known to be missing only once the probe
// engine has read its socket (on its grid, after the send). Counting probes
// "paced after" a lost one as time passed (until 2026-12-06) counted a
// probe whose reply had arrived but was not read yet (a burst of five
// losses, one fewer than down-after, switched), and probes never sent
// while the agent was starved of CPU (TestLossBurstNoSwitch,
// TestStarvedEngineNoSwitch).
func (s State) unanswered(i int) int {
	w := s.WAN[i]
	n := w.tracker.LostStreak()
	if n == 0 || w.flight.Newest != w.tracker.Newest() {
		return n
	}
	late := s.lateAfter(i)
	for _, sent := range w.flight.InFlight {
		if w.flight.Read.Sub(sent) >= late {
			n++
		}
	}
	return n
}

func (d *decider) probe(in ProbeResult) {
	s := &d.s
	w := &s.WAN[in.WAN]
	o := in.Outcome
	if o.Seq != 0 { // else a status outcome: no probe (StreamOptions.Recheck)
		w.tracker.Add(o)
	}
	if o.Newest != 0 && o.Newest == w.tracker.Newest() {
		w.flight = probe.Outcome{Newest: o.Newest, Read: o.Read, InFlight: o.InFlight}
	}
	if o.Seq == 0 {
		return
	}
	if o.OK {
		if w.RTT == 0 {
			w.RTT = o.RTT
		} else {
			w.RTT += (o.RTT - w.RTT) / 8
		}
		w.Loss -= w.Loss / 32
	} else {
		if o.Seq >= w.lastLost.Seq {
			w.lastLost = o
		}
		w.Loss += (1 - w.Loss) / 32
	}
}

// judge applies the probe thresholds to WAN i: up after UpAfter replies in
// a row, down after DownAfter unanswered probes in a row.
func (d *decider) judge(i int) {
	s := &d.s
	w := &s.WAN[i]
	if !w.LinkOK {
		return // down for a link reason; probes cannot bring it up
	}
	if (w.Status != StatusUp || !w.Confirmed) && w.tracker.OKStreak() >= s.p.UpAfter {
		d.setStatus(i, StatusUp, "")
	} else if (w.Status != StatusDown || !w.Confirmed) && s.unanswered(i) >= s.p.DownAfter {
		reason := "no reply from " + d.target(i)
		if w.lastLost.Err != nil {
			reason = w.lastLost.Err.Error()
		}
		d.setStatus(i, StatusDown, reason)
	}
}

func (d *decider) target(i int) string {
	c := d.s.p.WANs[i]
	if c.Target != "" {
		return c.Target
	}
	return c.GW.String()
}

// setStatus records a WAN state change and journals it: failover-initial
// for the first judgement of this run, failover-wan-up/down afterwards.
func (d *decider) setStatus(i int, st Status, reason string) {
	s := &d.s
	w := &s.WAN[i]
	prev := w.Status
	if st == StatusDown {
		w.Reason = reason
	} else {
		w.Reason = ""
	}
	if !w.Confirmed {
		w.Confirmed = true
		w.Status = st
		state := "online"
		if st == StatusDown {
			state = "offline"
		}
		if prev != st {
			w.Since = d.now
		}
		switch {
		case st == StatusUp && prev == StatusUnknown:
			w.HoldFrom = time.Time{} // it never failed: no hold owed
		case st == StatusUp && prev == StatusDown:
			w.HoldFrom = d.now // down before the restart: the hold starts now
		case st == StatusDown:
			w.HoldFrom = time.Time{}
		}
		d.emit(event.KindFailoverInitial,
			fmt.Sprintf("Network Failover Initial State for %s Network %s: %s", ename(i), s.devnam(i), state),
			map[string]any{"wan": role(i), "state": state, "reason": w.Reason}, s.netinfo(i), state)
		return
	}
	if prev == st {
		return
	}
	since := w.Since
	w.Status = st
	w.Since = d.now
	switch st {
	case StatusUp:
		w.HoldFrom = d.now
		outage := d.now.Sub(since)
		d.emit(event.KindFailoverWANUp, fmt.Sprintf("%s Network %s is now online", ename(i), s.devnam(i)),
			map[string]any{"wan": role(i), "outage_s": round3(outage.Seconds()), "outage": langDuration(outage)}, s.netinfo(i))
	case StatusDown:
		if i == s.preferred() && !w.HoldFrom.IsZero() && (s.Active != i || d.now.Sub(s.ActiveSince) < s.p.HoldMax) {
			// It failed again soon after coming back: a flap.
			s.Flaps++
			s.Hold = min(2*s.Hold, s.p.HoldMax)
		}
		w.HoldFrom = time.Time{}
		d.emit(event.KindFailoverWANDown, fmt.Sprintf("%s Network %s is now offline", ename(i), s.devnam(i)),
			map[string]any{"wan": role(i), "reason": reason}, s.netinfo(i))
		if i == s.Active {
			d.why = fmt.Sprintf("%s down: %s", role(i), reason)
		}
	}
}

// langDuration is the original's "0 days 0 hours, 0 minutes 10 seconds".
func langDuration(d time.Duration) string {
	secs := int64(d.Seconds())
	return fmt.Sprintf("%d days %d hours, %d minutes %d seconds", secs/86400, secs%86400/3600, secs%3600/60, secs%60)
}

func (d *decider) switched(in SwitchDone) {
	s := &d.s
	from := s.Active
	s.Pending = -1
	d.why = s.pendingWhy
	s.pendingWhy = ""
	if in.Err != nil {
		s.RetryAt = d.now.Add(s.p.RetryAfter)
		d.fault(-1, fmt.Sprintf("cannot make %s Network %s the default route: %v", ename(in.To), s.devnam(in.To), in.Err))
		return
	}
	d.fault(-1, "")
	s.RetryAt = time.Time{}
	s.Active = in.To
	s.ActiveSince = d.now
	s.SkipHold = false
	s.Announce = false
	s.WAN[in.To].Switches++
	d.announce(in.To, from)
	if from >= 0 && from != in.To && s.p.Flush && s.WAN[from].IP.IsValid() {
		d.out = append(d.out, Flush{WAN: from, Addr: s.WAN[from].IP})
	}
}

// announce journals that WAN i is the active one (failover-primary or
// failover-standby), then asks for its post-ping.
func (d *decider) announce(i, from int) {
	s := &d.s
	kind := event.KindFailoverPrimary
	if i == 1 {
		kind = event.KindFailoverStandby
	}
	data := map[string]any{"to": role(i), "from": role(from)}
	if d.why != "" {
		data["reason"] = d.why
	}
	d.emit(kind, fmt.Sprintf("Network Failover to %s Network %s", ename(i), s.devnam(i)), data, s.netinfo(i))
	if pp := s.p.WANs[i].PostPing; pp != "" {
		d.out = append(d.out, PostPing{WAN: i, Target: pp})
	}
}

// startupGrace is how long a start without a default route waits for the
// preferred WAN to be judged before it settles for the other one.
func (s State) startupGrace() time.Duration {
	return s.p.Wait + time.Duration(s.p.DownAfter+1)*s.p.Spacing
}

// settle runs after every input: both-down bookkeeping, hold reset, and
// the choice of the active WAN.
func (d *decider) settle() {
	s := &d.s
	d.judge(0)
	d.judge(1)
	up := func(i int) bool { return s.WAN[i].Status == StatusUp }
	both := s.WAN[0].Confirmed && s.WAN[1].Confirmed && !up(0) && !up(1)
	if both && !s.BothDown {
		s.BothDown = true
		s.Announce = true
		d.emit(event.KindFailoverBothDown, "Both Primary and Standby Networks are offline",
			map[string]any{}, s.netinfo(0), s.netinfo(1))
	} else if !both && (up(0) || up(1)) {
		s.BothDown = false
	}
	// A long stable period on the preferred WAN forgives past flaps.
	if p := s.preferred(); p >= 0 && s.Active == p && up(p) && d.now.Sub(s.ActiveSince) >= s.p.HoldMax && s.Hold > s.p.Hold {
		s.Hold = s.p.Hold
		s.Flaps = 0
	}

	want := d.pick()
	switch {
	case want >= 0 && want != s.Active:
		s.Pending = want
		why := d.why
		if why == "" {
			why = d.reason(want)
		}
		d.why = why
		s.pendingWhy = why
		d.out = append(d.out, Switch{To: want, From: s.Active, Reason: why})
	case want >= 0 && want == s.Active && s.Announce && up(want) && s.WAN[want].Confirmed && s.Pending < 0:
		s.Announce = false
		if d.why == "" {
			d.why = "recovered"
		}
		d.announce(want, -1)
	}
}

func (d *decider) reason(want int) string {
	s := &d.s
	switch {
	case s.Active < 0:
		return "initial"
	case s.WAN[s.Active].Status != StatusUp:
		return fmt.Sprintf("%s down: %s", role(s.Active), s.WAN[s.Active].Reason)
	case want == s.preferred() && s.SkipHold:
		return "manual " + string(s.Mode)
	default:
		return fmt.Sprintf("failback to %s after %s hold", role(want), s.Hold)
	}
}

// pick chooses the WAN the default route should go through (-1 = leave
// it as it is).
func (d *decider) pick() int {
	s := &d.s
	if s.Pending >= 0 || d.now.Before(s.RetryAt) {
		return s.Active
	}
	up := func(i int) bool { return s.WAN[i].Status == StatusUp && s.WAN[i].Confirmed && s.WAN[i].LinkOK }
	cur := s.Active
	pref := s.preferred()
	if cur >= 0 && !s.WAN[cur].Confirmed && s.WAN[cur].Status != StatusDown {
		return cur // adopted: keep it until it has been judged
	}
	if cur >= 0 && up(cur) {
		if pref >= 0 && pref != cur && up(pref) && (s.SkipHold || s.holdRemaining(d.now) == 0) {
			return pref
		}
		return cur
	}
	order := []int{0, 1}
	if pref == 1 {
		order = []int{1, 0}
	}
	if cur < 0 && !s.WAN[order[0]].Confirmed && d.now.Sub(s.Started) < s.startupGrace() {
		return -1 // no route yet: give the preferred WAN a chance to be judged
	}
	for _, c := range order {
		if c != cur && up(c) {
			return c
		}
	}
	return cur
}

// Next returns when Decide should next be called with a Tick even if
// nothing else happens (zero = not needed).
func Next(s State, now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(s.RetryAt)
	if r := s.holdRemaining(now); r > 0 {
		consider(now.Add(r))
	}
	if s.Active < 0 {
		consider(s.Started.Add(s.startupGrace()))
	}
	if p := s.preferred(); p >= 0 && s.Hold > s.p.Hold && s.Active == p {
		consider(s.ActiveSince.Add(s.p.HoldMax))
	}
	return next
}
