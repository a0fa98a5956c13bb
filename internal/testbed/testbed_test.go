package testbed_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"imon/internal/testbed"
)

// TestTopology checks the testbed itself: through either ISP the internet
// target answers; an upstream cut stops forwarding while the gateway still
// answers; carrier loss and random loss behave; Heal restores everything.
func TestTopology(t *testing.T) {
	b := testbed.New(t)
	const wait = time.Second
	for i := range 2 {
		b.Run(b.Host, "ip", "route", "replace", "default", "via", testbed.Gateway[i].String())
		out := b.Run(b.Host, "ip", "route", "get", testbed.Target.String())
		if !strings.Contains(out, "dev "+testbed.WANIf[i]) {
			t.Fatalf("route get via WAN %d: %s", i, out)
		}
		if !testbed.Ping(t, b.Host, netip.Addr{}, testbed.Target, wait) {
			t.Fatalf("target unreachable via WAN %d", i)
		}
		if !testbed.Ping(t, b.LAN, netip.Addr{}, testbed.Target, wait) {
			t.Fatalf("target unreachable from the LAN via WAN %d", i)
		}
		b.CutUpstream(i)
		if testbed.Ping(t, b.Host, netip.Addr{}, testbed.Target, wait/2) {
			t.Fatalf("target reachable via WAN %d after CutUpstream", i)
		}
		if !testbed.Ping(t, b.Host, netip.Addr{}, testbed.Gateway[i], wait) {
			t.Fatalf("gateway %d silent after CutUpstream", i)
		}
		b.Heal()
		if !testbed.Ping(t, b.Host, netip.Addr{}, testbed.Target, wait) {
			t.Fatalf("target unreachable via WAN %d after Heal", i)
		}
		b.CarrierLoss(i)
		if out := b.Run(b.Host, "ip", "link", "show", testbed.WANIf[i]); !strings.Contains(out, "NO-CARRIER") {
			t.Fatalf("no carrier loss on %s: %s", testbed.WANIf[i], out)
		}
		b.Heal()
		b.RandomLoss(i, 100)
		if testbed.Ping(t, b.Host, netip.Addr{}, testbed.Gateway[i], wait/2) {
			t.Fatalf("100%% random loss let a ping through on WAN %d", i)
		}
		b.Heal()
	}
	b.Blackhole(testbed.Target)
	if testbed.Ping(t, b.Host, netip.Addr{}, testbed.Target, wait/2) {
		t.Fatal("blackholed target answered")
	}
	if !testbed.Ping(t, b.Host, netip.Addr{}, testbed.Target2, wait) {
		t.Fatal("Target2 silent while only Target is blackholed")
	}
	b.Heal()
}
