package probe

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"
)

// DefaultRefresh is how often a Target named by a host name is resolved
// again when Target.Refresh is 0.
const DefaultRefresh = 5 * time.Minute

// Target is a probe target as the user configured it: an IP literal, or a
// host name that is resolved with a Resolver and refreshed now and then. A
// failed refresh keeps the last good address, so that a dead DNS (often dead
// exactly when the WAN is) does not stop the probing of a known address. The
// zero value is not usable; set Host and Resolver. Not safe for concurrent
// use.
type Target struct {
	// Host is the configured name or IP literal.
	Host string
	// Resolver resolves Host when it is a name.
	Resolver Resolver
	// Refresh is how long a resolved address is used before the name is
	// resolved again (DefaultRefresh if 0).
	Refresh time.Duration

	addr netip.Addr
	at   time.Time
}

// Literal reports whether Host is an IP literal (never resolved).
func (t *Target) Literal() bool {
	_, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(t.Host), "[]"))
	return err == nil
}

// Addr returns the address to probe at time now: the literal, the cached
// address while it is fresh, or a new resolution. changed is true when the
// address differs from the one returned before. err is non-nil only when no
// address is known at all; a failed refresh with a cached address is
// returned as refreshErr so that the caller can log it.
func (t *Target) Addr(ctx context.Context, now time.Time) (addr netip.Addr, changed bool, refreshErr, err error) {
	if t.Resolver == nil {
		return netip.Addr{}, false, nil, errors.New("target: no resolver")
	}
	refresh := t.Refresh
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	if t.addr.IsValid() && (t.Literal() || now.Sub(t.at) < refresh) {
		return t.addr, false, nil, nil
	}
	a, rerr := t.Resolver.Resolve(ctx, t.Host)
	if rerr != nil {
		if t.addr.IsValid() {
			t.at = now // retry after another Refresh, not at every call
			return t.addr, false, rerr, nil
		}
		return netip.Addr{}, false, nil, rerr // it names the host
	}
	changed = t.addr.IsValid() && a != t.addr
	t.addr, t.at = a, now
	return a, changed, nil, nil
}
