package failover_test

import (
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/monitor/failover"
	"imon/agent/probe/probetest"
	"imon/agent/route"
	"imon/config"
	"imon/event"
)

// TestRulePriorities: the config's count of rule priorities per instance
// (its overlap check) is the route manager's.
func TestRulePriorities(t *testing.T) {
	if config.RulePriorities != 2*route.RulesPerWAN {
		t.Errorf("config.RulePriorities = %d, route uses %d", config.RulePriorities, 2*route.RulesPerWAN)
	}
	if config.DefaultRouteProtocol != route.Protocol {
		t.Errorf("config.DefaultRouteProtocol = %d, route.Protocol = %d", config.DefaultRouteProtocol, route.Protocol)
	}
}

// TestTwoInstancesOneKernel runs two monitors on one kernel: A on wan0 and
// wan1 (proto 201, metric 201), B on wan2 and wan3 with its own ranges and
// protocol. Each keeps its own default route; B's switches, re-assertions
// and stop never touch A's routes or rules, and A has nothing to
// re-assert after B's changes.
func TestTwoInstancesOneKernel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newKernel()
		k.AddLink("wan2", "192.0.2.18/29")
		k.AddLink("wan3", "192.0.2.26/29")
		a := startRig(t, k, event.Event{})
		wait(2 * time.Second)
		aRoute := "ip route add default via 192.0.2.1 dev wan0 proto 201 metric 201\n"
		if !strings.Contains(k.String(), aRoute) {
			t.Fatalf("A's route missing after A's start:\n%s", k.String())
		}
		aState := k.String()

		cfg := testConfig()
		cfg.Primary = config.WAN{If: "wan2", Name: "p2", GW: netip.MustParseAddr("192.0.2.17")}
		cfg.Standby = config.WAN{If: "wan3", Name: "s2", GW: netip.MustParseAddr("192.0.2.25")}
		cfg.Metric, cfg.TableBase, cfg.RulePriority, cfg.FwmarkBase, cfg.RouteProtocol = 301, 211, 10200, 0x2c9, 202
		b := startRigWith(t, k, event.Event{}, cfg, probetest.NewResolver(nil))
		b.net.SetUp(cfg.Primary.GW, true)
		b.net.SetUp(cfg.Standby.GW, true)
		k.Ops()
		wait(3 * time.Second)
		bRoute := "ip route add default via 192.0.2.17 dev wan2 proto 202 metric 301\n"
		if got := k.String(); !strings.Contains(got, bRoute) {
			t.Fatalf("B's route missing after B's start:\n%s", got)
		}
		// Each monitor hears of every default-route change (as netlink
		// tells both): A must find nothing to re-assert, B nothing either.
		notify := func() {
			for _, r := range []*rig{a, b} {
				r.upd <- route.Update{Kind: route.RouteChanged, Route: route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0")}}
			}
			wait(time.Second)
		}
		notify()
		untouchedA := func(when string) {
			t.Helper()
			for _, op := range k.Ops() {
				if strings.Contains(op, "proto 201") {
					t.Errorf("%s: A's route or rule changed: %s", when, op)
				}
			}
			got := k.String()
			for _, l := range strings.SplitAfter(aState, "\n") {
				if !strings.Contains(got, l) {
					t.Errorf("%s: A's %q is gone:\n%s", when, l, got)
				}
			}
		}
		untouchedA("B's start")
		// A's route (metric 201) takes precedence over B's (301): B says
		// so, with advice that would help.
		shadowed := false
		evs := b.j.Events()
		for _, e := range evs {
			shadowed = shadowed || e.Kind == failover.KindError && strings.Contains(e.Msg, "default via 192.0.2.1 dev wan0 proto 201 metric 201 has a lower metric than imon's (301)") &&
				strings.Contains(e.Msg, "give imon a metric below 201")
		}
		if !shadowed {
			t.Errorf("B did not report A's route as shadowing its own: %v", b.j.Kinds())
		}

		// B pinned to its standby: one replace of B's route; A sees the
		// change and leaves it.
		b.cmds <- event.New("agent", event.KindFailoverCommand, "", map[string]string{"mode": "standby", "source": "cli"})
		wait(100 * time.Millisecond)
		ops := k.Ops()
		if len(ops) != 1 || !strings.HasPrefix(ops[0], "RouteReplace default via 192.0.2.25 dev wan3 proto 202 metric 301") {
			t.Errorf("B's manual switch: %q, want one replace of B's route", ops)
		}
		notify()
		if ops := k.Ops(); len(ops) != 0 {
			t.Errorf("after B's switch was notified: %q", ops)
		}
		untouchedA("B's switch")

		// B stops: its rules and tables go, its route and all of A's stay.
		if err := b.stop(); err != nil {
			t.Fatal(err)
		}
		untouchedA("B's stop")
		if got := k.String(); got != strings.Replace(aState, aRoute, aRoute+"ip route add default via 192.0.2.25 dev wan3 proto 202 metric 301\n", 1) {
			t.Errorf("after B's stop:\n%s\nwant A's state and B's route", got)
		}
		// A stops: its rules and tables go; both default routes stay.
		if err := a.stop(); err != nil {
			t.Fatal(err)
		}
		if got, want := k.String(), aRoute+"ip route add default via 192.0.2.25 dev wan3 proto 202 metric 301\n"; got != want {
			t.Errorf("after both stopped:\n%s\nwant:\n%s", got, want)
		}
		if e, _ := a.j.Last(); e.Kind != failover.KindStopped {
			t.Errorf("A's last event %s", e.Kind)
		}
	})
}
