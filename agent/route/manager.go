package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// UnreachableMetric is the metric of the `unreachable default` route imon
// keeps at the bottom of each WAN table: when the WAN's own default route is
// gone (link down, no address), a probe steered into the table fails
// instead of falling through to the main table and leaving through the
// other WAN.
const UnreachableMetric = 0x7fffffff

// RulesPerWAN is the number of rule priorities each WAN uses.
const RulesPerWAN = 3

// WAN is one failover link as the manager sees it.
type WAN struct {
	If string     // interface name
	GW netip.Addr // gateway
}

// Config is what the manager needs from the failover configuration. Two
// instances on one router must differ in every range and in Protocol
// (config.CheckInstances refuses overlaps): the protocol is what tells
// this instance's routes from another's.
type Config struct {
	WANs         []WAN  // 0 = primary, 1 = standby
	Metric       int    // metric of the main-table default route
	TableBase    int    // table of WAN 0; WAN i uses TableBase+i
	RulePriority int    // first rule priority; WAN i uses RulePriority+RulesPerWAN*i ... +2
	FwmarkBase   uint32 // fwmark of WAN 0's probes; WAN i uses FwmarkBase+i
	Protocol     int    // route and rule protocol of everything this instance creates (0 = [Protocol])
}

// Proto is the protocol number this instance tags its routes and rules
// with.
func (c Config) Proto() int {
	if c.Protocol == 0 {
		return Protocol
	}
	return c.Protocol
}

// ownsRoute reports whether this instance created r: it carries the
// instance's protocol. (Where the route may be, main table or the WAN
// tables, is up to the caller.)
func (c Config) ownsRoute(r Route) bool { return r.Proto == c.Proto() }

// ownsRule reports whether this instance created r: its protocol, at one
// of its priorities.
func (c Config) ownsRule(r Rule) bool { return r.Proto == c.Proto() && c.ownsPriority(r.Priority) }

// Table is the routing table of WAN i.
func (c Config) Table(i int) int { return c.TableBase + i }

// Mark is the fwmark of WAN i's probes.
func (c Config) Mark(i int) uint32 { return c.FwmarkBase + uint32(i) }

func (c Config) ownsPriority(p int) bool {
	return p >= c.RulePriority && p < c.RulePriority+RulesPerWAN*len(c.WANs)
}

// Problem is why a WAN cannot have its routes: no interface, no IPv4
// address, interface down, or a gateway outside its subnets.
type Problem struct {
	WAN    int
	Reason string
}

// Error returns the reason.
func (p *Problem) Error() string { return p.Reason }

// ErrNoRoute is matched (errors.Is) by Problems.
var ErrNoRoute = errors.New("wan not routable")

// Is makes a Problem match ErrNoRoute.
func (p *Problem) Is(target error) bool { return target == ErrNoRoute }

// Usable checks that WAN i can be routed through link l: it exists, is
// administratively up, has an IPv4 address, and its gateway is on one of
// its subnets. Carrier is not required (routes survive carrier loss).
func (c Config) Usable(i int, l Link) error {
	w := c.WANs[i]
	switch {
	case l.Index == 0:
		return &Problem{i, fmt.Sprintf("interface %s not found", w.If)}
	case !l.AdminUp:
		return &Problem{i, fmt.Sprintf("interface %s is down", w.If)}
	case !l.IPv4().Prefix.IsValid():
		return &Problem{i, fmt.Sprintf("interface %s has no IPv4 address", w.If)}
	case !l.OnLink(w.GW):
		var ps []string
		for _, a := range l.Addrs {
			ps = append(ps, a.Prefix.String())
		}
		return &Problem{i, fmt.Sprintf("gateway %s is not in the subnet of %s (%v)", w.GW, w.If, ps)}
	}
	return nil
}

// Desired returns the routes and rules WAN i needs with link l: the table's
// unreachable fallback and fwmark rule always; its default and connected
// routes and its source rules when the link is usable.
func Desired(c Config, i int, l Link) ([]Route, []Rule) {
	t := c.Table(i)
	p := c.RulePriority + RulesPerWAN*i
	proto := c.Proto()
	def := netip.MustParsePrefix("0.0.0.0/0")
	routes := []Route{{Table: t, Dst: def, Metric: UnreachableMetric, Proto: proto, Unreachable: true}}
	rules := []Rule{{Priority: p + 2, Mark: c.Mark(i), Table: t, SuppressPrefixlen: -1, Proto: proto}}
	if c.Usable(i, l) != nil {
		return routes, rules
	}
	a := l.IPv4()
	connected := a.Prefix.Masked()
	if a.Peer.IsValid() {
		connected = a.Peer
	}
	routes = append(routes,
		Route{Table: t, Dst: def, Gw: c.WANs[i].GW, LinkIndex: l.Index, Proto: proto},
		Route{Table: t, Dst: connected, LinkIndex: l.Index, Src: a.Prefix.Addr(), Proto: proto, Scope: ScopeLink},
	)
	src := netip.PrefixFrom(a.Prefix.Addr(), 32)
	rules = append(rules,
		Rule{Priority: p, Src: src, Table: MainTable, SuppressPrefixlen: 0, Proto: proto},
		Rule{Priority: p + 1, Src: src, Table: t, SuppressPrefixlen: -1, Proto: proto},
	)
	return routes, rules
}

// Manager keeps imon's routes and rules in the kernel. Its methods are not
// safe for concurrent use (the failover monitor calls them from one loop).
type Manager struct {
	k   Kernel
	cfg Config
}

// NewManager returns a manager of cfg's WANs on kernel k.
func NewManager(k Kernel, cfg Config) *Manager { return &Manager{k: k, cfg: cfg} }

// Config returns the manager's configuration.
func (m *Manager) Config() Config { return m.cfg }

// Link reads WAN i's interface. A missing interface is Link{} and no error.
func (m *Manager) Link(i int) (Link, error) {
	l, err := m.k.LinkByName(m.cfg.WANs[i].If)
	if errors.Is(err, ErrNotFound) {
		return Link{}, nil
	}
	return l, err
}

// SyncPolicy makes WAN i's table and rules match link l (see Desired):
// missing ones are added, wrong or stale owned ones removed. Only routes
// and rules tagged with the instance's protocol are ever deleted. It returns the link's
// Problem (ErrNoRoute) when the WAN is not usable, after applying the
// fallback routes, or the first kernel error.
func (m *Manager) SyncPolicy(i int, l Link) error {
	wantRoutes, wantRules := Desired(m.cfg, i, l)
	var errs []error
	all, err := m.k.Routes(m.cfg.Table(i))
	if err != nil {
		return err
	}
	have := slices.DeleteFunc(slices.Clone(all), func(r Route) bool { return !m.cfg.ownsRoute(r) })
	for _, w := range wantRoutes {
		if slices.ContainsFunc(have, w.same) {
			continue
		}
		// A replace would take over a route with the same key that is
		// not ours (the admin's, another instance's): leave it, say so.
		if j := slices.IndexFunc(all, func(r Route) bool { return !m.cfg.ownsRoute(r) && sameKey(r, w) }); j >= 0 {
			errs = append(errs, fmt.Errorf("table %d: route %s is not this instance's (proto %d): %w; choose another table-base",
				w.Table, all[j], m.cfg.Proto(), ErrForeignRoute))
			continue
		}
		if err := m.k.RouteReplace(w); err != nil {
			errs = append(errs, err)
		}
	}
	have, err = m.k.Routes(m.cfg.Table(i))
	if err != nil {
		return err
	}
	for _, h := range have {
		if m.cfg.ownsRoute(h) && !slices.ContainsFunc(wantRoutes, h.same) {
			if err := m.k.RouteDel(h); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}

	rules, err := m.k.Rules()
	if err != nil {
		return err
	}
	p := m.cfg.RulePriority + RulesPerWAN*i
	for _, r := range rules {
		if m.cfg.ownsRule(r) && r.Priority >= p && r.Priority < p+RulesPerWAN && !slices.ContainsFunc(wantRules, r.same) {
			if err := m.k.RuleDel(r); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	for _, w := range wantRules {
		if !slices.ContainsFunc(rules, w.same) {
			if err := m.k.RuleAdd(w); err != nil && !errors.Is(err, ErrExist) {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return m.cfg.Usable(i, l)
}

// Defaults lists the main table's default routes: the ones this instance
// owns (its protocol) and the foreign ones (the admin's, dhcpcd's, another
// instance's).
func (m *Manager) Defaults() (owned, foreign []Route, err error) {
	rs, err := m.k.Routes(MainTable)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rs {
		if !r.IsDefault() || r.Unreachable {
			continue
		}
		if m.cfg.ownsRoute(r) {
			owned = append(owned, r)
		} else {
			foreign = append(foreign, r)
		}
	}
	return owned, foreign, nil
}

// Active returns the WAN that this instance's main-table default route
// goes through (-1 when there is none): what a previous run of the same
// instance left, to adopt. A route with another protocol is never adopted,
// even through one of this instance's WANs.
func (m *Manager) Active() (int, error) {
	owned, _, err := m.Defaults()
	if err != nil {
		return -1, err
	}
	best := -1
	for _, r := range owned {
		for i, w := range m.cfg.WANs {
			if r.Dev == w.If && r.Gw == w.GW && (best < 0 || r.Metric == m.cfg.Metric) {
				best = i
			}
		}
	}
	return best, nil
}

// SetDefault makes WAN i (through link l) the main table's default route.
// An owned route with the configured metric is replaced in place (one
// atomic kernel operation, so there is never a moment without a default
// route); otherwise the new route is added first. Only then are other
// owned default routes (stale metrics, duplicates) deleted. A foreign
// default route with the same metric is never touched: ErrForeignDefault.
func (m *Manager) SetDefault(i int, l Link) error {
	if err := m.cfg.Usable(i, l); err != nil {
		return err
	}
	w := m.cfg.WANs[i]
	want := Route{Table: MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: w.GW, LinkIndex: l.Index, Metric: m.cfg.Metric, Proto: m.cfg.Proto()}
	owned, foreign, err := m.Defaults()
	if err != nil {
		return err
	}
	for _, f := range foreign {
		if f.Metric == m.cfg.Metric {
			return fmt.Errorf("default route %s: %w (metric %d)", f, ErrForeignDefault, m.cfg.Metric)
		}
	}
	switch {
	case slices.ContainsFunc(owned, want.same):
		// Already in place.
	case slices.ContainsFunc(owned, func(r Route) bool { return r.Metric == want.Metric }):
		if err := m.k.RouteReplace(want); err != nil {
			return err
		}
	default:
		if err := m.k.RouteAdd(want); err != nil {
			if errors.Is(err, ErrExist) {
				// Not ours (we had none with this metric a moment ago):
				// a route someone added meanwhile, never replaced. The
				// caller retries and then sees it as foreign.
				return fmt.Errorf("default route with metric %d added by someone else meanwhile: %w", m.cfg.Metric, ErrForeignDefault)
			}
			return err
		}
	}
	for _, r := range owned {
		if !r.same(want) && r.Metric != want.Metric {
			if err := m.k.RouteDel(r); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// Shadowed returns the foreign default routes of the main table whose
// lower metric makes the kernel prefer them over imon's.
func (m *Manager) Shadowed() ([]Route, error) {
	_, foreign, err := m.Defaults()
	if err != nil {
		return nil, err
	}
	var out []Route
	for _, f := range foreign {
		if f.Metric < m.cfg.Metric && !f.LinkDown {
			out = append(out, f)
		}
	}
	return out, nil
}

// Cleanup removes this instance's rules and per-WAN tables and keeps the
// main table's default route, so that the LAN stays online after a clean
// stop. Only rules with the instance's protocol at its priorities, and
// routes with its protocol in its tables, are deleted. It returns the
// number of rules and routes removed.
func (m *Manager) Cleanup() (int, error) {
	n := 0
	var errs []error
	rules, err := m.k.Rules()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range rules {
		if m.cfg.ownsRule(r) {
			if err := m.k.RuleDel(r); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	for i := range m.cfg.WANs {
		rs, err := m.k.Routes(m.cfg.Table(i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rs {
			if m.cfg.ownsRoute(r) {
				if err := m.k.RouteDel(r); err != nil && !errors.Is(err, ErrNotFound) {
					errs = append(errs, err)
					continue
				}
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// FlushConntrack deletes the conntrack entries masqueraded to addr (the
// failed WAN's address); never the whole table.
func (m *Manager) FlushConntrack(addr netip.Addr) (int, error) {
	if !addr.IsValid() {
		return 0, nil
	}
	return m.k.ConntrackDeleteNAT(addr)
}
