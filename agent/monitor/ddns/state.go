package ddns

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// State is the ddns monitor's full state, carried by every ddns event
// (event.Event.State): restored at start, printed by `imon status`,
// published retained to MQTT as BASE/ddns/state.
type State struct {
	// IP is the confirmed external IPv4 address, "" while unknown.
	IP string `json:"ip"`
	// ChangedAt is when IP was confirmed.
	ChangedAt *time.Time `json:"changed_at,omitempty"`
	// Previous is the address IP replaced, omitted until the address
	// changed from a known one: on a first start ChangedAt is when the
	// address was learnt, not a change.
	Previous string `json:"previous,omitempty"`
	// Agreed lists the providers behind the last accepted IPv4 consensus.
	Agreed []string `json:"agreed"`
	// Consensus is the last IPv4 round's outcome: ok, no-answer,
	// no-quorum or split ("" before the first round).
	Consensus Outcome `json:"consensus,omitempty"`
	// NoAnswerSince is set while in an IPv4 failure streak (no provider
	// answers; ddns-no-update was reported).
	NoAnswerSince *time.Time `json:"no_answer_since,omitempty"`

	// IP6, ChangedAt6, Previous6, Agreed6, Consensus6 and NoAnswerSince6
	// are the same for IPv6, present only when an IPv6 provider is
	// configured.
	IP6            string     `json:"ip6,omitempty"`
	ChangedAt6     *time.Time `json:"changed_at6,omitempty"`
	Previous6      string     `json:"previous6,omitempty"`
	Agreed6        []string   `json:"agreed6,omitempty"`
	Consensus6     Outcome    `json:"consensus6,omitempty"`
	NoAnswerSince6 *time.Time `json:"no_answer_since6,omitempty"`

	// CGNAT is true when the configured WAN interface holds a shared
	// address (100.64.0.0/10): inbound connections will not arrive.
	CGNAT bool `json:"cgnat"`
	// CGNATAddress is that address.
	CGNATAddress string `json:"cgnat_address,omitempty"`

	// Providers is each configured provider's health, in config order.
	Providers []ProviderState `json:"providers"`
}

// ProviderState is one provider's health.
type ProviderState struct {
	// Name is the provider as configured.
	Name string `json:"name"`
	// Operator is the provider's operator (see extip.Operators).
	Operator string `json:"operator"`
	// Family is "ipv4" or "ipv6".
	Family string `json:"family"`
	// Fallback is true for HTTP providers, asked only when the DNS
	// providers cannot reach the quorum.
	Fallback bool `json:"fallback,omitempty"`
	// OK is true when the provider's last answer was a valid address.
	OK bool `json:"ok"`
	// Status is "ok", "failed" (no answer: timeout, error), "fault" (a
	// rejected answer) or "idle" (not asked yet).
	Status string `json:"status"`
	// Answer is the last valid address it answered.
	Answer string `json:"answer,omitempty"`
	// LastError is the last failure or fault.
	LastError string `json:"last_error,omitempty"`
	// Failures counts consecutive failed or rejected answers.
	Failures int `json:"failures,omitempty"`
	// BackoffUntil is set while the provider is skipped after failures.
	BackoffUntil *time.Time `json:"backoff_until,omitempty"`
}

// Provider statuses.
const (
	statusOK     = "ok"
	statusFailed = "failed"
	statusFault  = "fault"
	statusIdle   = "idle"
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// signature is the part of the state whose change is worth a ddns-status
// event: addresses, consensus outcomes, failure streaks, CGNAT and each
// provider's status (not timestamps, counters or error texts, which change
// every round while a provider is down).
func (s State) signature() string {
	var b strings.Builder
	b.WriteString(s.IP + "|" + string(s.Consensus) + "|" + strconv.FormatBool(s.NoAnswerSince != nil))
	b.WriteString("|" + s.IP6 + "|" + string(s.Consensus6) + "|" + strconv.FormatBool(s.NoAnswerSince6 != nil))
	b.WriteString("|" + strconv.FormatBool(s.CGNAT) + "|" + s.CGNATAddress)
	for _, p := range s.Providers {
		b.WriteString("|" + p.Name + "=" + p.Status)
	}
	return b.String()
}
