// Package ddns is imon's ddns monitor: it tracks the external (public)
// address the internet sees, and reports a change (ddns-ip-update NEW OLD,
// and ddns-ip6-update for IPv6) only when independent operators agree on it,
// so that nothing but a confirmed, valid, public address ever reaches the
// user's action script.
//
// # Basics
//
// Every interval (and at once after a WAN failover) the monitor asks its
// providers in parallel, each with its own timeout: DNS servers asked
// directly for a name that resolves to the querier's address, and HTTP(S)
// services as a fallback, asked only when the DNS answers cannot reach the
// quorum (package [imon/agent/probe/extip] does the I/O and the
// validation). Each valid answer is a [Vote] of the provider's operator;
// [Decide] accepts an address when at least the quorum of operators (two by
// default) name it and more operators name it than any other address. The
// decision is made as soon as the outstanding answers can no longer change
// it, so one blackholed provider does not delay a change. [Track.Observe]
// turns the consensus into a decision: with a quorum of two or more the
// consensus itself confirms a change; with a single operator a change needs
// two consecutive rounds. Two consecutive rounds in which no provider
// answers report ddns-no-update, once per failure streak.
//
// State lives only in the journal: every ddns event carries the full
// [State], and [Monitor.Run] restores the confirmed address from the last
// one, so a restart with an unchanged address reports nothing and OLD is
// "unknown" only on the very first detection ever.
//
// # Caveats
//
// A provider that answers garbage, HTML, several addresses or a non-public
// address is journaled (ddns-provider-fault, once per streak and reason) and
// backed off; a provider that lies with a valid public address is outvoted.
// Failing providers are backed off exponentially from the interval, capped
// at five minutes, or at one minute when no provider of the family answered
// (the line is down, not the providers). The operator of a provider is
// inferred from names and addresses ([extip.Operators]); two providers of
// one company count once.
package ddns
