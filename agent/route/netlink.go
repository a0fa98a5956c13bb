package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netlink is the real Kernel: rtnetlink through one netlink handle, in the
// caller's network namespace or in a given one.
type Netlink struct {
	h *netlink.Handle
}

var _ Kernel = (*Netlink)(nil)

// NewNetlink opens a netlink handle in the current network namespace.
func NewNetlink() (*Netlink, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &Netlink{h: h}, nil
}

// NewNetlinkAt opens a netlink handle in network namespace ns (tests run
// the manager inside a namespace they created this way).
func NewNetlinkAt(ns netns.NsHandle) (*Netlink, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("open netlink in netns: %w", err)
	}
	return &Netlink{h: h}, nil
}

// Close releases the handle.
func (n *Netlink) Close() { n.h.Close() }

// Handle exposes the netlink handle (tests use it for RouteGetWithOptions).
func (n *Netlink) Handle() *netlink.Handle { return n.h }

// retry runs a dump again when the kernel reports it was interrupted by a
// concurrent change (netlink.ErrDumpInterrupted: the dump is retried).
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// LinkByName implements Kernel.
func (n *Netlink) LinkByName(name string) (Link, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return Link{}, fmt.Errorf("interface %s: %w", name, ErrNotFound)
		}
		return Link{}, fmt.Errorf("interface %s: %w", name, err)
	}
	return n.linkOf(l)
}

func (n *Netlink) linkOf(l netlink.Link) (Link, error) {
	a := l.Attrs()
	out := Link{
		Index:   a.Index,
		Name:    a.Name,
		AdminUp: a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
	}
	addrs, err := retry(func() ([]netlink.Addr, error) { return n.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return out, fmt.Errorf("addresses of %s: %w", a.Name, err)
	}
	for _, ad := range addrs {
		p, ok := prefixOf(ad.IPNet)
		if !ok {
			continue
		}
		x := Addr{Prefix: p}
		if pp, ok := prefixOf(ad.Peer); ok && pp.Addr() != p.Addr() {
			x.Peer = pp.Masked()
		}
		out.Addrs = append(out.Addrs, x)
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// Routes implements Kernel.
func (n *Netlink) Routes(table int) ([]Route, error) {
	rs, err := retry(func() ([]netlink.Route, error) {
		return n.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list routes of table %d: %w", table, err)
	}
	names := map[int]string{}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		if r.Type != unix.RTN_UNICAST && r.Type != unix.RTN_UNREACHABLE {
			continue
		}
		x := Route{
			Table:       r.Table,
			Dst:         netip.MustParsePrefix("0.0.0.0/0"),
			LinkIndex:   r.LinkIndex,
			Metric:      r.Priority,
			Proto:       int(r.Protocol),
			Scope:       int(r.Scope),
			LinkDown:    r.Flags&unix.RTNH_F_LINKDOWN != 0,
			Unreachable: r.Type == unix.RTN_UNREACHABLE,
		}
		if p, ok := prefixOf(r.Dst); ok {
			x.Dst = p
		}
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			x.Gw = a.Unmap()
		}
		if a, ok := netip.AddrFromSlice(r.Src); ok {
			x.Src = a.Unmap()
		}
		if x.LinkIndex != 0 {
			name, ok := names[x.LinkIndex]
			if !ok {
				if l, err := n.h.LinkByIndex(x.LinkIndex); err == nil {
					name = l.Attrs().Name
				}
				names[x.LinkIndex] = name
			}
			x.Dev = name
		}
		out = append(out, x)
	}
	return out, nil
}

func (n *Netlink) nlRoute(r Route) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: r.LinkIndex,
		Gw:        ipOf(r.Gw),
		Src:       ipOf(r.Src),
		Priority:  r.Metric,
		Table:     r.Table,
		Protocol:  netlink.RouteProtocol(r.Proto),
		Scope:     netlink.Scope(r.Scope),
		Type:      unix.RTN_UNICAST,
	}
	if r.Unreachable {
		nr.Type = unix.RTN_UNREACHABLE
		nr.LinkIndex = 0
	}
	if r.IsDefault() {
		nr.Dst = ipnet(netip.MustParsePrefix("0.0.0.0/0"))
	} else {
		nr.Dst = ipnet(r.Dst.Masked())
	}
	return nr
}

// RouteAdd implements Kernel.
func (n *Netlink) RouteAdd(r Route) error {
	if err := n.h.RouteAdd(n.nlRoute(r)); err != nil {
		return fmt.Errorf("ip route add %s: %w", r, mapErr(err))
	}
	return nil
}

// RouteReplace implements Kernel.
func (n *Netlink) RouteReplace(r Route) error {
	if err := n.h.RouteReplace(n.nlRoute(r)); err != nil {
		return fmt.Errorf("ip route replace %s: %w", r, mapErr(err))
	}
	return nil
}

// RouteDel implements Kernel.
func (n *Netlink) RouteDel(r Route) error {
	if err := n.h.RouteDel(n.nlRoute(r)); err != nil {
		return fmt.Errorf("ip route del %s: %w", r, mapErr(err))
	}
	return nil
}

// Rules implements Kernel.
func (n *Netlink) Rules() ([]Rule, error) {
	rs, err := retry(func() ([]netlink.Rule, error) { return n.h.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	out := make([]Rule, 0, len(rs))
	for _, r := range rs {
		x := Rule{Priority: r.Priority, Mark: r.Mark, Table: r.Table, SuppressPrefixlen: r.SuppressPrefixlen, Proto: int(r.Protocol)}
		if p, ok := prefixOf(r.Src); ok {
			x.Src = p
		}
		out = append(out, x)
	}
	return out, nil
}

func nlRule(r Rule) *netlink.Rule {
	nr := netlink.NewRule() // sets the -1 "unset" fields; a zero Rule would match priority 0, table 0
	nr.Family = netlink.FAMILY_V4
	nr.Priority = r.Priority
	nr.Table = r.Table
	nr.Mark = r.Mark
	if r.Mark != 0 {
		m := uint32(0xffffffff)
		nr.Mask = &m
	}
	if r.Src.IsValid() {
		nr.Src = ipnet(r.Src)
	}
	nr.SuppressPrefixlen = r.SuppressPrefixlen
	nr.Protocol = uint8(r.Proto)
	return nr
}

// RuleAdd implements Kernel.
func (n *Netlink) RuleAdd(r Rule) error {
	if err := n.h.RuleAdd(nlRule(r)); err != nil {
		return fmt.Errorf("ip rule add %s: %w", r, mapErr(err))
	}
	return nil
}

// RuleDel implements Kernel.
func (n *Netlink) RuleDel(r Rule) error {
	if err := n.h.RuleDel(nlRule(r)); err != nil {
		return fmt.Errorf("ip rule del %s: %w", r, mapErr(err))
	}
	return nil
}

// ConntrackDeleteNAT implements Kernel: it deletes the IPv4 entries whose
// reply direction is addressed to addr (`conntrack -D --reply-dst addr`).
func (n *Netlink) ConntrackDeleteNAT(addr netip.Addr) (int, error) {
	f := &netlink.ConntrackFilter{}
	if err := f.AddIP(netlink.ConntrackReplyDstIP, addr.AsSlice()); err != nil {
		return 0, fmt.Errorf("conntrack filter: %w", err)
	}
	c, err := n.h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	if err != nil {
		return int(c), fmt.Errorf("conntrack delete reply-dst %s: %w", addr, err)
	}
	return int(c), nil
}

// mapErr keeps the errno and adds the package sentinel it corresponds to.
func mapErr(err error) error {
	switch {
	case errors.Is(err, unix.EEXIST):
		return kernelError{err, ErrExist}
	case errors.Is(err, unix.ESRCH), errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV):
		return kernelError{err, ErrNotFound}
	case errors.Is(err, unix.ENETUNREACH):
		return kernelError{err, ErrUnreachable}
	}
	return err
}

// kernelError is a kernel error that also matches a package sentinel.
type kernelError struct{ err, sentinel error }

// Error returns the kernel's message.
func (e kernelError) Error() string { return e.err.Error() }

// Unwrap exposes both the errno and the sentinel to errors.Is.
func (e kernelError) Unwrap() []error { return []error{e.err, e.sentinel} }
