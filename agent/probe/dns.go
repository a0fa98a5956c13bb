package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// DefaultDNSTimeout bounds one Check when DNSClient.Timeout is 0.
const DefaultDNSTimeout = 2 * time.Second

// ednsSize is the EDNS0 UDP payload size imon advertises (the DNS flag day
// 2020 value).
const ednsSize = 1232

// DNSClient is the real DNSChecker (miekg/dns): an A query, then AAAA if the
// name has no A record; over UDP (sent up to three times within the
// timeout), repeated over TCP when the answer is truncated.
type DNSClient struct {
	// Timeout bounds a whole Check, both queries and the TCP retry
	// included (DefaultDNSTimeout if 0).
	Timeout time.Duration
	// Resolver resolves a server given as a host name (nil: a NetResolver).
	Resolver Resolver
	logger   *slog.Logger
}

// NewDNSChecker returns the real DNSChecker. A nil logger discards.
func NewDNSChecker(logger *slog.Logger) *DNSClient {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DNSClient{logger: logger}
}

var _ DNSChecker = (*DNSClient)(nil)

// ErrNoRecords is returned by Check when the server answered NOERROR
// without any A or AAAA record.
var ErrNoRecords = errors.New("no records")

// Check implements DNSChecker.
func (c *DNSClient) Check(ctx context.Context, server, name string) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultDNSTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.check(ctx, server, name); err != nil {
		return fmt.Errorf("dns query %q on %s: %w", name, server, err)
	}
	return nil
}

func (c *DNSClient) check(ctx context.Context, server, name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	addr, err := c.serverAddr(ctx, server)
	if err != nil {
		return err
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qt)
		m.SetEdns0(ednsSize, false)
		r, err := c.exchange(ctx, m, addr)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess {
			return &RcodeError{Rcode: r.Rcode}
		}
		if len(r.Answer) > 0 {
			return nil
		}
	}
	return ErrNoRecords
}

// udpTries is how many times a UDP query is sent within a Check's timeout
// before it gives up, as resolvers do: on a lossy link one lost datagram
// must not make a live server look dead.
const udpTries = 3

// exchange sends one query through imon's DNS transport.
func (c *DNSClient) exchange(ctx context.Context, m *dns.Msg, addr string) (*dns.Msg, error) {
	return DNSTransport{UDPTries: udpTries}.Exchange(ctx, m, "", addr)
}

// serverAddr turns "IP", "IP:port", "[IPv6]:port", "name" or "name:port"
// into an "IP:port" dial address.
func (c *DNSClient) serverAddr(ctx context.Context, server string) (string, error) {
	if a, err := netip.ParseAddr(server); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 53).String(), nil
	}
	if ap, err := netip.ParseAddrPort(server); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String(), nil
	}
	host, port := server, "53"
	if h, p, err := net.SplitHostPort(server); err == nil {
		host, port = h, p
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Errorf("bad server port %q", port)
	}
	res := c.Resolver
	if res == nil {
		res = &NetResolver{logger: c.logger}
	}
	a, err := res.Resolve(ctx, host)
	if err != nil {
		return "", err
	}
	return netip.AddrPortFrom(a, uint16(pn)).String(), nil
}
