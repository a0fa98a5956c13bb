package extip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"imon/agent/probe"
)

// ErrNoRecord is returned when a DNS provider answers NOERROR without a
// record of the asked type (NODATA): the provider cannot answer, which is a
// failure, not a fault.
var ErrNoRecord = errors.New("no record of the asked type")

// dnsQuerier asks one DNS server directly (never through a recursive
// resolver) over UDP, and again over TCP when the answer is truncated.
type dnsQuerier struct {
	spec   Spec
	addr   string // host:port
	family Family
	opts   Options
}

func newDNS(s Spec, opts Options) *dnsQuerier {
	return &dnsQuerier{spec: s, addr: net.JoinHostPort(s.Server, strconv.Itoa(s.Port)), family: s.Family(), opts: opts}
}

// family4or6 returns "4" or "6", the family of the sockets: an IP literal
// server chooses its own family; a server given by name is reached over the
// provider's family, so that a TXT answer reflects the family it reports.
func (q *dnsQuerier) family4or6() string {
	if a, err := netip.ParseAddr(q.spec.Server); err == nil {
		if a.Is4() || a.Is4In6() {
			return "4"
		}
		return "6"
	}
	if q.family == IPv6 {
		return "6"
	}
	return "4"
}

// Query sends the question and returns the text of the single answer
// record (the address of an A or AAAA record, the string of a TXT record).
func (q *dnsQuerier) Query(ctx context.Context) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.spec.Name), q.spec.Type)
	m.Question[0].Qclass = q.spec.Class
	r, err := q.exchange(ctx, m)
	if err != nil {
		return "", err
	}
	return ExtractAnswer(m, r)
}

// exchange sends m through imon's one DNS transport (agent/probe), once
// over UDP (the monitor asks several providers and retries in its next
// round), and turns a reply that was never the answer into a fault.
func (q *dnsQuerier) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	r, err := probe.DNSTransport{Dial: q.opts.Dial}.Exchange(ctx, m, q.family4or6(), q.addr)
	var bad *probe.BadReplyError
	if errors.As(err, &bad) {
		return nil, fault(bad.Reason, string(bad.Raw))
	}
	return r, err
}

// ExtractAnswer checks a DNS reply r against the query q and returns the
// text of its single answer record. The reply must carry q's ID, be a
// response to the same question (name, type, class), have RCODE NOERROR
// (else *probe.RcodeError), not be truncated, and hold exactly one record of the
// asked type and class, owned by the asked name (none: ErrNoRecord). An A
// record must hold an IPv4 address, an AAAA record an IPv6 one, a TXT record
// exactly one string. Everything else is a *FaultError. The text is not yet
// validated as an address: that is ParseAnswer's job.
func ExtractAnswer(q, r *dns.Msg) (string, error) {
	if len(q.Question) != 1 {
		return "", fmt.Errorf("query has %d questions, want 1", len(q.Question))
	}
	qq := q.Question[0]
	switch {
	case r.Id != q.Id:
		return "", fault("DNS message with wrong ID", "")
	case !r.Response:
		return "", fault("DNS message is not a response", "")
	case r.Opcode != q.Opcode:
		return "", fault("DNS response with another opcode", "")
	}
	// A reply without a question section is allowed only with an error
	// RCODE (some servers drop it on REFUSED).
	if len(r.Question) != 0 || r.Rcode == dns.RcodeSuccess {
		if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, qq.Name) ||
			r.Question[0].Qtype != qq.Qtype || r.Question[0].Qclass != qq.Qclass {
			return "", fault("DNS response to another question", "")
		}
	}
	if r.Rcode != dns.RcodeSuccess {
		return "", &probe.RcodeError{Rcode: r.Rcode}
	}
	if r.Truncated {
		return "", fault("truncated DNS response", "")
	}
	var found []dns.RR
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == qq.Qtype {
			found = append(found, rr)
		}
	}
	switch len(found) {
	case 0:
		return "", ErrNoRecord
	case 1:
	default:
		var ss []string
		for _, rr := range found {
			ss = append(ss, rdata(rr))
		}
		return "", fault("several records", strings.Join(ss, " "))
	}
	rr := found[0]
	h := rr.Header()
	if !strings.EqualFold(h.Name, qq.Name) {
		return "", fault("record for another name", h.Name)
	}
	if h.Class != qq.Qclass {
		return "", fault("record of another class", dns.ClassToString[h.Class])
	}
	switch rr := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(rr.A)
		if !ok || !a.Unmap().Is4() {
			return "", fault("A record without an IPv4 address", rr.A.String())
		}
		return a.Unmap().String(), nil
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(rr.AAAA)
		if !ok || len(rr.AAAA) != net.IPv6len {
			return "", fault("AAAA record without an IPv6 address", rr.AAAA.String())
		}
		return a.String(), nil
	case *dns.TXT:
		if len(rr.Txt) != 1 {
			return "", fault("TXT record with several strings", strings.Join(rr.Txt, " "))
		}
		return rr.Txt[0], nil
	default:
		return "", fault("unexpected record type", dns.TypeToString[h.Rrtype])
	}
}

func rdata(rr dns.RR) string {
	s := rr.String()
	h := rr.Header().String()
	return strings.TrimPrefix(s, h)
}
