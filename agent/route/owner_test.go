package route_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"imon/agent/route"
)

// otherCfg is a second instance on the same router: the same two WANs,
// swapped, with its own metric, table, rule priority, fwmark and protocol.
var otherCfg = route.Config{
	WANs: []route.WAN{
		{If: "wan1", GW: netip.MustParseAddr("192.0.2.9")},
		{If: "wan0", GW: netip.MustParseAddr("192.0.2.1")},
	},
	Metric:       301,
	TableBase:    211,
	RulePriority: 10200,
	FwmarkBase:   0x2c9,
	Protocol:     202,
}

// twoInstances returns a kernel where instance A (testCfg) has its rules,
// tables and default route via wan0, and B's manager on the same kernel.
func twoInstances(t *testing.T) (f *route.Fake, a, b *route.Manager, aState string) {
	t.Helper()
	f, a = newFake(t)
	syncAll(t, a)
	if err := a.SetDefault(0, mustLink(t, a, 0)); err != nil {
		t.Fatal(err)
	}
	return f, a, route.NewManager(f, otherCfg), f.String()
}

// TestOtherInstanceNotAdopted: a second instance starting next to the
// first does not take the first's default route as its own.
func TestOtherInstanceNotAdopted(t *testing.T) {
	_, _, b, _ := twoInstances(t)
	if a, err := b.Active(); err != nil || a != -1 {
		t.Errorf("B.Active() = %d, %v; want -1 (A's route is not B's)", a, err)
	}
	owned, foreign, err := b.Defaults()
	if err != nil || len(owned) != 0 || len(foreign) != 1 {
		t.Errorf("B.Defaults() = owned %v, foreign %v, %v; want A's route foreign", owned, foreign, err)
	}
}

// TestOtherInstanceUntouched: B installing its routes, switching and
// cleaning up never deletes or changes A's rules, tables or route; and A
// then sees nothing to re-assert.
func TestOtherInstanceUntouched(t *testing.T) {
	f, a, b, aState := twoInstances(t)
	f.Ops()
	syncAll(t, b)
	for _, i := range []int{0, 1, 0} {
		if err := b.SetDefault(i, mustLink(t, b, i)); err != nil {
			t.Fatalf("B.SetDefault(%d): %v", i, err)
		}
	}
	for _, op := range f.Ops() {
		if strings.Contains(op, "Del") || (strings.Contains(op, "Replace") && strings.Contains(op, " metric 201")) {
			t.Errorf("B touched what is not its own: %s", op)
		}
	}
	// A's view: exactly its own route, via its active WAN.
	owned, _, err := a.Defaults()
	if err != nil || len(owned) != 1 || owned[0].Metric != 201 || owned[0].Dev != "wan0" {
		t.Errorf("A.Defaults() owned = %v, %v; want only A's route via wan0", owned, err)
	}
	if act, _ := a.Active(); act != 0 {
		t.Errorf("A.Active() = %d, want 0", act)
	}
	// B's clean stop removes B's rules and tables only; both default
	// routes stay.
	n, err := b.Cleanup()
	if err != nil || n != 12 {
		t.Errorf("B.Cleanup() = %d, %v; want 12 removed", n, err)
	}
	got := f.String()
	for _, l := range strings.Split(strings.TrimSpace(aState), "\n") {
		if !strings.Contains(got, l+"\n") {
			t.Errorf("A's %q gone after B's cleanup:\n%s", l, got)
		}
	}
	if !strings.Contains(got, "default via 192.0.2.9 dev wan1 proto") || !strings.Contains(got, "metric 301") {
		t.Errorf("B's default route not left in place:\n%s", got)
	}
	if strings.Count(got, "\n") != strings.Count(aState, "\n")+1 {
		t.Errorf("after B's cleanup, want A's state plus B's default route:\n%s", got)
	}
}

// TestRestartAdoptsOnlyOwnTag: a restarted instance adopts the route its
// previous run left (its protocol), never A's or the admin's through one
// of its WANs; the admin's route is never deleted.
func TestRestartAdoptsOnlyOwnTag(t *testing.T) {
	f, _, b, _ := twoInstances(t)
	admin := route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.9"), Dev: "wan1", Metric: 50, Proto: 4}
	f.AddForeign(admin)
	if a, err := b.Active(); err != nil || a != -1 {
		t.Fatalf("B.Active() over A's and the admin's routes = %d, %v; want -1", a, err)
	}
	if sh, err := b.Shadowed(); err != nil || len(sh) != 2 {
		t.Errorf("B.Shadowed() = %v, %v; want A's (201) and the admin's (50) routes below B's metric 301", sh, err)
	}
	syncAll(t, b)
	if err := b.SetDefault(1, mustLink(t, b, 1)); err != nil {
		t.Fatal(err)
	}
	b2 := route.NewManager(f, otherCfg)
	if a, err := b2.Active(); err != nil || a != 1 {
		t.Fatalf("restarted B.Active() = %d, %v; want 1 (its own route via wan0)", a, err)
	}
	f.Ops()
	if err := b2.SetDefault(1, mustLink(t, b2, 1)); err != nil {
		t.Fatal(err)
	}
	if ops := f.Ops(); len(ops) != 0 {
		t.Errorf("adoption changed the kernel: %q", ops)
	}
	// A metric change of B: its stale route goes, nobody else's.
	cfg := otherCfg
	cfg.Metric = 302
	if err := route.NewManager(f, cfg).SetDefault(1, mustLink(t, b2, 1)); err != nil {
		t.Fatal(err)
	}
	ops := f.Ops()
	if len(ops) != 2 || !strings.HasPrefix(ops[0], "RouteAdd default via 192.0.2.1 dev wan0 proto 202 metric 302") ||
		!strings.HasPrefix(ops[1], "RouteDel default via 192.0.2.1 dev wan0 proto 202 metric 301") {
		t.Errorf("metric change ops: %q", ops)
	}
	got := f.String()
	for _, want := range []string{"default via 192.0.2.1 dev wan0 proto 201 metric 201", "default via 192.0.2.9 dev wan1 proto 4 metric 50"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q gone:\n%s", want, got)
		}
	}
}

// TestForeignRouteInOwnTable: a route of someone else in one of the
// instance's tables, with the key of a route the instance wants there
// (same destination and metric), is never replaced: SyncPolicy reports it
// and leaves it.
func TestForeignRouteInOwnTable(t *testing.T) {
	f, m := newFake(t)
	admin := route.Route{Table: 201, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.3"), Dev: "wan0", Proto: 4}
	f.AddForeign(admin)
	err := m.SyncPolicy(0, mustLink(t, m, 0))
	if !errors.Is(err, route.ErrForeignRoute) || !strings.Contains(err.Error(), "table 201") || !strings.Contains(err.Error(), "table-base") {
		t.Errorf("SyncPolicy over a foreign route in table 201: %v", err)
	}
	if got := f.String(); !strings.Contains(got, "ip route add default via 192.0.2.3 dev wan0 table 201 proto 4\n") ||
		strings.Contains(got, "default via 192.0.2.1 dev wan0 table 201") {
		t.Errorf("the foreign route was replaced:\n%s", got)
	}
	// The rest of the table and the rules are in place; the other WAN is
	// not affected.
	if err := m.SyncPolicy(1, mustLink(t, m, 1)); err != nil {
		t.Errorf("SyncPolicy(1): %v", err)
	}
	if got := f.String(); !strings.Contains(got, "unreachable default table 201 proto 201") || !strings.Contains(got, "pref 10101 from 192.0.2.2 lookup 201") {
		t.Errorf("the rest of WAN 0's policy is missing:\n%s", got)
	}
	// Cleanup leaves it too.
	if _, err := m.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := f.String(); got != "ip route add default via 192.0.2.3 dev wan0 table 201 proto 4\n" {
		t.Errorf("after cleanup:\n%s", got)
	}
}

// TestDefaultAppearedMeanwhile: a default route with imon's metric that
// appears between the listing and the add (EEXIST) is not replaced.
func TestDefaultAppearedMeanwhile(t *testing.T) {
	f, m := newFake(t)
	f.FailWith(func(op string) error {
		if op == "RouteAdd" {
			return route.ErrExist
		}
		return nil
	})
	err := m.SetDefault(0, mustLink(t, m, 0))
	if !errors.Is(err, route.ErrForeignDefault) {
		t.Errorf("SetDefault after EEXIST: %v, want ErrForeignDefault", err)
	}
	if ops := f.Ops(); len(ops) != 0 {
		t.Errorf("SetDefault after EEXIST changed the kernel: %q", ops)
	}
}
