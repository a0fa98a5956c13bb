package route_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"imon/agent/route"
	"imon/internal/testbed"
)

// These tests run the manager against the real kernel, inside the host
// namespace of a testbed (never the machine's own namespace).

func kernelCfg() route.Config {
	c := testCfg
	c.WANs = []route.WAN{{If: testbed.WANIf[0], GW: testbed.Gateway[0]}, {If: testbed.WANIf[1], GW: testbed.Gateway[1]}}
	return c
}

func newKernel(t *testing.T) (*testbed.Bed, *route.Netlink, *route.Manager) {
	t.Helper()
	b := testbed.New(t)
	nl, err := route.NewNetlinkAt(testbed.Handle(t, b.Host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Close)
	return b, nl, route.NewManager(nl, kernelCfg())
}

// routeGet is `ip route get DST [from SRC] [mark M]` in the namespace.
func routeGet(t *testing.T, nl *route.Netlink, dst net.IP, opt *netlink.RouteGetOptions) (netlink.Route, error) {
	t.Helper()
	rs, err := nl.Handle().RouteGetWithOptions(dst, opt)
	if err != nil {
		return netlink.Route{}, err
	}
	if len(rs) != 1 {
		t.Fatalf("route get %s: %d routes", dst, len(rs))
	}
	return rs[0], nil
}

func wantDev(t *testing.T, nl *route.Netlink, what string, dst net.IP, opt *netlink.RouteGetOptions, dev string) {
	t.Helper()
	r, err := routeGet(t, nl, dst, opt)
	if err != nil {
		t.Fatalf("%s: route get %s: %v", what, dst, err)
	}
	l, err := nl.Handle().LinkByIndex(r.LinkIndex)
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().Name != dev {
		t.Errorf("%s: route get %s leaves through %s, want %s (%v)", what, dst, l.Attrs().Name, dev, r)
	}
}

func kernelSync(t *testing.T, m *route.Manager) {
	t.Helper()
	for i := range 2 {
		l, err := m.Link(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SyncPolicy(i, l); err != nil {
			t.Fatalf("SyncPolicy(%d): %v", i, err)
		}
	}
}

func setDefault(t *testing.T, m *route.Manager, i int) error {
	t.Helper()
	l, err := m.Link(i)
	if err != nil {
		t.Fatal(err)
	}
	return m.SetDefault(i, l)
}

func TestKernelPolicyRouting(t *testing.T) {
	b, nl, m := newKernel(t)
	cfg := m.Config()
	// A foreign default route (as dhcpcd would add) that must survive.
	b.Run(b.Host, "ip", "route", "add", "default", "via", testbed.Gateway[0].String(), "metric", "1000")
	kernelSync(t, m)
	if err := setDefault(t, m, 0); err != nil {
		t.Fatal(err)
	}
	target := testbed.Target.AsSlice()
	wantDev(t, nl, "unmarked traffic", target, nil, "wan0")
	wantDev(t, nl, "from the standby address", target, &netlink.RouteGetOptions{SrcAddr: testbed.HostWAN[1].AsSlice()}, "wan1")
	wantDev(t, nl, "with the standby's mark", target, &netlink.RouteGetOptions{Mark: cfg.Mark(1)}, "wan1")
	wantDev(t, nl, "with the primary's mark", target, &netlink.RouteGetOptions{Mark: cfg.Mark(0)}, "wan0")
	wantDev(t, nl, "standby gateway from the standby address", testbed.Gateway[1].AsSlice(), &netlink.RouteGetOptions{SrcAddr: testbed.HostWAN[1].AsSlice()}, "wan1")
	wantDev(t, nl, "LAN host from a WAN address", testbed.LANClient.AsSlice(), &netlink.RouteGetOptions{SrcAddr: testbed.HostWAN[1].AsSlice()}, "lan0")

	// A probe really leaves through the standby while the primary is active.
	if !testbed.Ping(t, b.Host, testbed.HostWAN[1], testbed.Target, time.Second) {
		t.Error("ping from the standby's address failed")
	}

	// The standby's carrier goes: marked probes must fail, not leak
	// through the primary.
	b.Run(b.Host, "ip", "link", "set", "wan1", "down")
	if _, err := routeGet(t, nl, target, &netlink.RouteGetOptions{Mark: cfg.Mark(1)}); err == nil {
		t.Error("with wan1 down, a probe marked for it still has a route")
	}
	b.Run(b.Host, "ip", "link", "set", "wan1", "up")
	kernelSync(t, m)
	wantDev(t, nl, "after wan1 came back", target, &netlink.RouteGetOptions{Mark: cfg.Mark(1)}, "wan1")

	// Clean stop: rules and tables gone, the active default route and the
	// foreign one stay.
	if _, err := m.Cleanup(); err != nil {
		t.Fatal(err)
	}
	rules := b.Run(b.Host, "ip", "rule")
	if strings.Contains(rules, "proto 201") || strings.Contains(rules, "lookup 201") {
		t.Errorf("rules left after Cleanup:\n%s", rules)
	}
	def := b.DefaultRoute()
	if !strings.Contains(def, "via 192.0.2.1 dev wan0 proto 201 metric 201") || !strings.Contains(def, "metric 1000") {
		t.Errorf("default routes after Cleanup:\n%s", def)
	}
}

// TestKernelAtomicSwitch switches the default route back and forth while
// another goroutine looks it up continuously: no lookup may fail.
func TestKernelAtomicSwitch(t *testing.T) {
	_, nl, m := newKernel(t)
	kernelSync(t, m)
	if err := setDefault(t, m, 0); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var lookups, failures atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := nl.Handle().RouteGetWithOptions(testbed.Target.AsSlice(), nil); err != nil {
				failures.Add(1)
			}
			lookups.Add(1)
		}
	}()
	for n := range 200 {
		if err := setDefault(t, m, (n+1)%2); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d lookups found no default route during 200 switches", failures.Load(), lookups.Load())
	}
	if a, _ := m.Active(); a != 0 {
		t.Errorf("Active = %d after an even number of switches", a)
	}
}

func TestKernelAdoption(t *testing.T) {
	b, nl, m := newKernel(t)
	kernelSync(t, m)
	if err := setDefault(t, m, 1); err != nil {
		t.Fatal(err)
	}
	before := b.Run(b.Host, "ip", "route", "show", "table", "all")
	// A second run adopts.
	m2 := route.NewManager(nl, kernelCfg())
	if a, err := m2.Active(); err != nil || a != 1 {
		t.Fatalf("Active = %d, %v", a, err)
	}
	kernelSync(t, m2)
	if err := setDefault(t, m2, 1); err != nil {
		t.Fatal(err)
	}
	after := b.Run(b.Host, "ip", "route", "show", "table", "all")
	if before != after {
		t.Errorf("adoption changed routes:\n%s\nwas:\n%s", after, before)
	}
	if n := strings.Count(b.DefaultRoute(), "\n") + 1; n != 1 {
		t.Errorf("%d default routes:\n%s", n, b.DefaultRoute())
	}
	// Carrier loss keeps the route (linkdown); switching still works.
	b.CarrierLoss(1)
	if err := setDefault(t, m2, 0); err != nil {
		t.Fatal(err)
	}
	if def := b.DefaultRoute(); !strings.Contains(def, "dev wan0") || strings.Contains(def, "wan1") {
		t.Errorf("default after carrier-loss switch: %s", def)
	}
	// Admin down on the active link: the kernel deletes the route, and the
	// manager refuses to route through a down link.
	b.Run(b.Host, "ip", "link", "set", "wan0", "down")
	if err := setDefault(t, m2, 0); !errors.Is(err, route.ErrNoRoute) {
		t.Errorf("SetDefault on a down link: %v", err)
	}
}

func TestKernelWatchCarrier(t *testing.T) {
	b := testbed.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := route.Watch(ctx, testbed.Handle(t, b.Host), slog.New(slog.DiscardHandler))
	// Let the subscription settle (it reports nothing until a change).
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	b.CarrierLoss(0)
	waitUpdate(t, ch, "a carrier-loss update for wan0", func(u route.Update) bool {
		return u.Kind == route.LinkChanged && u.LinkName == "wan0" && !u.Carrier
	})
	t.Logf("carrier loss seen after %v", time.Since(start))
	cancel()
	for range ch {
	}
}

// waitUpdate reads ch until an update matches, failing after 5 s.
func waitUpdate(t *testing.T, ch <-chan route.Update, what string, match func(route.Update) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case u := <-ch:
			if match(u) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s within 5 s", what)
		}
	}
}

// TestKernelWatchRules: a policy rule added or deleted by someone else is
// reported (RuleChanged), so that the failover monitor puts its own back
// at once.
func TestKernelWatchRules(t *testing.T) {
	b := testbed.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := route.Watch(ctx, testbed.Handle(t, b.Host), slog.New(slog.DiscardHandler))
	time.Sleep(50 * time.Millisecond)
	for _, op := range []string{"add", "del"} {
		b.Run(b.Host, "ip", "rule", op, "fwmark", "0x99", "lookup", "250", "priority", "250")
		waitUpdate(t, ch, "RuleChanged update after ip rule "+op, func(u route.Update) bool { return u.Kind == route.RuleChanged })
	}
	cancel()
	for range ch {
	}
}

func TestKernelConntrack(t *testing.T) {
	b, _, m := newKernel(t)
	kernelSync(t, m)
	if err := setDefault(t, m, 0); err != nil {
		t.Fatal(err)
	}
	// A LAN client's flow, masqueraded to the primary's address.
	if !testbed.Ping(t, b.LAN, testbed.LANClient, testbed.Target, time.Second) {
		t.Fatal("LAN client cannot reach the target")
	}
	n, err := m.FlushConntrack(testbed.HostWAN[0])
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("deleted %d conntrack entries, want >= 1", n)
	}
	if n, err := m.FlushConntrack(testbed.HostWAN[1]); err != nil || n != 0 {
		t.Errorf("standby flush deleted %d, %v", n, err)
	}
}

// TestKernelWatchResync overflows a subscription (the kernel drops messages
// with ENOBUFS and netlink closes the channel, nl#477): Watch resubscribes
// and says so with a Resync update, and keeps reporting changes.
func TestKernelWatchResync(t *testing.T) {
	b := testbed.New(t)
	restore := route.SetWatchReceiveBuffer(4096)
	defer restore()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := route.Watch(ctx, testbed.Handle(t, b.Host), slog.New(slog.DiscardHandler))
	time.Sleep(100 * time.Millisecond)
	// A burst of route changes while nobody reads.
	script := "for i in $(seq 1 12); do for j in $(seq 1 250); do echo route add 198.18.$i.$j/32 via 192.0.2.1; done; done"
	b.Run(b.Host, "sh", "-c", script+" | ip -batch -")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if u.Kind == route.Resync {
				// Still alive after the resubscription (which may itself be
				// followed by another one while the backlog drains).
				// (A route that exists already makes no notification: use a
				// new one each time.)
				for n := 1; ; n++ {
					marker := fmt.Sprintf("198.18.99.%d/32", n)
					b.Run(b.Host, "ip", "route", "add", marker, "via", "192.0.2.1")
					tick := time.After(300 * time.Millisecond)
				wait:
					for {
						select {
						case u := <-ch:
							if u.Kind == route.RouteChanged && u.Route.Dst.String() == marker {
								return
							}
						case <-tick:
							break wait
						case <-deadline:
							t.Fatal("no update after the resync")
						}
					}
				}
			}
		case <-deadline:
			t.Fatal("no Resync after an overflow")
		}
	}
}
