package ddns

import (
	"net/netip"
	"time"
)

// Track is what the ddns monitor knows about one address family between
// rounds: the confirmed external address and the memory of the
// confirmation and failure rules. It is a value; Observe returns the next
// one.
type Track struct {
	// Addr is the confirmed external address; invalid while unknown.
	Addr netip.Addr
	// ChangedAt is when Addr was confirmed (zero while unknown).
	ChangedAt time.Time
	// Previous is the confirmed address Addr replaced; invalid until the
	// address changed from a known one (the first address learnt is not a
	// change).
	Previous netip.Addr
	// Agreed lists the providers behind the last accepted consensus.
	Agreed []string
	// Outcome is the last round's consensus outcome ("" before the first).
	Outcome Outcome
	// Candidate is an address a single-operator consensus named once and
	// that needs a second consecutive round to be confirmed.
	Candidate netip.Addr
	// NoAnswer is set once ddns-no-update has been reported, and cleared
	// by the next accepted address: one report per failure streak.
	NoAnswer bool
	// NoAnswerSince is when the failure streak began.
	NoAnswerSince time.Time
	// NoAnswerRounds counts consecutive rounds without any valid answer,
	// up to NoAnswerRounds.
	NoAnswerRounds int
}

// NoAnswerRounds is how many consecutive rounds without any valid answer
// make a failure streak (and a ddns-no-update): one lost round is a blip,
// or imon starting before the failover monitor installed a route; the
// second, one interval later, is an outage.
const NoAnswerRounds = 2

// Decision is what a round's consensus means for the user.
type Decision struct {
	// Change: report ddns-ip-update (ddns-ip6-update) New Old; Old is
	// invalid on the very first detection.
	Change   bool
	Old, New netip.Addr
	// NoUpdate: report ddns-no-update, the first of a failure streak.
	NoUpdate bool
	// Recovered: this round ended a failure streak.
	Recovered bool
}

// Observe applies one round's consensus for the family. quorum is the
// effective quorum (EffectiveQuorum): with 2 or more, the agreement of that
// many independent operators in one round is the confirmation and a new
// address is reported at once; with 1 (a single operator configured, or the
// quorum set to 1), a new address must be named in two consecutive rounds.
// Two consecutive rounds without any valid answer (NoAnswerRounds) report
// ddns-no-update, once per streak; a split or an answer short of the quorum
// neither reports nor ends a streak, and never changes the address.
func (t Track) Observe(c Consensus, quorum int, now time.Time) (Track, Decision) {
	var d Decision
	t.Outcome = c.Outcome
	if c.Outcome != NoAnswer {
		t.NoAnswerRounds = 0
	}
	switch c.Outcome {
	case Accepted:
		if t.NoAnswer {
			d.Recovered = true
			t.NoAnswer = false
			t.NoAnswerSince = time.Time{}
		}
		t.Agreed = c.Agreed
		if c.Addr == t.Addr {
			t.Candidate = netip.Addr{}
			return t, d
		}
		if quorum < 2 && t.Candidate != c.Addr {
			t.Candidate = c.Addr
			return t, d
		}
		d.Change, d.Old, d.New = true, t.Addr, c.Addr
		if t.Addr.IsValid() {
			t.Previous = t.Addr
		}
		t.Addr, t.ChangedAt, t.Candidate = c.Addr, now, netip.Addr{}
		return t, d
	case NoAnswer:
		t.Candidate = netip.Addr{}
		if t.NoAnswerRounds < NoAnswerRounds {
			t.NoAnswerRounds++
		}
		if t.NoAnswerRounds == 1 && !t.NoAnswer {
			t.NoAnswerSince = now // the streak's first round
		}
		if !t.NoAnswer && t.NoAnswerRounds >= NoAnswerRounds {
			d.NoUpdate = true
			t.NoAnswer = true
		}
		return t, d
	default:
		t.Candidate = netip.Addr{}
		return t, d
	}
}

// EffectiveQuorum is the quorum actually required for a family with the
// given number of distinct operators configured: the configured quorum
// (default 2 when below 1), but no more than the operators there are, so
// that a single provider (or several of one operator) still works, with
// two-round confirmation instead.
func EffectiveQuorum(configured, operators int) int {
	if configured < 1 {
		configured = DefaultQuorum
	}
	return max(1, min(configured, operators))
}
