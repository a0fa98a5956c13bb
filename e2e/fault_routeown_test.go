package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"imon/agent/route"
	"imon/event"
	"imon/internal/harness"
	"imon/internal/testbed"
)

// Two failover instances on one router (issue 10, item 7): each owns only
// what it tagged, a second instance over the same WANs or ranges is refused
// at start and by imon check, and instances that do not overlap do not
// fight over the default route.

// roSection is a failover section over WAN interfaces ifs and gateways gws
// (probing the gateways), with the given extra keys (metric, ranges).
func roSection(ifs, gws [2]string, extra string) string {
	return fmt.Sprintf(`"failover": {
    "enable": true, "interval": 1, "pingcount": 2, "pingwait": 1, "prefer-primary": true,
    "primary-if": %q, "primary-name": "pnet", "primary-gw": %q,
    "standby-if": %q, "standby-name": "snet", "standby-gw": %q,
    "failback-hold": 3%s
  }`, ifs[0], gws[0], ifs[1], gws[1], extra)
}

// roTargets makes instance A probe the internet target through each WAN,
// so that an upstream cut is seen (its gateway still answers).
var roTargets = fmt.Sprintf(`, "primary-ping": %q, "standby-ping": %q`, testbed.Target, testbed.Target)

// roInstance is a unique instance name with prefix p.
func roInstance(p string) string { return fmt.Sprintf("%s%d", p, time.Now().UnixNano()%1e6) }

// roDefaults counts the main table's default-route changes the kernel
// reports in the host namespace of b.
type roDefaults struct {
	upd <-chan route.Update
}

func roWatchDefaults(t *testing.T, b *testbed.Bed) *roDefaults {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &roDefaults{upd: route.Watch(ctx, testbed.Handle(t, b.Host), slog.New(slog.DiscardHandler))}
}

// count returns the main-table default-route changes reported within d.
func (r *roDefaults) count(d time.Duration) (n int, seen []string) {
	deadline := time.After(d)
	for {
		select {
		case u := <-r.upd:
			if u.Kind == route.RouteChanged && u.Route.Table == route.MainTable && u.Route.IsDefault() {
				n++
				if len(seen) < 20 {
					seen = append(seen, fmt.Sprintf("deleted=%v if%d proto %d metric %d", u.Deleted, u.LinkIndex, u.Route.Proto, u.Route.Metric))
				}
			}
		case <-deadline:
			return n, seen
		}
	}
}

// until waits for the kernel to report a main-table default route with
// protocol proto through interface index ifindex, and returns when (the
// zero time after timeout). Other changes are counted in n.
func (r *roDefaults) until(proto, ifindex int, timeout time.Duration) (at time.Time, n int) {
	deadline := time.After(timeout)
	for {
		select {
		case u := <-r.upd:
			if u.Kind != route.RouteChanged || u.Route.Table != route.MainTable || !u.Route.IsDefault() {
				continue
			}
			n++
			if !u.Deleted && u.Route.Proto == proto && u.LinkIndex == ifindex {
				return time.Now(), n
			}
		case <-deadline:
			return time.Time{}, n
		}
	}
}

// roIndex is the interface index of ifname in the host namespace.
func roIndex(t *testing.T, b *testbed.Bed, ifname string) int {
	t.Helper()
	nl, err := route.NewNetlinkAt(testbed.Handle(t, b.Host))
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	l, err := nl.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return l.Index
}

// roCutPrimary cuts the primary's upstream (instance A, proto 201, on
// wan0 and wan1): A's default route must move to wan1 within fdkSwitch
// (the detection figure itself is BenchmarkFailoverUpstreamCut's), with at
// most two default-route changes on the way.
func roCutPrimary(t *testing.T, b *testbed.Bed, defaults *roDefaults) {
	t.Helper()
	defaults.count(0)
	wan1 := roIndex(t, b, "wan1")
	b.CutUpstream(0)
	cut := time.Now()
	at, n := defaults.until(201, wan1, 3*time.Second)
	if at.IsZero() {
		t.Fatalf("A's default route did not move to wan1 within 3 s of the upstream cut (%d changes):\n%s", n, b.DefaultRoute())
	}
	t.Logf("upstream cut: A switched to wan1 after %v", at.Sub(cut))
	if d := at.Sub(cut); d > fdkSwitch {
		t.Errorf("upstream cut: switched after %v, want within %v", d, fdkSwitch)
	}
	if more, seen := defaults.count(time.Second); n+more > 2 {
		t.Errorf("upstream cut: %d default-route changes, want 1 or 2: %v", n+more, seen)
	}
}

// roStatusAndStop checks that the agent of cfg answers imon status, and
// that SIGTERM ends it within 5 s.
func roStatusAndStop(t *testing.T, cfg string, ag *harness.Agent) {
	t.Helper()
	out, err := harness.Command(t, "", "status", "--config", cfg, "--json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"failover"`) {
		t.Errorf("imon status: %v\n%s", err, out)
	}
	start := time.Now()
	if err := ag.Stop(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SIGTERM ended the agent after %v, want within 5 s", d)
	}
}

// TestFaultTwoInstancesOverlapRefused: a second instance over the same two
// WANs (swapped), with its own metric, tables, rule priorities and fwmarks,
// is refused by imon check and at start, naming both instances and files;
// the first instance's route is not touched.
func TestFaultTwoInstancesOverlapRefused(t *testing.T) {
	fltRequire(t)
	b := testbed.New(t)
	dir := fltDir(t)
	ifs := testbed.WANIf
	gws := [2]string{testbed.Gateway[0].String(), testbed.Gateway[1].String()}
	nameA, nameB := roInstance("roa"), roInstance("rob")
	cfgA := writeConfig(t, dir, nameA, "", roSection(ifs, gws, roTargets))
	agA := harness.Start(t, b.Host.Name, cfgA)
	wa := harness.Watch(t, cfgA)
	wa.WaitFor(20*time.Second, "failover-primary of A", harness.Kind(event.KindFailoverPrimary))
	before := b.DefaultRoute()
	defaults := roWatchDefaults(t, b)

	cfgB := writeConfig(t, dir, nameB, "", roSection([2]string{ifs[1], ifs[0]}, [2]string{gws[1], gws[0]},
		`, "metric": 301, "table-base": 211, "rule-priority": 10200, "fwmark-base": 713`))

	wantBoth := func(what, out string) {
		t.Helper()
		for _, s := range []string{nameA, nameB, cfgA, cfgB} {
			if !strings.Contains(out, s) {
				t.Errorf("%s does not name %q:\n%s", what, s, out)
			}
		}
	}
	t.Run("check", func(t *testing.T) {
		out, err := harness.Command(t, b.Host.Name, "check", "--config", cfgB).CombinedOutput()
		if err == nil {
			t.Fatalf("imon check of an overlapping second instance passed:\n%s", out)
		}
		wantBoth("imon check", string(out))
		if !strings.Contains(string(out), "failover.primary-if") {
			t.Errorf("imon check does not name the shared interface's key:\n%s", out)
		}
	})
	t.Run("start", func(t *testing.T) {
		ag := harness.Start(t, b.Host.Name, cfgB)
		select {
		case <-ag.Done():
		case <-time.After(10 * time.Second):
			n, seen := defaults.count(0)
			t.Fatalf("overlapping second instance still running after 10 s (%d default-route changes: %v)", n, seen)
		}
		if err := ag.Stop(); err == nil {
			t.Error("overlapping second instance exited 0")
		}
		wantBoth("imon run", ag.Output())
	})
	if n, seen := defaults.count(500 * time.Millisecond); n != 0 {
		t.Errorf("%d default-route changes while the second instance was refused: %v", n, seen)
	}
	if after := b.DefaultRoute(); after != before {
		t.Errorf("default route changed from %q to %q", before, after)
	}
	// A still fails over as usual, answers and stops.
	roCutPrimary(t, b, defaults)
	roStatusAndStop(t, cfgA, agA)
}

// TestFaultTwoInstancesNoTugOfWar: two instances over four distinct WANs,
// with distinct metrics, tables, rule priorities, fwmarks and route
// protocols, share the router: each keeps its own default route, and a
// manual switch of one changes the default routes once, not hundreds of
// times.
func TestFaultTwoInstancesNoTugOfWar(t *testing.T) {
	fltRequire(t)
	b := testbed.New(t)
	// Two more WANs for B: wan2 and wan3 to a third ISP whose gateways
	// answer B's probes.
	isp := harness.NewNS(t, "isp3")
	harness.Link(t, b.Host, "wan2", "192.0.2.18/29", isp, "down0", "192.0.2.17/29")
	harness.Link(t, b.Host, "wan3", "192.0.2.26/29", isp, "down1", "192.0.2.25/29")

	dir := fltDir(t)
	nameA, nameB := roInstance("roa"), roInstance("rob")
	cfgA := writeConfig(t, dir, nameA, "", roSection(testbed.WANIf, [2]string{testbed.Gateway[0].String(), testbed.Gateway[1].String()}, roTargets))
	cfgB := writeConfig(t, dir, nameB, "", roSection([2]string{"wan2", "wan3"}, [2]string{"192.0.2.17", "192.0.2.25"},
		`, "metric": 301, "table-base": 211, "rule-priority": 10200, "fwmark-base": 713, "route-protocol": 202`))
	for _, c := range []string{cfgA, cfgB} {
		if out, err := harness.Command(t, b.Host.Name, "check", "--config", c).CombinedOutput(); err != nil {
			t.Fatalf("imon check %s: %v\n%s", c, err, out)
		}
	}
	defaults := roWatchDefaults(t, b)
	agA := harness.Start(t, b.Host.Name, cfgA)
	wa := harness.Watch(t, cfgA)
	wa.WaitFor(20*time.Second, "failover-primary of A", harness.Kind(event.KindFailoverPrimary))
	agB := harness.Start(t, b.Host.Name, cfgB)
	wb := harness.Watch(t, cfgB)
	wb.WaitFor(20*time.Second, "failover-primary of B", harness.Kind(event.KindFailoverPrimary))

	// Settled: A added its route, B added its own; nothing moves after.
	if n, seen := defaults.count(2 * time.Second); n > 2 {
		t.Errorf("%d default-route changes after both started: %v", n, seen)
	}
	both := func(devA, devB string) {
		t.Helper()
		d := b.DefaultRoute()
		if strings.Count(d, "\n") != 1 || !strings.Contains(d, "dev "+devA+" proto 201 metric 201") ||
			!strings.Contains(d, "dev "+devB+" proto 202 metric 301") {
			t.Errorf("default routes:\n%s\nwant A's via %s (metric 201) and B's via %s (metric 301)", d, devA, devB)
		}
	}
	both("wan0", "wan2")

	lastCmd := map[string]time.Time{}
	for _, step := range []struct {
		cfg, mode, kind, devA, devB string
		w                           *harness.Watcher
	}{
		{cfgB, "standby", event.KindFailoverStandby, "wan0", "wan3", wb},
		{cfgA, "standby", event.KindFailoverStandby, "wan1", "wan3", wa},
		{cfgB, "primary", event.KindFailoverPrimary, "wan1", "wan2", wb},
		{cfgA, "primary", event.KindFailoverPrimary, "wan0", "wan2", wa},
	} {
		// An instance takes a mode change at most every 10 s (the
		// command budget's minimum, docs/mqtt.md): wait it out.
		if at, ok := lastCmd[step.cfg]; ok {
			time.Sleep(time.Until(at.Add(10*time.Second + 200*time.Millisecond)))
		}
		lastCmd[step.cfg] = time.Now()
		failoverCLI(t, b, step.cfg, step.mode)
		step.w.Next(5*time.Second, step.kind, harness.Kind(step.kind))
		n, seen := defaults.count(3 * time.Second)
		t.Logf("imon failover %s on %s: %d default-route changes", step.mode, step.cfg, n)
		if n < 1 || n > 2 {
			t.Errorf("imon failover %s on %s: %d default-route changes within 3 s, want 1 or 2: %v", step.mode, step.cfg, n, seen)
		}
		both(step.devA, step.devB)
	}

	// A's primary upstream is cut: A switches as usual, B's route stays.
	roCutPrimary(t, b, defaults)
	both("wan1", "wan2")

	// B stops (SIGTERM): its rules and tables go, its default route and
	// everything of A's stay.
	if err := agB.Stop(); err != nil {
		t.Errorf("B's exit: %v", err)
	}
	rules := b.Run(b.Host, "ip", "rule")
	if strings.Contains(rules, "proto 202") || strings.Count(rules, "proto 201") != 6 {
		t.Errorf("after B's stop, want A's 6 rules and none of B's:\n%s", rules)
	}
	for table, want := range map[string]bool{"201": true, "202": true, "211": false, "212": false} {
		out, _ := testbed.Exec(b.Host, "ip", "-4", "route", "show", "table", table)
		if got := strings.TrimSpace(out) != ""; got != want {
			t.Errorf("after B's stop, table %s has routes %v, want %v:\n%s", table, got, want, out)
		}
	}
	both("wan1", "wan2")
	roStatusAndStop(t, cfgA, agA)
}
