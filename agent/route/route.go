// Package route is imon's route manager: it keeps the kernel's routing state
// for the failover monitor's two WAN links, and touches nothing else.
//
// What it owns, all tagged with the instance's route protocol
// ([Config.Protocol], by default [Protocol], 201):
//
//   - one routing table per WAN (table-base, table-base+1) holding that WAN's
//     default route via its gateway and its connected subnet;
//   - three ip rules per WAN at explicit priorities (rule-priority+3*i ...):
//     "from WANIP lookup main suppress_prefixlength 0" (specific routes such
//     as the LAN still win for traffic from the WAN address), "from WANIP
//     lookup T" and "fwmark M lookup T", so that probes of a WAN leave
//     through it whether or not it is the active one;
//   - one default route in the main table via the active WAN with the
//     configured metric, switched with an atomic replace (never a moment
//     without a default route).
//
// Ownership is decided by the protocol number, and for rules also by the
// instance's priority range: a route or rule this instance did not tag is
// never adopted, changed or deleted, whether the admin, dhcpcd or another
// imon instance (with its own protocol number) made it. A foreign default
// route with the same metric is an error ([ErrForeignDefault]) rather than
// a replace target; one with a lower metric is reported by
// [Manager.Shadowed]; one with a higher metric is left alone.
//
// The kernel sits behind the small [Kernel] interface: [Netlink] is the real
// one (vishvananda/netlink, in the caller's or a given network namespace),
// [Fake] is an in-memory kernel that renders its state as `ip rule`/`ip
// route` lines for golden tests. [Manager] holds the logic; [Watch] streams
// link, address and route changes.
//
// # Caveats
//
// Taking a link administratively down deletes every IPv4 route through it,
// and the kernel does not restore them on up: callers re-apply
// ([Manager.SyncPolicy], [Manager.SetDefault]) on every link change. Carrier
// loss keeps routes (flagged linkdown) and they stay in use: switching away
// is the caller's job.
package route

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Protocol is the default route (and rule) protocol number an instance tags
// everything it creates with (`proto 201`, failover key route-protocol).
// It is unassigned in iproute2's rt_protos and outside FRR's range
// (186-197).
const Protocol = 201

// MainTable is the kernel's main routing table.
const MainTable = 254

// Scopes of a route (rtm_scope).
const (
	ScopeUniverse = 0
	ScopeLink     = 253
)

// Errors of the Kernel interface; implementations wrap them so that
// errors.Is works (the netlink implementation returns the syscall.Errno,
// which matches through Is).
var (
	// ErrExist: the route or rule already exists (EEXIST).
	ErrExist = errors.New("file exists")
	// ErrNotFound: no such route, rule or link (ESRCH/ENOENT/ENODEV).
	ErrNotFound = errors.New("not found")
	// ErrUnreachable: the gateway is not reachable on the link, or the link
	// is down (ENETUNREACH).
	ErrUnreachable = errors.New("network is unreachable")
	// ErrForeignDefault: a default route imon does not own already uses the
	// metric imon was told to use.
	ErrForeignDefault = errors.New("a foreign default route uses the same metric")
	// ErrForeignRoute: a route imon does not own sits in one of the
	// instance's tables where imon wants one of its own (the same
	// destination and metric).
	ErrForeignRoute = errors.New("a foreign route is in the way")
)

// Route is an IPv4 route.
type Route struct {
	Table     int          // routing table (MainTable = main)
	Dst       netip.Prefix // destination; 0.0.0.0/0 = default
	Gw        netip.Addr   // gateway, invalid = none (a link route)
	LinkIndex int          // output interface index
	Dev       string       // output interface name (informational)
	Src       netip.Addr   // preferred source, invalid = none
	Metric    int          // priority
	Proto     int          // protocol tag
	Scope     int          // ScopeUniverse or ScopeLink
	LinkDown  bool         // RTNH_F_LINKDOWN: the link has no carrier (listing only)
	// Unreachable makes it an `unreachable` route (no link, no gateway):
	// a lookup that ends on it fails with ENETUNREACH.
	Unreachable bool
}

// IsDefault reports whether r is a default route.
func (r Route) IsDefault() bool { return r.Dst.Bits() == 0 }

// String renders r as `ip route` would print it (with table and proto).
func (r Route) String() string {
	var b strings.Builder
	if r.Unreachable {
		b.WriteString("unreachable ")
	}
	if r.IsDefault() {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gw.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Gw)
	}
	dev := r.Dev
	if dev == "" && r.LinkIndex != 0 {
		dev = fmt.Sprintf("if%d", r.LinkIndex)
	}
	if dev != "" {
		fmt.Fprintf(&b, " dev %s", dev)
	}
	if r.Table != MainTable && r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	fmt.Fprintf(&b, " proto %d", r.Proto)
	if r.Scope == ScopeLink {
		b.WriteString(" scope link")
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", r.Src)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.LinkDown {
		b.WriteString(" linkdown")
	}
	return b.String()
}

// same reports whether a and b are the same route for reconciliation
// (LinkDown and Dev are ignored).
func (r Route) same(o Route) bool {
	return r.Table == o.Table && r.Dst == o.Dst && r.Gw == o.Gw && r.LinkIndex == o.LinkIndex &&
		r.Src == o.Src && r.Metric == o.Metric && r.Proto == o.Proto && r.Scope == o.Scope &&
		r.Unreachable == o.Unreachable
}

// sameKey reports whether a and b are the same route for the kernel's
// IPv4 add and replace: the same table, destination and metric (a replace
// of one overwrites the other, whoever owns it).
func sameKey(a, b Route) bool { return a.Table == b.Table && a.Dst == b.Dst && a.Metric == b.Metric }

// Rule is an IPv4 policy routing rule. Exactly one of Src and Mark selects
// traffic; Table is the table looked up.
type Rule struct {
	Priority int
	Src      netip.Prefix // from PREFIX, invalid = all
	Mark     uint32       // fwmark, 0 = none
	Table    int
	// SuppressPrefixlen, when >= 0, rejects lookup results with a prefix
	// length <= it (0 = ignore default routes). -1 = unset.
	SuppressPrefixlen int
	Proto             int
}

// String renders r as `ip rule` would print it.
func (r Rule) String() string { return fmt.Sprintf("%d: %s", r.Priority, r.body()) }

func (r Rule) body() string {
	var b strings.Builder
	b.WriteString("from ")
	if r.Src.IsValid() {
		if r.Src.Bits() == 32 {
			b.WriteString(r.Src.Addr().String())
		} else {
			b.WriteString(r.Src.String())
		}
	} else {
		b.WriteString("all")
	}
	if r.Mark != 0 {
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
	}
	if r.Table == MainTable {
		b.WriteString(" lookup main")
	} else {
		fmt.Fprintf(&b, " lookup %d", r.Table)
	}
	if r.SuppressPrefixlen >= 0 {
		fmt.Fprintf(&b, " suppress_prefixlength %d", r.SuppressPrefixlen)
	}
	fmt.Fprintf(&b, " proto %d", r.Proto)
	return b.String()
}

func (r Rule) same(o Rule) bool { return r == o }

// Addr is one IPv4 address of a link.
type Addr struct {
	Prefix netip.Prefix // address with its prefix length (192.0.2.2/29)
	Peer   netip.Prefix // point-to-point peer, invalid = none
}

// Link is the state of a network interface.
type Link struct {
	Index   int
	Name    string
	AdminUp bool // IFF_UP
	Carrier bool // IFF_LOWER_UP
	Addrs   []Addr
}

// IPv4 returns the first IPv4 address of l (invalid when none).
func (l Link) IPv4() Addr {
	for _, a := range l.Addrs {
		if a.Prefix.Addr().Is4() {
			return a
		}
	}
	return Addr{}
}

// OnLink reports whether gw is directly reachable through one of l's IPv4
// subnets (or is its point-to-point peer).
func (l Link) OnLink(gw netip.Addr) bool {
	for _, a := range l.Addrs {
		if a.Prefix.Masked().Contains(gw) && a.Prefix.Addr() != gw {
			return true
		}
		if a.Peer.IsValid() && a.Peer.Contains(gw) {
			return true
		}
	}
	return false
}

// Kernel is the small part of rtnetlink the manager uses. Implementations
// report kernel errors so that errors.Is matches ErrExist, ErrNotFound and
// ErrUnreachable.
type Kernel interface {
	// LinkByName returns the named interface with its IPv4 addresses, or
	// an error matching ErrNotFound.
	LinkByName(name string) (Link, error)
	// Routes lists the IPv4 routes of table (0 = every table).
	Routes(table int) ([]Route, error)
	// RouteAdd adds r; an existing route with the same table, destination
	// and metric gives ErrExist.
	RouteAdd(r Route) error
	// RouteReplace replaces the route with the same table, destination and
	// metric (whoever owns it), or adds r.
	RouteReplace(r Route) error
	// RouteDel deletes the route matching r exactly (table, destination,
	// gateway, link, metric, protocol); ErrNotFound when none.
	RouteDel(r Route) error
	// Rules lists the IPv4 rules.
	Rules() ([]Rule, error)
	// RuleAdd adds r (ErrExist for an identical rule).
	RuleAdd(r Rule) error
	// RuleDel deletes r (ErrNotFound when missing).
	RuleDel(r Rule) error
	// ConntrackDeleteNAT deletes the IPv4 conntrack entries whose reply
	// goes to addr (connections masqueraded to addr) and returns how many.
	ConntrackDeleteNAT(addr netip.Addr) (int, error)
}
