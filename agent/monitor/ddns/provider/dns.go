package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNoRecord is returned when a DNS provider answers NOERROR without a
// record of the asked type (NODATA): the provider cannot answer, which is a
// failure, not a fault.
var ErrNoRecord = errors.New("no record of the asked type")

// RcodeError is a DNS answer with an RCODE other than NOERROR (SERVFAIL,
// REFUSED, NXDOMAIN, ...): a failure, not a fault.
type RcodeError struct {
	Rcode int
}

// Error returns e.g. "rcode SERVFAIL".
func (e *RcodeError) Error() string {
	s, ok := dns.RcodeToString[e.Rcode]
	if !ok {
		s = strconv.Itoa(e.Rcode)
	}
	return "rcode " + s
}

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

// network returns "udp4"/"tcp4" or "udp6"/"tcp6": an IP literal server
// chooses its own family; a server given by name is reached over the
// provider's family, so that a TXT answer reflects the family it reports.
func (q *dnsQuerier) network(base string) string {
	if a, err := netip.ParseAddr(q.spec.Server); err == nil {
		if a.Is4() || a.Is4In6() {
			return base + "4"
		}
		return base + "6"
	}
	if q.family == IPv6 {
		return base + "6"
	}
	return base + "4"
}

// Query sends the question and returns the text of the single answer
// record (the address of an A or AAAA record, the string of a TXT record).
func (q *dnsQuerier) Query(ctx context.Context) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.spec.Name), q.spec.Type)
	m.Question[0].Qclass = q.spec.Class
	r, err := exchangeUDP(ctx, q.opts, q.network("udp"), q.addr, m)
	if err != nil {
		return "", err
	}
	if r.Truncated {
		r, err = exchangeTCP(ctx, q.opts, q.network("tcp"), q.addr, m)
		if err != nil {
			return "", fmt.Errorf("tcp retry of truncated answer: %w", err)
		}
	}
	return ExtractAnswer(m, r)
}

// maxDNSMessage is the largest DNS message (TCP length prefix limit); UDP
// reads use a buffer this large so that nothing is silently cut.
const maxDNSMessage = 65535

// dial opens a connection and arranges for ctx's cancellation (not only its
// deadline, see miekg/dns#1399) to unblock I/O.
func dial(ctx context.Context, opts Options, network, addr string) (net.Conn, func(), error) {
	c, err := opts.dial(ctx, network, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s %s: %w", network, addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return c, func() { stop(); _ = c.Close() }, nil
}

// exchangeUDP sends m and waits for the reply with m's ID. Datagrams that do
// not parse, are not responses, or carry another ID are skipped (they may be
// spoofed or late); when only such datagrams arrived before the deadline the
// result is a fault naming the last one, else the transport error.
func exchangeUDP(ctx context.Context, opts Options, network, addr string, m *dns.Msg) (*dns.Msg, error) {
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	c, done, err := dial(ctx, opts, network, addr)
	if err != nil {
		return nil, err
	}
	defer done()
	if _, err := c.Write(wire); err != nil {
		return nil, fmt.Errorf("send query to %s: %w", addr, err)
	}
	buf := make([]byte, maxDNSMessage)
	var bad *FaultError
	for {
		n, err := c.Read(buf)
		if err != nil {
			if bad != nil {
				return nil, bad
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("read answer from %s: %w", addr, context.Cause(ctx))
			}
			return nil, fmt.Errorf("read answer from %s: %w", addr, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			bad = fault("malformed DNS message", string(buf[:n]))
			continue
		}
		if r.Id != m.Id || !r.Response {
			bad = fault("DNS message with wrong ID or not a response", "")
			continue
		}
		return r, nil
	}
}

// exchangeTCP sends m over TCP (two-byte length prefix, RFC 1035 4.2.2) and
// reads one reply, which must carry m's ID.
func exchangeTCP(ctx context.Context, opts Options, network, addr string, m *dns.Msg) (*dns.Msg, error) {
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	c, done, err := dial(ctx, opts, network, addr)
	if err != nil {
		return nil, err
	}
	defer done()
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := c.Write(out); err != nil {
		return nil, fmt.Errorf("send query to %s: %w", addr, err)
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, fmt.Errorf("read answer length from %s: %w", addr, ctxErr(ctx, err))
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", addr, ctxErr(ctx, err))
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil {
		return nil, fault("malformed DNS message", string(buf))
	}
	if r.Id != m.Id {
		return nil, fault("DNS message with wrong ID", "")
	}
	return r, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// ExtractAnswer checks a DNS reply r against the query q and returns the
// text of its single answer record. The reply must carry q's ID, be a
// response to the same question (name, type, class), have RCODE NOERROR
// (else *RcodeError), not be truncated, and hold exactly one record of the
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
		return "", &RcodeError{Rcode: r.Rcode}
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
