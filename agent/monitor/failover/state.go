package failover

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"imon/agent/command"
	"imon/agent/probe"
	"imon/config"
)

// Status of a WAN.
type Status string

// WAN statuses.
const (
	StatusUnknown Status = "unknown" // not judged yet
	StatusUp      Status = "up"
	StatusDown    Status = "down"
)

// Params are the decision parameters, from the failover config section.
type Params struct {
	PreferPrimary bool
	DownAfter     int           // consecutive unanswered probes that mark a WAN down
	UpAfter       int           // consecutive replies that mark a WAN up
	Spacing       time.Duration // probe interval of one WAN
	Wait          time.Duration // how long one probe waits for its reply (pingwait)
	Hold          time.Duration // base failback hold
	HoldMax       time.Duration // cap of the doubling hold; also the "stable" period that resets it
	Flush         bool          // delete conntrack entries of the failed WAN on a switch
	RetryAfter    time.Duration // delay before retrying a failed route switch
	WANs          [2]WANConfig
}

// WANConfig is one WAN's static description.
type WANConfig struct {
	Name     string     // user's name ("" = none)
	If       string     // interface
	GW       netip.Addr // gateway
	Target   string     // probe target as configured ("" = the gateway)
	PostPing string     // post-switch ping target ("" = none)
}

// minLate is the shortest time a probe in flight is given before it counts
// as unanswered while an older probe has already been lost (see lateAfter).
const minLate = 100 * time.Millisecond

// defaultRetry is the delay before a failed route switch is retried.
const defaultRetry = time.Second

// ParamsFrom builds Params from the (defaulted) config section.
func ParamsFrom(f config.Failover) Params {
	p := Params{
		PreferPrimary: f.PreferPrimary,
		DownAfter:     max(f.DownAfter, 1),
		UpAfter:       max(f.UpAfter, 1),
		Spacing:       f.ProbeInterval,
		Wait:          f.PingWait,
		Hold:          f.HoldTime,
		HoldMax:       max(f.HoldMax, f.HoldTime),
		Flush:         f.FlushConntrack,
		RetryAfter:    defaultRetry,
	}
	if p.Spacing <= 0 {
		p.Spacing = time.Second
	}
	// The probe engine sends on its grid: the spacing the decision counts
	// with is the one the probes really have.
	p.Spacing = (p.Spacing + probe.Grid - 1) / probe.Grid * probe.Grid
	if p.Wait <= 0 {
		p.Wait = time.Second
	}
	for i, w := range []config.WAN{f.Primary, f.Standby} {
		p.WANs[i] = WANConfig{Name: w.Name, If: w.If, GW: w.GW, Target: w.Ping, PostPing: w.PostPing}
	}
	return p
}

// ename is the original's name of WAN i.
func ename(i int) string {
	if i == 0 {
		return "Primary"
	}
	return "Standby"
}

// WANState is what the monitor knows about one WAN.
type WANState struct {
	Status    Status
	Confirmed bool      // judged by this run (its failover-initial was sent)
	Since     time.Time // when Status last changed
	Reason    string    // why it is down
	HoldFrom  time.Time // failback hold counts from here (zero: no hold owed)
	Switches  int       // times it became the active WAN
	IP        netip.Addr
	LinkOK    bool   // interface present, up, addressed, gateway on link, carrier
	Carrier   bool   // IFF_LOWER_UP
	Problem   string // why the link is not usable ("" = none)
	Fault     string // last journaled error for this WAN
	RTT       time.Duration
	Loss      float64 // smoothed lost fraction
	tracker   probe.Tracker
	lastLost  probe.Outcome // newest lost outcome
	// flight is what the stream told with its latest outcome about the
	// probes newer than its newest settled one (Outcome.InFlight), valid
	// while flight.Newest is the tracker's newest.
	flight probe.Outcome
}

// State is the failover monitor's state. It is a value: Decide returns a
// new one.
type State struct {
	p      Params
	WAN    [2]WANState
	Active int // WAN of imon's default route (-1 = none)
	// ActiveSince is when Active last changed (by this run or the last).
	ActiveSince time.Time
	Mode        command.Mode
	Hold        time.Duration // current failback hold
	Flaps       int
	SkipHold    bool // a manual pin asked for an immediate switch
	BothDown    bool
	Announce    bool // announce the active WAN when it is up (adoption, recovery from bothdown)
	Pending     int  // switch in flight to this WAN (-1 = none)
	pendingWhy  string
	RetryAt     time.Time
	Fault       string // last journaled route error
	Started     time.Time
	restored    int // Active of the restored snapshot (-2 = none)
}

// NewState returns the state of a fresh start at now.
func NewState(p Params, now time.Time) State {
	s := State{p: p, Active: -1, Pending: -1, Mode: command.ModeAuto, Hold: p.Hold, Started: now, restored: -2}
	for i := range s.WAN {
		s.WAN[i].Status = StatusUnknown
		s.WAN[i].Since = now
	}
	return s
}

// Params returns the state's parameters.
func (s State) Params() Params { return s.p }

// Snapshot is the JSON form of State carried by every failover event
// (`imon status`, MQTT BASE/failover/state) and restored on start.
type Snapshot struct {
	Active         string        `json:"active"` // "primary", "standby" or ""
	ActiveSince    time.Time     `json:"active_since,omitzero"`
	Mode           command.Mode  `json:"mode"`
	HoldS          float64       `json:"hold_s"`           // current failback hold
	HoldRemainingS float64       `json:"hold_remaining_s"` // until failback is allowed (0 = none pending)
	Flaps          int           `json:"flaps"`
	BothDown       bool          `json:"bothdown"`
	WANs           []WANSnapshot `json:"wans"`
}

// WANSnapshot is one WAN in a Snapshot.
type WANSnapshot struct {
	Role      string    `json:"role"` // "primary" or "standby"
	Name      string    `json:"name"`
	Ename     string    `json:"ename"`
	Ifname    string    `json:"ifname"`
	IP        string    `json:"ip"`
	GW        string    `json:"gw"`
	Target    string    `json:"target"`
	Up        bool      `json:"up"`
	Status    Status    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	Carrier   bool      `json:"carrier"`
	RTTms     float64   `json:"rtt_ms"`
	Loss      float64   `json:"loss"`
	Since     time.Time `json:"since"`
	HoldFrom  time.Time `json:"hold_from,omitzero"`
	Switches  int       `json:"switches"`
	Active    bool      `json:"active"`
	Problem   string    `json:"problem,omitempty"`
	Confirmed bool      `json:"-"`
}

func role(i int) string {
	switch i {
	case 0:
		return "primary"
	case 1:
		return "standby"
	}
	return ""
}

func roleIndex(r string) int {
	switch r {
	case "primary":
		return 0
	case "standby":
		return 1
	}
	return -1
}

// Snapshot returns the JSON form of s at now.
func (s State) Snapshot(now time.Time) Snapshot {
	out := Snapshot{Active: role(s.Active), ActiveSince: s.ActiveSince.UTC(), Mode: s.Mode, HoldS: s.Hold.Seconds(), Flaps: s.Flaps, BothDown: s.BothDown}
	out.HoldRemainingS = s.holdRemaining(now).Seconds()
	for i, w := range s.WAN {
		c := s.p.WANs[i]
		target := c.Target
		if target == "" && c.GW.IsValid() {
			target = c.GW.String()
		}
		ws := WANSnapshot{
			Role: role(i), Name: c.Name, Ename: ename(i), Ifname: c.If, GW: addrString(c.GW), IP: addrString(w.IP),
			Target: target, Up: w.Status == StatusUp, Status: w.Status, Reason: w.Reason, Carrier: w.Carrier,
			RTTms: round3(float64(w.RTT) / float64(time.Millisecond)), Loss: round3(w.Loss),
			Since: w.Since.UTC(), HoldFrom: w.HoldFrom.UTC(), Switches: w.Switches, Active: s.Active == i, Problem: w.Problem,
		}
		out.WANs = append(out.WANs, ws)
	}
	return out
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// Restore continues from the snapshot of a previous run: WAN statuses (as
// unconfirmed beliefs), switch counts, mode, hold and flaps. Unknown or
// malformed snapshots are ignored.
func Restore(s State, raw json.RawMessage) State {
	var snap Snapshot
	if len(raw) == 0 || json.Unmarshal(raw, &snap) != nil {
		return s
	}
	if m, err := command.ParseMode(string(snap.Mode)); err == nil {
		s.Mode = m
	}
	if snap.HoldS > 0 {
		s.Hold = min(max(time.Duration(snap.HoldS*float64(time.Second)), s.p.Hold), s.p.HoldMax)
	}
	s.Flaps = snap.Flaps
	s.restored = roleIndex(snap.Active)
	s.ActiveSince = snap.ActiveSince
	for _, w := range snap.WANs {
		i := roleIndex(w.Role)
		if i < 0 {
			continue
		}
		ws := &s.WAN[i]
		if w.Status == StatusUp || w.Status == StatusDown {
			ws.Status = w.Status
			ws.Since = w.Since
			ws.Reason = w.Reason
		}
		ws.HoldFrom = w.HoldFrom
		ws.Switches = w.Switches
	}
	return s
}

// netinfo is the original's NETINFO argument: name:ename:ifname:ip, where
// ip is the WAN interface's own IPv4 address ("" when it has none).
func (s State) netinfo(i int) string {
	c := s.p.WANs[i]
	return fmt.Sprintf("%s:%s:%s:%s", c.Name, ename(i), c.If, addrString(s.WAN[i].IP))
}

// devnam is the original's "name (ifname)" or "'ifname'".
func (s State) devnam(i int) string {
	c := s.p.WANs[i]
	if c.Name == "" {
		return fmt.Sprintf("'%s'", c.If)
	}
	return fmt.Sprintf("%s (%s)", c.Name, c.If)
}

// preferred is the WAN imon fails back to: the pinned one, or the primary
// with prefer-primary; -1 when any working WAN will do.
func (s State) preferred() int {
	switch s.Mode {
	case command.ModePrimary:
		return 0
	case command.ModeStandby:
		return 1
	}
	if s.p.PreferPrimary {
		return 0
	}
	return -1
}

// holdRemaining is how long until imon may fail back to the preferred WAN
// (0 when no failback is waiting).
func (s State) holdRemaining(now time.Time) time.Duration {
	p := s.preferred()
	if p < 0 || p == s.Active || s.WAN[p].Status != StatusUp || s.WAN[p].HoldFrom.IsZero() || s.SkipHold {
		return 0
	}
	return max(0, s.WAN[p].HoldFrom.Add(s.Hold).Sub(now))
}
