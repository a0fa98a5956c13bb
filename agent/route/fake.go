package route

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory Kernel with the kernel's semantics that matter to
// the manager (EEXIST on add, replace by table/destination/metric, ESRCH on
// a missing delete, ENETUNREACH for a gateway off the link's subnets or a
// link that is down, routes removed when a link goes admin-down). String
// renders the state as `ip rule`/`ip route` lines for golden tests. It is
// safe for concurrent use.
type Fake struct {
	mu        sync.Mutex // guards all following fields
	links     map[string]*Link
	routes    []Route
	rules     []Rule
	conntrack map[netip.Addr]int // entries per reply-dst address
	deleted   []netip.Addr       // ConntrackDeleteNAT calls
	fail      func(op string) error
	ops       []string
	nextIndex int
}

var _ Kernel = (*Fake)(nil)

// NewFake returns an empty fake kernel.
func NewFake() *Fake {
	return &Fake{links: map[string]*Link{}, conntrack: map[netip.Addr]int{}, nextIndex: 2}
}

// AddLink adds an interface, admin up with carrier, with the given
// addresses ("192.0.2.2/29"); it adds the connected route to main as the
// kernel does.
func (f *Fake) AddLink(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := &Link{Index: f.nextIndex, Name: name, AdminUp: true, Carrier: true}
	f.nextIndex++
	f.links[name] = l
	for _, a := range addrs {
		f.addAddrLocked(l, netip.MustParsePrefix(a))
	}
}

func (f *Fake) addAddrLocked(l *Link, p netip.Prefix) {
	l.Addrs = append(l.Addrs, Addr{Prefix: p})
	if l.AdminUp {
		f.routes = append(f.routes, Route{Table: MainTable, Dst: p.Masked(), LinkIndex: l.Index, Dev: l.Name, Src: p.Addr(), Proto: 2, Scope: ScopeLink})
	}
}

// SetAddrs replaces the IPv4 addresses of a link (a DHCP renew); routes of
// the old subnets through the link disappear, as in the kernel.
func (f *Fake) SetAddrs(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[name]
	var old []netip.Prefix
	for _, a := range l.Addrs {
		old = append(old, a.Prefix)
	}
	l.Addrs = nil
	f.routes = slices.DeleteFunc(f.routes, func(r Route) bool {
		if r.LinkIndex != l.Index {
			return false
		}
		for _, p := range old {
			if r.Dst == p.Masked() || (r.Gw.IsValid() && p.Masked().Contains(r.Gw)) || r.Src == p.Addr() {
				return true
			}
		}
		return false
	})
	for _, a := range addrs {
		f.addAddrLocked(l, netip.MustParsePrefix(a))
	}
}

// DelLink removes an interface and its routes.
func (f *Fake) DelLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[name]
	delete(f.links, name)
	f.routes = slices.DeleteFunc(f.routes, func(r Route) bool { return r.LinkIndex == l.Index })
}

// SetCarrier sets a link's carrier (routes stay, flagged linkdown).
func (f *Fake) SetCarrier(name string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[name].Carrier = on
}

// SetAdminUp sets a link administratively up or down. Down deletes every
// route through it; up restores only the connected routes.
func (f *Fake) SetAdminUp(name string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[name]
	if l.AdminUp == up {
		return
	}
	l.AdminUp = up
	if !up {
		f.routes = slices.DeleteFunc(f.routes, func(r Route) bool { return r.LinkIndex == l.Index })
		return
	}
	addrs := l.Addrs
	l.Addrs = nil
	for _, a := range addrs {
		f.addAddrLocked(l, a.Prefix)
	}
}

// AddForeign adds a route that imon does not own (as dhcpcd would),
// bypassing every check.
func (f *Fake) AddForeign(r Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Dev != "" && r.LinkIndex == 0 {
		if l, ok := f.links[r.Dev]; ok {
			r.LinkIndex = l.Index
		}
	}
	f.routes = append(f.routes, r)
}

// AddForeignRule adds a rule that imon does not own.
func (f *Fake) AddForeignRule(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
}

// SetConntrack records n conntrack entries masqueraded to addr.
func (f *Fake) SetConntrack(addr netip.Addr, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conntrack[addr] = n
}

// ConntrackDeleted lists the addresses ConntrackDeleteNAT was called for.
func (f *Fake) ConntrackDeleted() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deleted)
}

// FailWith makes every operation for which fn returns an error fail with
// it (op is "RouteAdd", "RouteReplace", "RouteDel", "RuleAdd", "RuleDel",
// "LinkByName", "Routes", "Rules" or "Conntrack"); nil clears it.
func (f *Fake) FailWith(fn func(op string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fn
}

// Ops returns and clears the list of mutating operations performed
// ("RouteReplace default via ..."), to assert their order.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

func (f *Fake) check(op string) error {
	if f.fail != nil {
		return f.fail(op)
	}
	return nil
}

// LinkByName implements Kernel.
func (f *Fake) LinkByName(name string) (Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("LinkByName"); err != nil {
		return Link{}, err
	}
	l, ok := f.links[name]
	if !ok {
		return Link{}, fmt.Errorf("interface %s: %w", name, ErrNotFound)
	}
	c := *l
	c.Addrs = slices.Clone(l.Addrs)
	return c, nil
}

func (f *Fake) linkByIndex(i int) *Link {
	for _, l := range f.links {
		if l.Index == i {
			return l
		}
	}
	return nil
}

// Routes implements Kernel.
func (f *Fake) Routes(table int) ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Routes"); err != nil {
		return nil, err
	}
	var out []Route
	for _, r := range f.routes {
		if table == 0 || r.Table == table {
			if l := f.linkByIndex(r.LinkIndex); l != nil {
				r.Dev = l.Name
				r.LinkDown = !l.Carrier
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *Fake) validate(r Route) error {
	if r.Unreachable {
		return nil
	}
	l := f.linkByIndex(r.LinkIndex)
	if l == nil {
		return fmt.Errorf("no device %d: %w", r.LinkIndex, ErrNotFound)
	}
	if !l.AdminUp {
		return fmt.Errorf("link %s down: %w", l.Name, ErrUnreachable)
	}
	if r.Gw.IsValid() && !l.OnLink(r.Gw) {
		return fmt.Errorf("gateway %s not on %s: %w", r.Gw, l.Name, ErrUnreachable)
	}
	return nil
}

// RouteAdd implements Kernel.
func (f *Fake) RouteAdd(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("RouteAdd"); err != nil {
		return err
	}
	if err := f.validate(r); err != nil {
		return err
	}
	for _, o := range f.routes {
		if sameKey(o, r) {
			return fmt.Errorf("ip route add %s: %w", r, ErrExist)
		}
	}
	r.Dev, r.LinkDown = "", false
	f.routes = append(f.routes, r)
	f.ops = append(f.ops, "RouteAdd "+f.render(r))
	return nil
}

// RouteReplace implements Kernel.
func (f *Fake) RouteReplace(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("RouteReplace"); err != nil {
		return err
	}
	if err := f.validate(r); err != nil {
		return err
	}
	r.Dev, r.LinkDown = "", false
	f.ops = append(f.ops, "RouteReplace "+f.render(r))
	for i, o := range f.routes {
		if sameKey(o, r) {
			f.routes[i] = r
			return nil
		}
	}
	f.routes = append(f.routes, r)
	return nil
}

// RouteDel implements Kernel.
func (f *Fake) RouteDel(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("RouteDel"); err != nil {
		return err
	}
	for i, o := range f.routes {
		if sameKey(o, r) && o.Gw == r.Gw && o.LinkIndex == r.LinkIndex && o.Proto == r.Proto && o.Unreachable == r.Unreachable {
			f.routes = slices.Delete(f.routes, i, i+1)
			f.ops = append(f.ops, "RouteDel "+f.render(r))
			return nil
		}
	}
	return fmt.Errorf("ip route del %s: %w", r, ErrNotFound)
}

// Rules implements Kernel.
func (f *Fake) Rules() ([]Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Rules"); err != nil {
		return nil, err
	}
	return slices.Clone(f.rules), nil
}

// RuleAdd implements Kernel.
func (f *Fake) RuleAdd(r Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("RuleAdd"); err != nil {
		return err
	}
	if slices.Contains(f.rules, r) {
		return fmt.Errorf("ip rule add %s: %w", r, ErrExist)
	}
	f.rules = append(f.rules, r)
	f.ops = append(f.ops, "RuleAdd "+r.String())
	return nil
}

// RuleDel implements Kernel.
func (f *Fake) RuleDel(r Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("RuleDel"); err != nil {
		return err
	}
	i := slices.Index(f.rules, r)
	if i < 0 {
		return fmt.Errorf("ip rule del %s: %w", r, ErrNotFound)
	}
	f.rules = slices.Delete(f.rules, i, i+1)
	f.ops = append(f.ops, "RuleDel "+r.String())
	return nil
}

// ConntrackDeleteNAT implements Kernel.
func (f *Fake) ConntrackDeleteNAT(addr netip.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Conntrack"); err != nil {
		return 0, err
	}
	n := f.conntrack[addr]
	delete(f.conntrack, addr)
	f.deleted = append(f.deleted, addr)
	return n, nil
}

func (f *Fake) render(r Route) string {
	if l := f.linkByIndex(r.LinkIndex); l != nil {
		r.Dev = l.Name
		r.LinkDown = !l.Carrier
	}
	return r.String()
}

// String renders the state: rules by priority, then routes by table,
// destination and metric, one per line, as `ip rule add ...` and `ip route
// add ...` lines. The kernel's own connected routes (proto 2) are left out.
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	rules := slices.Clone(f.rules)
	slices.SortStableFunc(rules, func(a, b Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	routes := slices.Clone(f.routes)
	slices.SortStableFunc(routes, func(a, b Route) int {
		return cmp.Or(cmp.Compare(tableOrder(a.Table), tableOrder(b.Table)), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()),
			a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Metric, b.Metric))
	})
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "ip rule add pref %d %s\n", r.Priority, r.body())
	}
	for _, r := range routes {
		if r.Proto == 2 {
			continue
		}
		fmt.Fprintf(&b, "ip route add %s\n", f.render(r))
	}
	return b.String()
}

// tableOrder sorts the main table first, then the numbered tables.
func tableOrder(t int) int {
	if t == MainTable {
		return -1
	}
	return t
}
