package failover_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"imon/agent/route"
	"imon/event"
	"imon/internal/testbed"
)

// The benchmarks run the real monitor (child process in a testbed, config
// interval 1, pingcount 2, pingwait 1 and the default down-after, up-after
// and probe interval) and time, from the moment a fault is injected, until
// the kernel reports the new default route (a netlink route notification in
// the host namespace). Failback is timed from the heal with a 5 s hold.

const benchHold = 5 * time.Second

// maxInjection is how long a fault command (ip netns exec nft/ip) may take
// before the trial is redone.
const maxInjection = 250 * time.Millisecond

// benchTrials is the number of faults per benchmark (IMON_BENCH_TRIALS).
func benchTrials() int {
	if n, err := strconv.Atoi(os.Getenv("IMON_BENCH_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 7
}

type routeClock struct {
	b    *testing.B
	bed  *testbed.Bed
	upd  <-chan route.Update
	idx  [2]int
	mgr  *route.Manager
	nl   *route.Netlink
	cncl context.CancelFunc
}

func newRouteClock(b *testing.B, bed *testbed.Bed) *routeClock {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	h := testbed.Handle(b, bed.Host)
	nl, err := route.NewNetlinkAt(h)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nl.Close)
	rc := &routeClock{b: b, bed: bed, upd: route.Watch(ctx, h, slog.New(slog.DiscardHandler)), nl: nl, cncl: cancel}
	rc.mgr = route.NewManager(nl, failoverJSON{}.routeCfg())
	for i, n := range testbed.WANIf {
		l, err := nl.LinkByName(n)
		if err != nil {
			b.Fatal(err)
		}
		rc.idx[i] = l.Index
	}
	return rc
}

// until waits for the main default route to go through WAN i and returns
// when the kernel reported it (zero when it did not within timeout).
func (rc *routeClock) until(i int, timeout time.Duration) time.Time {
	deadline := time.After(timeout)
	for {
		select {
		case u := <-rc.upd:
			if u.Kind == route.RouteChanged && !u.Deleted && u.Route.Table == route.MainTable &&
				u.Route.IsDefault() && u.Route.Proto == route.Protocol && u.LinkIndex == rc.idx[i] {
				return time.Now()
			}
		case <-deadline:
			return time.Time{}
		}
	}
}

// steady waits until WAN i carries the default route, then for d more.
func (rc *routeClock) steady(i int, d time.Duration) {
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if a, _ := rc.mgr.Active(); a == i {
			break
		}
		if time.Since(start) > time.Minute {
			rc.b.Fatalf("WAN %d never became active", i)
		}
	}
	time.Sleep(d)
	for len(rc.upd) > 0 {
		<-rc.upd
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchSwitch(b *testing.B, fault func(*testbed.Bed)) {
	bed := testbed.New(b)
	// HoldMax = hold: every trial's failback waits the same base hold.
	c := startChild(b, bed, failoverJSON{HoldS: benchHold.Seconds(), HoldMaxS: benchHold.Seconds(), Prefer: true}, nil)
	c.must(15*time.Second, event.KindFailoverPrimary)
	rc := newRouteClock(b, bed)
	var sw, fb []time.Duration
	discarded := 0
	for b.Loop() {
		for len(sw) < benchTrials() {
			rc.steady(0, 1500*time.Millisecond) // also outlasts linkwatch's 1 s batching
			// Faults come at a random moment: the failback that ends the
			// previous trial is on the probe engine's grid, so a fault
			// right after the steady wait would always fall just after a
			// probe went out (the worst case, +250 ms, every time).
			time.Sleep(rand.N(time.Second))
			start := time.Now()
			fault(bed)
			injected := time.Since(start)
			at := rc.until(1, 10*time.Second)
			if at.IsZero() {
				b.Fatal("no switch within 10 s")
			}
			if injected > maxInjection && discarded < 5 {
				// The fault command itself was slow (a busy machine: other
				// tests' namespace teardown holds the kernel's rtnl lock):
				// when the fault took effect is unknown, so redo the trial.
				discarded++
				b.Logf("trial discarded: injecting the fault took %v", injected)
				bed.Heal()
				if rc.until(0, benchHold+20*time.Second).IsZero() {
					b.Fatal("no failback")
				}
				continue
			}
			sw = append(sw, at.Sub(start))
			if os.Getenv("IMON_BENCH_DEBUG") != "" && at.Sub(start) > 1500*time.Millisecond {
				b.Logf("slow switch (%v) at %s; monitor log:\n%s", at.Sub(start), start.Format("15:04:05.000"), c.err.String())
			}
			time.Sleep(time.Second)
			healed := time.Now()
			bed.Heal()
			healTook := time.Since(healed)
			at = rc.until(0, benchHold+20*time.Second)
			if at.IsZero() {
				b.Fatal("no failback")
			}
			if healTook > maxInjection {
				b.Logf("heal took %v", healTook)
			}
			fb = append(fb, at.Sub(healed))
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(median(sw)), "switch-ms-median")
	b.ReportMetric(ms(slices.Max(sw)), "switch-ms-max")
	b.ReportMetric(ms(median(fb)), "failback-ms-median")
	b.ReportMetric(benchHold.Seconds(), "hold-s")
	b.Logf("switch: %v; failback after heal: %v; %d trials redone", sw, fb, discarded)
}

// BenchmarkFailoverUpstreamCut: the primary ISP stops forwarding (its
// gateway still answers). Target: switch-ms-median <= 1500.
func BenchmarkFailoverUpstreamCut(b *testing.B) {
	benchSwitch(b, func(bed *testbed.Bed) { bed.CutUpstream(0) })
}

// BenchmarkFailoverCarrierLoss: the primary link loses carrier. Target:
// switch-ms-median <= 300 (netlink, or the carrier read on the probe
// engine's 250 ms grid, whichever comes first).
func BenchmarkFailoverCarrierLoss(b *testing.B) {
	benchSwitch(b, func(bed *testbed.Bed) { bed.CarrierLoss(0) })
}

// lossDuration is how long the primary suffers random loss
// (IMON_LOSS_SECONDS, default 120).
func lossDuration() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("IMON_LOSS_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 2 * time.Minute
}

// BenchmarkFailoverRandomLoss: 10 % random loss on the primary for two
// minutes. Target: switches = 0.
func BenchmarkFailoverRandomLoss(b *testing.B) {
	for b.Loop() {
		sw, downs := randomLoss(b, lossDuration())
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(sw), "switches")
		b.ReportMetric(float64(downs), "wan-down-events")
	}
}

// randomLoss runs the monitor with 10 % loss on the primary for d and
// counts switches and WAN-down events.
func randomLoss(tb testing.TB, d time.Duration) (switches, downs int) {
	bed := testbed.New(tb)
	c := startChild(tb, bed, failoverJSON{HoldS: benchHold.Seconds(), Prefer: true}, nil)
	c.must(15*time.Second, event.KindFailoverPrimary)
	time.Sleep(time.Second)
	bed.RandomLoss(0, 10)
	end := time.After(d)
	for {
		select {
		case ev, ok := <-c.evs:
			if !ok {
				tb.Fatal("monitor exited")
			}
			c.seen = append(c.seen, ev)
			switch ev.Kind {
			case event.KindFailoverStandby, event.KindFailoverPrimary:
				switches++
			case event.KindFailoverWANDown:
				downs++
			}
		case <-end:
			return switches, downs
		}
	}
}
