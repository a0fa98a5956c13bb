package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// DefaultResolveTimeout bounds one Resolve when NetResolver.Timeout is 0.
const DefaultResolveTimeout = 3 * time.Second

// NetResolver is the real Resolver, on the system's resolver (net.Resolver:
// /etc/hosts, then the servers of /etc/resolv.conf).
type NetResolver struct {
	// Timeout bounds one lookup (DefaultResolveTimeout if 0).
	Timeout time.Duration
	// Network is "ip" (both families, IPv4 preferred; the default), "ip4"
	// or "ip6".
	Network string
	// Resolver does the lookups; nil means net.DefaultResolver. Tests point
	// a PreferGo resolver's Dial at their own DNS server.
	Resolver *net.Resolver
	logger   *slog.Logger
}

// NewResolver returns the real Resolver. A nil logger discards.
func NewResolver(logger *slog.Logger) *NetResolver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &NetResolver{logger: logger}
}

var _ Resolver = (*NetResolver)(nil)

// Resolve implements Resolver.
func (r *NetResolver) Resolve(ctx context.Context, host string) (netip.Addr, error) {
	h := strings.TrimSpace(host)
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "" {
		return netip.Addr{}, errors.New("resolve: empty host name")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap(), nil
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultResolveTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := r.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	network := r.Network
	if network == "" {
		network = "ip"
	}
	addrs, err := res.LookupNetIP(ctx, network, h)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.Name != "" {
			return netip.Addr{}, err // "lookup NAME on SERVER: no such host"
		}
		return netip.Addr{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	if a, ok := pickAddr(addrs); ok {
		if r.logger != nil {
			r.logger.Debug("resolved", "host", h, "addr", a)
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("resolve %q: no addresses", host)
}

// pickAddr prefers the first IPv4 address, then the first IPv6 one.
func pickAddr(addrs []netip.Addr) (netip.Addr, bool) {
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			return a, true
		}
	}
	for _, a := range addrs {
		if a.IsValid() {
			return a, true
		}
	}
	return netip.Addr{}, false
}
