package updown

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"imon/event"
)

// Status values of State.Status.
const (
	StatusUnknown = "unknown" // nothing determined yet (first start)
	StatusUp      = "up"
	StatusDown    = "down"
)

// Event kinds of the updown monitor besides the action kinds
// updown-offline and updown-online (event.KindUpdownOffline/Online).
const (
	// KindStatus is the first determination of a target without a previous
	// state (first start, or a changed monitorip): not an action.
	KindStatus = "updown-status"
	// KindRefuted: the target stopped answering pings but the DNS check
	// answered, so no outage is declared (info).
	KindRefuted = "updown-refuted"
	// KindResolveFailed: monitorip is a name that does not resolve (warn);
	// journaled once per failure streak, retried every down-interval.
	KindResolveFailed = "updown-resolve-failed"
)

// State is the updown monitor's state, journaled with every updown event
// and restored from the latest one on start.
type State struct {
	// Target is monitorip as configured.
	Target string `json:"target"`
	// Addr is the address probed (Target resolved).
	Addr string `json:"addr,omitempty"`
	// Status is "up", "down" or "unknown"; Up is Status == "up".
	Status string `json:"status"`
	Up     bool   `json:"up"`
	// Since is when the current status began. For "down" it is the time of
	// the last reply before the outage (the outage is dated back to it).
	Since Stamp `json:"since,omitzero"`
	// LastReply is the newest reply as of this event.
	LastReply Stamp `json:"last_reply,omitzero"`
	// Refuted is true while pings fail but the DNS check answers.
	Refuted bool `json:"refuted,omitempty"`
	// Outages counts the outages declared so far.
	Outages int `json:"outages"`
	// LastOutageStart and LastOutageDurationS describe the latest outage;
	// the duration is set when it ends.
	LastOutageStart     Stamp   `json:"last_outage_start,omitzero"`
	LastOutageDurationS float64 `json:"last_outage_duration_s,omitempty"`
	// ResolveError is set while monitorip does not resolve.
	ResolveError string `json:"resolve_error,omitempty"`
}

// AddpingStatus is the result of pinging one addping target on a
// transition.
type AddpingStatus struct {
	// IP is the addping entry as configured.
	IP string `json:"ip"`
	// Addr is the address pinged ("" when IP did not resolve).
	Addr  string  `json:"addr,omitempty"`
	Alive bool    `json:"alive"`
	RTTms float64 `json:"rtt_ms"` // average RTT, 0 when not alive
	Error string  `json:"error,omitempty"`
}

// Stamp is a time that marshals as RFC 3339 UTC with milliseconds (the
// journal's format) and is omitted when zero (with the omitzero tag).
type Stamp struct{ time.Time }

// At wraps t.
func At(t time.Time) Stamp { return Stamp{t} }

// MarshalJSON implements json.Marshaler.
func (s Stamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.UTC().Format(event.TimeFormat))
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Stamp) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	if v == "" {
		s.Time = time.Time{}
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("time %q: %w", v, err)
	}
	s.Time = t
	return nil
}

// DHMS formats d like the original's action argument: days:hours:minutes:
// seconds, truncated to whole seconds and not zero-padded ("0:0:1:5"), so
// that scripts written for the original parse it unchanged.
func DHMS(d time.Duration) string {
	s := max(int64(d/time.Second), 0)
	return fmt.Sprintf("%d:%d:%d:%d", s/86400, s%86400/3600, s%3600/60, s%60)
}

// Words formats d like the original's log line: "0 days 0 hours, 1 minutes
// 5 seconds" (truncated to whole seconds).
func Words(d time.Duration) string {
	s := max(int64(d/time.Second), 0)
	return fmt.Sprintf("%d days %d hours, %d minutes %d seconds", s/86400, s%86400/3600, s%3600/60, s%60)
}

// seconds is d in seconds rounded to milliseconds.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

// ms is d in milliseconds rounded to microseconds (3 decimals).
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
