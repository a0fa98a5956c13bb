package failover_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/monitor"
	"imon/agent/monitor/failover"
	"imon/agent/probe/probetest"
	"imon/agent/route"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
)

var (
	gw0 = netip.MustParseAddr("192.0.2.1")
	gw1 = netip.MustParseAddr("192.0.2.9")
)

func testConfig() config.Failover {
	return config.Failover{
		Probe:          config.Probe{Enable: true, Interval: time.Second, PingCount: 2, PingWait: time.Second},
		PreferPrimary:  true,
		Metric:         201,
		Primary:        config.WAN{If: "wan0", Name: "pnet", GW: gw0},
		Standby:        config.WAN{If: "wan1", Name: "snet", GW: gw1},
		DownAfter:      config.DefaultDownAfter,
		UpAfter:        config.DefaultUpAfter,
		HoldTime:       config.DefaultHoldTime,
		HoldMax:        config.DefaultHoldMax,
		ProbeInterval:  config.DefaultProbeInterval(time.Second, 2),
		FlushConntrack: true,
		TableBase:      config.DefaultTableBase,
		RulePriority:   config.DefaultRulePriority,
		FwmarkBase:     config.DefaultFwmarkBase,
	}
}

type rig struct {
	k    *route.Fake
	net  *probetest.Net
	upd  chan route.Update
	cmds chan event.Event
	j    *nettest.Recorder
	live chan func() // the agent watchdog's liveness requests
	// carrier feeds the monitor's carrier watch of wan0 and wan1.
	carrier [2]chan bool
	stop    func() error
}

func startRig(t *testing.T, k *route.Fake, last event.Event) *rig {
	return startRigWith(t, k, last, testConfig(), probetest.NewResolver(nil))
}

func startRigWith(t *testing.T, k *route.Fake, last event.Event, cfg config.Failover, res *probetest.Resolver) *rig {
	r := &rig{k: k, net: probetest.NewNet(1), upd: make(chan route.Update, 16), cmds: make(chan event.Event, 4), j: &nettest.Recorder{}, live: make(chan func(), 1),
		carrier: [2]chan bool{make(chan bool, 1), make(chan bool, 1)}}
	r.net.SetUp(gw0, true)
	r.net.SetUp(gw1, true)
	m, err := failover.New(cfg, failover.Deps{
		OpenKernel: func() (route.Kernel, error) { return k, nil },
		Streamer:   r.net, Pinger: r.net, Resolver: res,
		Updates: func(context.Context, *slog.Logger) <-chan route.Update { return r.upd },
		Carrier: func(_ context.Context, ifname string) <-chan bool {
			if ifname == "wan1" {
				return r.carrier[1]
			}
			return r.carrier[0]
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, monitor.Env{
			Instance: "test", Emit: r.j.Emit, Last: last,
			Watch:    func(context.Context) <-chan event.Event { return r.cmds },
			Liveness: r.live,
		})
	}()
	r.stop = func() error { cancel(); return <-done }
	return r
}

func newKernel() *route.Fake {
	k := route.NewFake()
	k.AddLink("wan0", "192.0.2.2/29")
	k.AddLink("wan1", "192.0.2.10/29")
	return k
}

func wait(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// TestRunLoop runs the whole monitor loop on fakes in a synctest bubble:
// start, upstream cut, carrier loss, a manual pin, and a clean stop.
func TestRunLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newKernel()
		r := startRig(t, k, event.Event{})
		wait(2 * time.Second)
		if !strings.Contains(k.String(), "ip route add default via 192.0.2.1 dev wan0 proto 201 metric 201") ||
			!strings.Contains(k.String(), "fwmark 0x1ca lookup 202") {
			t.Fatalf("after start:\n%s", k.String())
		}
		// (Whether the standby's initial verdict comes before or after the
		// switch depends on how the probe outcomes were batched.)
		want := []string{"failover-initial", "failover-initial", "failover-primary"}
		if got := r.j.Kinds(); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			t.Errorf("start events %v, want %v", got, want)
		}
		// Streams are bound to their WAN: source address and mark.
		for _, s := range r.net.Streams() {
			if (s.Addr == gw0) != (s.Opt.Source == netip.MustParseAddr("192.0.2.2")) || s.Opt.Mark == 0 {
				t.Errorf("stream %v not bound to its WAN: %+v", s.Addr, s.Opt)
			}
		}

		// Upstream cut of the primary: switched within ~1.35-1.6 s.
		r.net.SetUp(gw0, false)
		cut := time.Now()
		for !strings.Contains(k.String(), "default via 192.0.2.9 dev wan1 proto 201 metric 201") {
			wait(10 * time.Millisecond)
			if time.Since(cut) > 3*time.Second {
				t.Fatalf("no switch:\n%s", k.String())
			}
		}
		// Probes 200 ms apart (the probe engine's grid): the first lost one
		// settles after the 1 s wait, and one tick later the four after it
		// and the one sent at its settling are without replies; the first
		// goes out up to 200 ms after the cut.
		if d := time.Since(cut); d > 1600*time.Millisecond {
			t.Errorf("switch took %v", d)
		}
		if d := k.ConntrackDeleted(); len(d) != 1 || d[0] != netip.MustParseAddr("192.0.2.2") {
			t.Errorf("conntrack deletions %v", d)
		}

		// Heal; the primary comes back but the hold (30 s) keeps the standby.
		r.net.SetUp(gw0, true)
		wait(10 * time.Second)
		if !strings.Contains(k.String(), "via 192.0.2.9 dev wan1 proto 201 metric 201") {
			t.Error("failed back before the hold")
		}
		wait(25 * time.Second)
		if !strings.Contains(k.String(), "via 192.0.2.1 dev wan0 proto 201 metric 201") {
			t.Error("no failback after the hold")
		}

		// Carrier loss on the primary: switch on the link event alone.
		k.SetCarrier("wan0", false)
		r.upd <- route.Update{Kind: route.LinkChanged, LinkName: "wan0", Carrier: false, AdminUp: true}
		synctest.Wait()
		if !strings.Contains(k.String(), "via 192.0.2.9 dev wan1 proto 201 metric 201") {
			t.Errorf("carrier loss did not switch at once:\n%s", k.String())
		}
		if e, _ := r.j.Last(); e.Kind != event.KindFailoverStandby {
			t.Errorf("last event %s", e.Kind)
		}
		k.SetCarrier("wan0", true)
		r.upd <- route.Update{Kind: route.LinkChanged, LinkName: "wan0", Carrier: true, AdminUp: true}

		// Something else deletes imon's default route: it comes back.
		if err := k.RouteDel(route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: gw1, LinkIndex: 3, Metric: 201, Proto: route.Protocol}); err != nil {
			t.Fatal(err)
		}
		r.upd <- route.Update{Kind: route.RouteChanged, Deleted: true, Route: route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0")}}
		wait(200 * time.Millisecond)
		if !strings.Contains(k.String(), "via 192.0.2.9 dev wan1 proto 201 metric 201") {
			t.Errorf("default route not re-asserted:\n%s", k.String())
		}

		// Manual pin to the standby, then auto: back to the primary.
		wait(2 * time.Second)
		r.cmds <- event.New("agent", event.KindFailoverCommand, "", map[string]string{"mode": "standby", "source": "cli"})
		wait(10 * time.Millisecond)
		r.cmds <- event.New("agent", event.KindFailoverCommand, "", map[string]string{"mode": "auto", "source": "cli"})
		wait(time.Minute)
		if !strings.Contains(k.String(), "via 192.0.2.1 dev wan0 proto 201 metric 201") {
			t.Errorf("auto did not restore the primary:\n%s", k.String())
		}

		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		if got := k.String(); got != "ip route add default via 192.0.2.1 dev wan0 proto 201 metric 201\n" {
			t.Errorf("after stop:\n%s", got)
		}
		last, _ := r.j.Last()
		if last.Kind != failover.KindStopped || !strings.Contains(last.Msg, "left in place") {
			t.Errorf("stop event %+v", last)
		}
		var snap failover.Snapshot
		if err := json.Unmarshal(last.State, &snap); err != nil || snap.Active != "primary" || snap.WANs[1].Switches < 2 {
			t.Errorf("stop state %+v, %v", snap, err)
		}

		// A restart adopts the route: no switch, no failover-primary.
		r2 := startRig(t, k, last)
		k.Ops()
		wait(3 * time.Second)
		for _, op := range k.Ops() {
			if strings.Contains(op, "default via") && !strings.Contains(op, "table") {
				t.Errorf("restart touched the default route: %s", op)
			}
		}
		if got, want := r2.j.Kinds(), []string{"failover-adopted", "failover-initial", "failover-initial"}; !slices.Equal(got, want) {
			t.Errorf("restart events %v, want %v", got, want)
		}
		if err := r2.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunMissingInterface: a configured interface that does not exist is a
// journaled error, the other WAN carries the LAN, and the WAN is picked up
// when it appears.
// TestRunShadowNoticedAtOnce: a foreign default route with a lower metric
// than imon's, added while imon runs (dhcpcd renewing without
// "nogateway"), is journaled as an error right after its notification, not
// at the next resync (every 30 s before 2026-12-06, 5 minutes now).
func TestRunShadowNoticedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newKernel()
		r := startRig(t, k, event.Event{})
		wait(2 * time.Second)
		k.AddForeign(route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: gw1, Dev: "wan1", Metric: 100})
		r.upd <- route.Update{Kind: route.RouteChanged, Route: route.Route{Table: route.MainTable, Dst: netip.MustParsePrefix("0.0.0.0/0")}}
		wait(time.Second)
		found := false
		for _, e := range r.j.Events() {
			found = found || e.Kind == failover.KindError && strings.Contains(e.Msg, "metric 100 has a lower metric than imon's (201)")
		}
		if !found {
			t.Errorf("no error about the shadowing route 1 s after its notification: %v", r.j.Kinds())
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunRuleDeletedRestored: a policy rule of imon's deleted by someone
// else is put back right after the rule notification, not at the next
// resync (rules were not watched before 2026-12-06: up to 30 s).
func TestRunRuleDeletedRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newKernel()
		r := startRig(t, k, event.Event{})
		wait(2 * time.Second)
		rules, _ := k.Rules()
		var mine route.Rule
		for _, ru := range rules {
			if ru.Mark != 0 {
				mine = ru
			}
		}
		if mine.Mark == 0 {
			t.Fatalf("no fwmark rule after start:\n%s", k.String())
		}
		if err := k.RuleDel(mine); err != nil {
			t.Fatal(err)
		}
		k.Ops()
		r.upd <- route.Update{Kind: route.RuleChanged}
		wait(time.Second)
		if ops := k.Ops(); !slices.Contains(ops, "RuleAdd "+mine.String()) {
			t.Errorf("after the rule's deletion was notified: %q, want it added back (%s)", ops, mine)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRunMissingInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := route.NewFake()
		k.AddLink("wan1", "192.0.2.10/29")
		r := startRig(t, k, event.Event{})
		wait(5 * time.Second)
		if !strings.Contains(k.String(), "default via 192.0.2.9 dev wan1 proto 201 metric 201") {
			t.Fatalf("standby not used:\n%s", k.String())
		}
		var found bool
		evs := r.j.Events()
		for _, e := range evs {
			if e.Kind == failover.KindError && strings.Contains(e.Msg, "interface wan0 not found") && e.Level == event.LevelError {
				found = true
			}
		}
		if !found {
			t.Errorf("no error event: %v", r.j.Kinds())
		}
		k.AddLink("wan0", "192.0.2.2/29")
		r.upd <- route.Update{Kind: route.LinkChanged, LinkName: "wan0", AdminUp: true, Carrier: true}
		wait(35 * time.Second)
		if !strings.Contains(k.String(), "default via 192.0.2.1 dev wan0 proto 201 metric 201") {
			t.Errorf("primary not used once it appeared:\n%s", k.String())
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunTargetName: a *-ping host name that does not resolve yet is
// journaled once and the gateway is probed meanwhile; once it resolves, the
// probes go to it.
func TestRunTargetName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Primary.Ping = "probe.example"
		res := probetest.NewResolver(nil)
		res.Fail("probe.example", nil)
		target := netip.MustParseAddr("203.0.113.1")
		r := startRigWith(t, newKernel(), event.Event{}, cfg, res)
		r.net.SetUp(target, true)
		wait(5 * time.Second)
		var errs int
		for _, k := range r.j.Kinds() {
			if k == failover.KindError {
				errs++
			}
		}
		if errs != 1 {
			t.Errorf("%d error events, want 1: %v", errs, r.j.Kinds())
		}
		if !strings.Contains(r.k.String(), "via 192.0.2.1 dev wan0 proto 201 metric 201") {
			t.Errorf("primary not used while probing its gateway:\n%s", r.k.String())
		}
		res.Set("probe.example", target)
		wait(31 * time.Second)
		var toTarget bool
		for _, s := range r.net.Streams() {
			toTarget = toTarget || s.Addr == target
		}
		if !toTarget {
			t.Errorf("no stream to the resolved target: %+v", r.net.Streams())
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunAnswersLiveness: the loop answers the agent watchdog's liveness
// requests at once.
func TestRunAnswersLiveness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, newKernel(), event.Event{})
		wait(5 * time.Second)
		for i := range 3 {
			answered := make(chan struct{})
			r.live <- func() { close(answered) }
			synctest.Wait()
			select {
			case <-answered:
			default:
				t.Fatalf("liveness request %d not answered", i)
			}
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunLoopCarrierWatch: a carrier loss that netlink has not announced
// yet (the kernel's linkwatch batches notifications up to a second) is seen
// by the carrier watch (the probe engine's grid read) and switches at once.
func TestRunLoopCarrierWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newKernel()
		r := startRig(t, k, event.Event{})
		wait(2 * time.Second)
		if !strings.Contains(k.String(), "default via 192.0.2.1 dev wan0 proto 201 metric 201") {
			t.Fatalf("after start:\n%s", k.String())
		}
		k.SetCarrier("wan0", false)
		r.carrier[0] <- false
		synctest.Wait()
		if !strings.Contains(k.String(), "default via 192.0.2.9 dev wan1 proto 201 metric 201") {
			t.Errorf("carrier watch did not switch at once:\n%s", k.String())
		}
		if e, _ := r.j.Last(); e.Kind != event.KindFailoverStandby {
			t.Errorf("last event %s", e.Kind)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
