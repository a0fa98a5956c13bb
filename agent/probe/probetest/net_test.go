package probetest_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/probe"
	"imon/agent/probe/probetest"
)

var (
	up   = netip.MustParseAddr("192.0.2.1")
	down = netip.MustParseAddr("192.0.2.2")
)

func TestNetPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.Set(up, probetest.Host{Up: true, RTT: 20 * time.Millisecond})
		opt := probe.PingOptions{Count: 3, Spacing: 100 * time.Millisecond, Wait: time.Second}

		start := time.Now()
		r, err := n.Ping(t.Context(), up, opt)
		if err != nil || r.Recv != 3 || r.Avg != 20*time.Millisecond {
			t.Fatalf("up: %+v %v", r, err)
		}
		if el := time.Since(start); el != 220*time.Millisecond {
			t.Errorf("up round took %v, want 220ms (last send + RTT)", el)
		}

		start = time.Now()
		r, err = n.Ping(t.Context(), down, opt)
		if err != nil || r.Alive() || r.Loss != 1 {
			t.Fatalf("down: %+v %v", r, err)
		}
		if el := time.Since(start); el != opt.Budget() {
			t.Errorf("down round took %v, want the budget %v", el, opt.Budget())
		}
		if len(n.Pings()) != 2 {
			t.Errorf("recorded %d pings", len(n.Pings()))
		}
	})
}

func TestNetStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.SetUp(up, true)
		ctx, cancel := context.WithCancel(t.Context())
		ch, err := n.Stream(ctx, up, probe.StreamOptions{Spacing: 250 * time.Millisecond, Wait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		o := <-ch
		if !o.OK || o.Seq != 1 || o.RTT != 10*time.Millisecond {
			t.Fatalf("first %+v", o)
		}
		n.SetUp(up, false)
		cut := time.Now()
		o = <-ch
		if o.OK || o.Seq != 2 || o.At.Sub(o.Sent) != time.Second {
			t.Fatalf("after cut %+v", o)
		}
		if el := time.Since(cut); el != 250*time.Millisecond+time.Second-10*time.Millisecond {
			t.Errorf("loss reported %v after the cut", el)
		}
		n.Set(up, probetest.Host{SendErr: errors.New("network is unreachable")})
		for o = range ch {
			if o.Err != nil {
				break
			}
		}
		if o.OK || o.At != o.Sent {
			t.Errorf("send error outcome %+v", o)
		}
		cancel()
		for range ch {
		}
	})
}

func TestFakeResolverAndDNS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := probetest.NewResolver(map[string]netip.Addr{"a.test": up})
		if a, err := r.Resolve(t.Context(), "a.test"); err != nil || a != up {
			t.Errorf("a.test = %v %v", a, err)
		}
		if a, err := r.Resolve(t.Context(), "192.0.2.9"); err != nil || a != netip.MustParseAddr("192.0.2.9") {
			t.Errorf("literal = %v %v", a, err)
		}
		r.Fail("a.test", nil)
		if _, err := r.Resolve(t.Context(), "a.test"); !errors.Is(err, probetest.ErrNoSuchHost) {
			t.Errorf("failed a.test: %v", err)
		}
		if got := r.Calls(); len(got) != 2 {
			t.Errorf("calls %v", got)
		}

		d := probetest.NewDNS(true, 30*time.Millisecond)
		start := time.Now()
		if err := d.Check(t.Context(), "192.0.2.53", "x.test"); err != nil || time.Since(start) != 30*time.Millisecond {
			t.Errorf("answering: %v after %v", err, time.Since(start))
		}
		d.SetAnswering(false)
		if err := d.Check(t.Context(), "192.0.2.53", "x.test"); !errors.Is(err, probetest.ErrDNSDown) {
			t.Errorf("down: %v", err)
		}
	})
}
