package updown_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"imon/agent/monitor"
	"imon/agent/monitor/updown"
	"imon/agent/probe"
	"imon/agent/probe/probetest"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
)

// TestNetnsUpdown runs the updown monitor with the real probes in a netns
// testbed: the target (namespace B) is black-holed with nftables a few
// times and the monitor must journal updown-offline within about 1.5 s
// (interval 1, pingcount 2, pingwait 1) and updown-online after it. The
// monitor runs in TestNetnsUpdownChild, re-executed inside namespace A.
func TestNetnsUpdown(t *testing.T) {
	if probetest.InChild() {
		t.Skip("parent of TestNetnsUpdownChild")
	}
	tb := probetest.NewTestbed(t)
	tb.InstallBlackholes(t)
	tb.RunInNetns(t, tb.A, "TestNetnsUpdownChild", 2*time.Minute, "IMON_CUTS=3")
}

// BenchmarkNetnsDetection measures the real detection latency, cut to
// updown-offline, over 10·b.N black-holing cuts at random times (each cut
// takes about 3 s: run it with -benchtime 2x), with interval 1, pingcount 2,
// pingwait 1, no DNS check and one (live) addping host. Figures: ms-median,
// ms-p95, ms-max measured from just before the nft command that cuts, and
// the median from its return (the cut happens in between).
func BenchmarkNetnsDetection(b *testing.B) {
	if probetest.InChild() {
		b.Skip("child")
	}
	tb := probetest.NewTestbed(b)
	tb.InstallBlackholes(b)
	cuts := 10 * b.N
	out := tb.RunInNetns(b, tb.A, "TestNetnsUpdownChild", time.Duration(cuts)*10*time.Second+time.Minute,
		"IMON_CUTS="+strconv.Itoa(cuts), "IMON_CUT_SLACK=5s")
	var lat, after []float64
	for _, m := range regexp.MustCompile(`LATENCY_MS ([0-9.]+) ([0-9.]+)`).FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		w, _ := strconv.ParseFloat(m[2], 64)
		lat, after = append(lat, v), append(after, w)
	}
	if len(lat) != cuts {
		b.Fatalf("%d latencies for %d cuts", len(lat), cuts)
	}
	slices.Sort(lat)
	slices.Sort(after)
	b.ReportMetric(lat[len(lat)/2], "ms-median")
	b.ReportMetric(lat[len(lat)*95/100], "ms-p95")
	b.ReportMetric(lat[len(lat)-1], "ms-max")
	b.ReportMetric(after[len(after)/2], "ms-median-from-nft-return")
}

func TestNetnsUpdownChild(t *testing.T) {
	if !probetest.InChild() {
		t.Skip("run by TestNetnsUpdown inside a network namespace")
	}
	probetest.AssertNotHostNetns(t)
	tb := probetest.ChildTestbed(t)
	cuts, _ := strconv.Atoi(os.Getenv("IMON_CUTS"))
	cuts = max(cuts, 1)
	// Upper bound of a detection: pingwait + 2 spacings = 1.5 s, plus slack
	// for a loaded machine (the benchmark only reports).
	limit := 1500*time.Millisecond + time.Second
	if d, err := time.ParseDuration(os.Getenv("IMON_CUT_SLACK")); err == nil {
		limit = 1500*time.Millisecond + d
	}

	cfg := config.Updown{
		Probe:     config.Probe{Enable: true, Interval: time.Second, PingCount: 2, PingWait: time.Second},
		MonitorIP: tb.AddrB.String(),
		AddPing:   []string{tb.AddrA.String()},
	}
	j := &nettest.Recorder{C: make(chan event.Event, 16)}
	icmp, res, dns := probe.NewPinger(nil), probe.NewResolver(nil), probe.NewDNSChecker(nil)
	dns.Resolver = res
	m, err := updown.New(cfg, updown.Deps{Streamer: icmp, Pinger: icmp, Resolver: res, DNS: dns})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, monitor.Env{Instance: "netns", Logger: slog.New(slog.DiscardHandler), Emit: j.Emit})
	}()
	waitFor := func(kind string, within time.Duration) event.Event {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev := <-j.C:
				if ev.Kind == kind {
					return ev
				}
				t.Logf("event %s: %s", ev.Kind, ev.Msg)
			case <-deadline:
				t.Fatalf("no %s within %v", kind, within)
			}
		}
	}
	first := waitFor(updown.KindStatus, 5*time.Second)
	t.Logf("first: %s", first.Msg)

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range cuts {
		time.Sleep(time.Second + time.Duration(rnd.Int64N(int64(time.Second))))
		// The rule takes effect while nft runs: measure from before it
		// (conservative) and from after it (optimistic).
		cut := time.Now()
		tb.Blackhole(t, tb.AddrB, true)
		active := time.Now()
		off := waitFor(event.KindUpdownOffline, 10*time.Second)
		lat := off.Time.Sub(cut)
		fmt.Printf("LATENCY_MS %.1f %.1f\n", float64(lat)/1e6, float64(off.Time.Sub(active))/1e6)
		if lat > limit {
			t.Errorf("cut %d: offline after %v, want <= %v", i, lat, limit)
		}
		if off.Msg != "Monitored IP "+tb.AddrB.String()+" offline; Secondary IP "+tb.AddrA.String()+" online" {
			t.Errorf("offline msg %q", off.Msg)
		}
		tb.Blackhole(t, tb.AddrB, false)
		back := time.Now()
		on := waitFor(event.KindUpdownOnline, 5*time.Second)
		if d := on.Time.Sub(back); d > 250*time.Millisecond+time.Second {
			t.Errorf("cut %d: online %v after the repair", i, d)
		}
		t.Logf("cut %d: offline after %v; %s", i, lat, on.Msg)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
