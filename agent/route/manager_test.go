package route_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"imon/agent/route"
)

var testCfg = route.Config{
	WANs: []route.WAN{
		{If: "wan0", GW: netip.MustParseAddr("192.0.2.1")},
		{If: "wan1", GW: netip.MustParseAddr("192.0.2.9")},
	},
	Metric:       201,
	TableBase:    201,
	RulePriority: 10100,
	FwmarkBase:   0x1c9,
}

func newFake(t *testing.T) (*route.Fake, *route.Manager) {
	t.Helper()
	f := route.NewFake()
	f.AddLink("lan0", "198.18.0.1/24")
	f.AddLink("wan0", "192.0.2.2/29")
	f.AddLink("wan1", "192.0.2.10/29")
	return f, route.NewManager(f, testCfg)
}

func mustLink(t *testing.T, m *route.Manager, i int) route.Link {
	t.Helper()
	l, err := m.Link(i)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func syncAll(t *testing.T, m *route.Manager) {
	t.Helper()
	for i := range 2 {
		if err := m.SyncPolicy(i, mustLink(t, m, i)); err != nil {
			t.Fatalf("SyncPolicy(%d): %v", i, err)
		}
	}
}

func golden(t *testing.T, f *route.Fake, want string) {
	t.Helper()
	want = strings.TrimLeft(want, "\n")
	if got := f.String(); got != want {
		t.Errorf("kernel state:\n%s\nwant:\n%s", got, want)
	}
}

const policyState = `
ip rule add pref 10100 from 192.0.2.2 lookup main suppress_prefixlength 0 proto 201
ip rule add pref 10101 from 192.0.2.2 lookup 201 proto 201
ip rule add pref 10102 from all fwmark 0x1c9 lookup 201 proto 201
ip rule add pref 10103 from 192.0.2.10 lookup main suppress_prefixlength 0 proto 201
ip rule add pref 10104 from 192.0.2.10 lookup 202 proto 201
ip rule add pref 10105 from all fwmark 0x1ca lookup 202 proto 201
`

const tablesState = `ip route add default via 192.0.2.1 dev wan0 table 201 proto 201
ip route add unreachable default table 201 proto 201 metric 2147483647
ip route add 192.0.2.0/29 dev wan0 table 201 proto 201 scope link src 192.0.2.2
ip route add default via 192.0.2.9 dev wan1 table 202 proto 201
ip route add unreachable default table 202 proto 201 metric 2147483647
ip route add 192.0.2.8/29 dev wan1 table 202 proto 201 scope link src 192.0.2.10
`

func TestRouterStates(t *testing.T) {
	f, m := newFake(t)
	syncAll(t, m)
	golden(t, f, policyState+tablesState)

	// Idempotent: a second sync changes nothing.
	f.Ops()
	syncAll(t, m)
	if ops := f.Ops(); len(ops) != 0 {
		t.Errorf("second sync changed the kernel: %q", ops)
	}

	// Primary active, then an atomic switch to the standby.
	if err := m.SetDefault(0, mustLink(t, m, 0)); err != nil {
		t.Fatal(err)
	}
	golden(t, f, policyState+`ip route add default via 192.0.2.1 dev wan0 proto 201 metric 201
`+tablesState)
	f.Ops()
	if err := m.SetDefault(1, mustLink(t, m, 1)); err != nil {
		t.Fatal(err)
	}
	if ops := f.Ops(); len(ops) != 1 || !strings.HasPrefix(ops[0], "RouteReplace default via 192.0.2.9 dev wan1") {
		t.Errorf("switch was not one atomic replace: %q", ops)
	}
	if a, _ := m.Active(); a != 1 {
		t.Errorf("Active = %d, want 1", a)
	}

	// Clean stop: rules and tables go, the default route stays.
	n, err := m.Cleanup()
	if err != nil || n != 12 {
		t.Errorf("Cleanup = %d, %v; want 12 removed", n, err)
	}
	golden(t, f, "ip route add default via 192.0.2.9 dev wan1 proto 201 metric 201\n")
}

func TestForeignRoutesUntouched(t *testing.T) {
	f, m := newFake(t)
	// dhcpcd's route with another metric, a foreign rule at our priority,
	// a foreign route in our table.
	f.AddForeign(route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.1"), Dev: "wan0", Metric: 1002, Proto: 16})
	f.AddForeign(route.Route{Table: 201, Dst: netip.MustParsePrefix("203.0.113.0/24"), Gw: netip.MustParseAddr("192.0.2.1"), Dev: "wan0", Proto: 4})
	f.AddForeignRule(route.Rule{Priority: 10101, Src: netip.MustParsePrefix("198.18.0.0/24"), Table: 100, SuppressPrefixlen: -1})
	syncAll(t, m)
	if err := m.SetDefault(1, mustLink(t, m, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Cleanup(); err != nil {
		t.Fatal(err)
	}
	golden(t, f, `
ip rule add pref 10101 from 198.18.0.0/24 lookup 100 proto 0
ip route add default via 192.0.2.9 dev wan1 proto 201 metric 201
ip route add default via 192.0.2.1 dev wan0 proto 16 metric 1002
ip route add 203.0.113.0/24 via 192.0.2.1 dev wan0 table 201 proto 4
`)
	if sh, _ := m.Shadowed(); len(sh) != 0 {
		t.Errorf("metric 1002 shadows metric 201: %v", sh)
	}
}

func TestForeignDefaultSameMetric(t *testing.T) {
	f, m := newFake(t)
	f.AddForeign(route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.1"), Dev: "wan0", Metric: 201, Proto: 16})
	err := m.SetDefault(1, mustLink(t, m, 1))
	if !errors.Is(err, route.ErrForeignDefault) {
		t.Fatalf("SetDefault over a foreign metric-201 route: %v", err)
	}
	golden(t, f, "ip route add default via 192.0.2.1 dev wan0 proto 16 metric 201\n")
}

func TestShadowed(t *testing.T) {
	f, m := newFake(t)
	f.AddForeign(route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.1"), Dev: "wan0", Metric: 100, Proto: 16})
	sh, err := m.Shadowed()
	if err != nil || len(sh) != 1 {
		t.Fatalf("Shadowed = %v, %v", sh, err)
	}
}

func TestAdoptNoDuplicate(t *testing.T) {
	f, m := newFake(t)
	syncAll(t, m)
	if err := m.SetDefault(1, mustLink(t, m, 1)); err != nil {
		t.Fatal(err)
	}
	before := f.String()
	// A new run with the same config: adopt.
	m2 := route.NewManager(f, testCfg)
	if a, err := m2.Active(); err != nil || a != 1 {
		t.Fatalf("Active after restart = %d, %v", a, err)
	}
	f.Ops()
	syncAll(t, m2)
	if err := m2.SetDefault(1, mustLink(t, m2, 1)); err != nil {
		t.Fatal(err)
	}
	if ops := f.Ops(); len(ops) != 0 {
		t.Errorf("adoption changed the kernel: %q", ops)
	}
	if f.String() != before {
		t.Errorf("state changed on adoption:\n%s\nwas:\n%s", f.String(), before)
	}
	// A changed metric: the new route first, then the stale one goes.
	cfg := testCfg
	cfg.Metric = 300
	m3 := route.NewManager(f, cfg)
	if err := m3.SetDefault(1, mustLink(t, m3, 1)); err != nil {
		t.Fatal(err)
	}
	ops := f.Ops()
	if len(ops) != 2 || !strings.HasPrefix(ops[0], "RouteAdd default via 192.0.2.9 dev wan1 proto 201 metric 300") ||
		!strings.HasPrefix(ops[1], "RouteDel default via 192.0.2.9 dev wan1 proto 201 metric 201") {
		t.Errorf("metric change ops: %q", ops)
	}
}

func TestProblems(t *testing.T) {
	f, m := newFake(t)
	f.DelLink("wan1")
	f.SetAddrs("wan0", "198.51.100.66/30") // gateway 192.0.2.1 no longer on link
	for i, want := range []string{"gateway 192.0.2.1 is not in the subnet of wan0", "interface wan1 not found"} {
		err := m.SyncPolicy(i, mustLink(t, m, i))
		if !errors.Is(err, route.ErrNoRoute) || !strings.Contains(err.Error(), want) {
			t.Errorf("SyncPolicy(%d) = %v, want %q", i, err, want)
		}
		if err := m.SetDefault(i, mustLink(t, m, i)); !errors.Is(err, route.ErrNoRoute) {
			t.Errorf("SetDefault(%d) = %v", i, err)
		}
	}
	// The tables still hold their unreachable fallback and the fwmark rules.
	golden(t, f, `
ip rule add pref 10102 from all fwmark 0x1c9 lookup 201 proto 201
ip rule add pref 10105 from all fwmark 0x1ca lookup 202 proto 201
ip route add unreachable default table 201 proto 201 metric 2147483647
ip route add unreachable default table 202 proto 201 metric 2147483647
`)
}

func TestAddressChangeRebinds(t *testing.T) {
	f, m := newFake(t)
	syncAll(t, m)
	f.SetAddrs("wan1", "192.0.2.11/29")
	if err := m.SyncPolicy(1, mustLink(t, m, 1)); err != nil {
		t.Fatal(err)
	}
	s := f.String()
	if strings.Contains(s, "192.0.2.10") || !strings.Contains(s, "from 192.0.2.11 lookup 202") ||
		!strings.Contains(s, "src 192.0.2.11") {
		t.Errorf("rules not rebound to the new address:\n%s", s)
	}
}

func TestConntrack(t *testing.T) {
	f, m := newFake(t)
	a := netip.MustParseAddr("192.0.2.2")
	f.SetConntrack(a, 7)
	f.SetConntrack(netip.MustParseAddr("192.0.2.10"), 3)
	n, err := m.FlushConntrack(a)
	if err != nil || n != 7 {
		t.Fatalf("FlushConntrack = %d, %v", n, err)
	}
	if d := f.ConntrackDeleted(); len(d) != 1 || d[0] != a {
		t.Errorf("deleted %v", d)
	}
}
