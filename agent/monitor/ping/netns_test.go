package ping_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"imon/agent/monitor"
	"imon/agent/monitor/ping"
	"imon/agent/probe"
	"imon/agent/probe/probetest"
	"imon/event"
	"imon/internal/nettest"
)

// TestNetnsPing runs the ping monitor with the real prober inside a netns
// testbed (in TestNetnsPingChild, re-executed in namespace A) against a
// live host and a black-holed one.
func TestNetnsPing(t *testing.T) {
	if probetest.InChild() {
		t.Skip("parent of TestNetnsPingChild")
	}
	tb := probetest.NewTestbed(t)
	tb.InstallBlackholes(t)
	tb.RunInNetns(t, tb.A, "TestNetnsPingChild", time.Minute)
}

func TestNetnsPingChild(t *testing.T) {
	if !probetest.InChild() {
		t.Skip("run by TestNetnsPing inside a network namespace")
	}
	probetest.AssertNotHostNetns(t)
	tb := probetest.ChildTestbed(t)
	for _, tc := range []struct {
		host  string
		alive string
	}{{tb.AddrB.String(), "True"}, {tb.AddrB2.String(), "False"}} {
		j := &nettest.Recorder{}
		c := cfg(time.Second, 500*time.Millisecond, 2)
		c.MonitorIP = tc.host
		m := mustNew(t, c, ping.Deps{Pinger: probe.NewPinger(nil), Resolver: probe.NewResolver(nil)})
		ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
		err := m.Run(ctx, monitor.Env{Instance: "netns", Logger: slog.New(slog.DiscardHandler), Emit: j.Emit})
		cancel()
		if err != nil {
			t.Fatalf("%s: Run: %v", tc.host, err)
		}
		evs := j.Events()
		if len(evs) < 2 || len(evs) > 3 {
			t.Fatalf("%s: %d rounds in 2.5s with interval 1s", tc.host, len(evs))
		}
		for _, ev := range evs {
			if ev.Kind != event.KindPingResult || !strings.HasPrefix(ev.Args[0], tc.host+":"+tc.alive+":") {
				t.Errorf("%s: %s %q", tc.host, ev.Kind, ev.Args)
			}
			t.Log(ev.Msg)
		}
	}
}
