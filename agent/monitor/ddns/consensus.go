package ddns

import (
	"net/netip"
	"slices"
)

// Outcome is what a round's answers say about the address.
type Outcome string

// Outcomes of Decide.
const (
	// Accepted: at least the quorum of independent operators agree on one
	// address, and more operators back it than any other address.
	Accepted Outcome = "ok"
	// NoAnswer: no provider gave a valid answer.
	NoAnswer Outcome = "no-answer"
	// NoQuorum: valid answers agree, but fewer operators than the quorum
	// gave them.
	NoQuorum Outcome = "no-quorum"
	// Split: valid answers name different addresses and none wins.
	Split Outcome = "split"
)

// Vote is one provider's valid answer in a round.
type Vote struct {
	Provider string
	Operator string
	Addr     netip.Addr
}

// Consensus is the outcome of one round for one address family.
type Consensus struct {
	Outcome Outcome
	// Addr is the accepted address (Outcome Accepted), else invalid.
	Addr netip.Addr
	// Agreed lists the providers that answered Addr, in vote order.
	Agreed []string
	// Operators lists the distinct operators behind Agreed.
	Operators []string
	// Votes is the number of operators behind the leading address
	// (Accepted: behind Addr).
	Votes int
	// Final reports that no pending answer can change Outcome or Addr.
	Final bool
	// Hopeless reports that the pending answers cannot make an address
	// accepted: the round needs the fallback providers.
	Hopeless bool
}

// Decide is the consensus rule. Each operator gives at most one vote to an
// address, however many of its providers name it (an operator whose
// providers disagree votes for each address they name, once). An address is
// accepted when at least quorum operators vote for it and strictly more
// operators vote for it than for any other address; a tie is a split.
// pending lists the operators of providers whose answers are still
// outstanding: an accepted outcome is Final when they could not overturn it
// even if all of them voted for the runner-up. quorum below 1 counts as 1.
func Decide(votes []Vote, pending []string, quorum int) Consensus {
	quorum = max(quorum, 1)
	type tally struct {
		addr      netip.Addr
		providers []string
		operators []string
	}
	var tallies []*tally
	for _, v := range votes {
		i := slices.IndexFunc(tallies, func(t *tally) bool { return t.addr == v.Addr })
		if i < 0 {
			tallies = append(tallies, &tally{addr: v.Addr})
			i = len(tallies) - 1
		}
		t := tallies[i]
		t.providers = append(t.providers, v.Provider)
		if !slices.Contains(t.operators, v.Operator) {
			t.operators = append(t.operators, v.Operator)
		}
	}
	var ops []string
	for _, op := range pending {
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	p := len(ops)
	if len(tallies) == 0 {
		return Consensus{Outcome: NoAnswer, Final: p == 0, Hopeless: p < quorum}
	}
	// Stable: the first address to reach the top count leads.
	lead, second := 0, 0
	for i, t := range tallies {
		if len(t.operators) > len(tallies[lead].operators) {
			lead = i
		}
	}
	w := len(tallies[lead].operators)
	for i, t := range tallies {
		if i != lead {
			second = max(second, len(t.operators))
		}
	}
	c := Consensus{Votes: w}
	if w >= quorum && w > second {
		t := tallies[lead]
		c.Outcome = Accepted
		c.Addr = t.addr
		c.Agreed = slices.Clone(t.providers)
		c.Operators = slices.Clone(t.operators)
		c.Final = w > second+p
		return c
	}
	if len(tallies) > 1 {
		c.Outcome = Split
	} else {
		c.Outcome = NoQuorum
	}
	c.Final = p == 0
	c.Hopeless = p == 0 || w+p < quorum
	return c
}
