package extip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MaxAnswer is the longest answer, in bytes, that imon reads from a
// provider: an IPv6 address is at most 45 characters, so anything longer
// (HTML, JSON, an error page) is rejected without being parsed.
const MaxAnswer = 64

// FaultError is an answer that arrived but was rejected: not exactly one
// valid address, a special-purpose address, the wrong family, a malformed
// DNS message. A fault is the provider's doing (a lie, a bug, a captive
// portal), unlike a failure (timeout, refused, SERVFAIL), and is journaled.
type FaultError struct {
	// Reason says why the answer was rejected, e.g. "private address".
	Reason string
	// Answer is the rejected answer, sanitized by Sanitize.
	Answer string
}

// Error returns "REASON: ANSWER".
func (e *FaultError) Error() string {
	if e.Answer == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %q", e.Reason, e.Answer)
}

func fault(reason, answer string) *FaultError {
	return &FaultError{Reason: reason, Answer: Sanitize(answer)}
}

// IsFault reports whether err is (or wraps) a *FaultError, and returns it.
func IsFault(err error) (*FaultError, bool) {
	var f *FaultError
	ok := errors.As(err, &f)
	return f, ok
}

// Sanitize makes an untrusted answer safe to journal and log: at most
// MaxAnswer bytes, every byte outside printable ASCII replaced by '?', and
// "..." appended when it was cut.
func Sanitize(s string) string {
	cut := len(s) > MaxAnswer
	if cut {
		s = s[:MaxAnswer]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if cut {
		return string(b) + "..."
	}
	return string(b)
}

// ParseAnswer validates a provider's raw answer (the text of the single DNS
// record, or the HTTP body) and returns the address. The answer must be one
// IP address of family fam, optionally surrounded by ASCII spaces, tabs or
// line ends, and nothing else: no zone, no brackets, no IPv4-mapped IPv6, no
// second address. The address must be a public unicast address: see
// Special for what is rejected, and allowPrivate for the lab exception. Every
// rejection is a *FaultError.
func ParseAnswer(raw string, fam Family, allowPrivate bool) (netip.Addr, error) {
	if len(raw) > MaxAnswer {
		return netip.Addr{}, fault("answer too long", raw)
	}
	s := strings.Trim(raw, " \t\r\n")
	if s == "" {
		return netip.Addr{}, fault("empty answer", raw)
	}
	if strings.ContainsAny(s, " \t\r\n,;") {
		fields := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t\r\n,;", r) })
		all := len(fields) > 1
		for _, f := range fields {
			if _, err := netip.ParseAddr(f); err != nil || !onlyAddrChars(f) {
				all = false
			}
		}
		if all {
			return netip.Addr{}, fault("several addresses", raw)
		}
		return netip.Addr{}, fault("not an address", raw)
	}
	if !onlyAddrChars(s) {
		return netip.Addr{}, fault("not an address", raw)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fault("not an address", raw)
	}
	if a.Is4In6() {
		return netip.Addr{}, fault("IPv4-mapped IPv6 address", raw)
	}
	if fam == IPv4 && !a.Is4() {
		return netip.Addr{}, fault("wrong family: want IPv4", raw)
	}
	if fam == IPv6 && !a.Is6() {
		return netip.Addr{}, fault("wrong family: want IPv6", raw)
	}
	if reason, never := Special(a); reason != "" && (never || !allowPrivate) {
		return netip.Addr{}, fault(reason, raw)
	}
	return a, nil
}

func onlyAddrChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

type special struct {
	prefix netip.Prefix
	reason string
	// never: rejected even with allow-private (no line can have it as its
	// external address, lab or not).
	never bool
}

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// specials lists the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (RFC 6890 and updates), plus multicast, IPv6 site-local and everything
// outside 2000::/3 for IPv6. Entries that IANA marks "globally reachable"
// (AS112, anycast relays, NAT64) are rejected too: no home line has one as
// its external address. The more specific entry comes first.
var specials = []special{
	// IPv4
	{p("0.0.0.0/8"), `"this network" address`, true},
	{p("10.0.0.0/8"), "private address", false},
	{p("100.64.0.0/10"), "shared (CGNAT) address", false},
	{p("127.0.0.0/8"), "loopback address", true},
	{p("169.254.0.0/16"), "link-local address", true},
	{p("172.16.0.0/12"), "private address", false},
	{p("192.0.0.0/24"), "IETF protocol assignment", false},
	{p("192.0.2.0/24"), "documentation address", false},
	{p("192.31.196.0/24"), "AS112 address", false},
	{p("192.52.193.0/24"), "AMT address", false},
	{p("192.88.99.0/24"), "6to4 relay anycast address", false},
	{p("192.168.0.0/16"), "private address", false},
	{p("192.175.48.0/24"), "AS112 address", false},
	{p("198.18.0.0/15"), "benchmarking address", false},
	{p("198.51.100.0/24"), "documentation address", false},
	{p("203.0.113.0/24"), "documentation address", false},
	{p("224.0.0.0/4"), "multicast address", true},
	{p("255.255.255.255/32"), "broadcast address", true},
	{p("240.0.0.0/4"), "reserved address", true},
	// IPv6
	{p("::/128"), "unspecified address", true},
	{p("::1/128"), "loopback address", true},
	{p("::ffff:0:0/96"), "IPv4-mapped address", true},
	{p("64:ff9b::/96"), "NAT64 address", false},
	{p("64:ff9b:1::/48"), "NAT64 address", false},
	{p("100::/64"), "discard-only address", false},
	{p("100:0:0:1::/64"), "dummy address", false},
	{p("2001:db8::/32"), "documentation address", false},
	{p("2001:2::/48"), "benchmarking address", false},
	{p("2001::/23"), "IETF protocol assignment", false},
	{p("2002::/16"), "6to4 address", false},
	{p("2620:4f:8000::/48"), "AS112 address", false},
	{p("3fff::/20"), "documentation address", false},
	{p("5f00::/16"), "SRv6 SID", false},
	{p("fc00::/7"), "unique local address", false},
	{p("fe80::/10"), "link-local address", true},
	{p("fec0::/10"), "site-local address", true},
	{p("ff00::/8"), "multicast address", true},
}

var globalUnicast6 = p("2000::/3")

// Special reports why a is not a public unicast address: the reason is ""
// for a public address. never is true for addresses no line can have as its
// external address (loopback, link-local, multicast, unspecified, ...),
// which are rejected even when non-public answers are allowed; the others
// (private, CGNAT, documentation, benchmarking, unique local, ...) are what
// labs and test beds use.
func Special(a netip.Addr) (reason string, never bool) {
	a = a.WithZone("")
	for _, s := range specials {
		if s.prefix.Contains(a) {
			return s.reason, s.never
		}
	}
	if a.Is6() && !a.Is4In6() && !globalUnicast6.Contains(a) {
		return "unallocated IPv6 address", false
	}
	return "", false
}
