package ping_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/monitor"
	"imon/agent/monitor/ping"
	"imon/agent/probe"
	"imon/agent/probe/probetest"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
)

var target = netip.MustParseAddr("192.168.92.1")

func us(n int) time.Duration { return time.Duration(n) * time.Microsecond }

func TestResult(t *testing.T) {
	end := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		r        probe.PingResult
		arg, msg string
	}{
		// The original's sample log line.
		"alive": {
			r:   probe.Summarize(target, 2, []time.Duration{us(434), us(4894)}),
			arg: "192.168.92.1:True:0.434:2.664:4.894:0.0:4.460",
			msg: "Ping Result: IP:192.168.92.1 State:True minrtt:0.434 avgrtt:2.664 maxrtt:4.894 loss:0.0 jitter:4.460",
		},
		"dead": {
			r:   probe.Summarize(target, 2, nil),
			arg: "192.168.92.1:False:0.000:0.000:0.000:1.0:0.000",
			msg: "Ping Result: IP:192.168.92.1 State:False minrtt:0.000 avgrtt:0.000 maxrtt:0.000 loss:1.0 jitter:0.000",
		},
		"half": {
			r:   probe.Summarize(target, 2, []time.Duration{us(1500)}),
			arg: "192.168.92.1:True:1.500:1.500:1.500:0.5:0.000",
		},
		"a third lost, rounded": {
			r:   probe.Summarize(target, 3, []time.Duration{us(1000), us(1234567)}),
			arg: "192.168.92.1:True:1.000:617.784:1234.567:0.333:1233.567",
		},
	} {
		t.Run(name, func(t *testing.T) {
			ev := ping.Result("192.168.92.1", tc.r, end)
			if ev.Kind != event.KindPingResult || ev.Monitor != event.MonitorPing || !slices.Equal(ev.Args, []string{tc.arg}) {
				t.Errorf("event %s/%s args %q, want %q", ev.Monitor, ev.Kind, ev.Args, tc.arg)
			}
			if tc.msg != "" && ev.Msg != tc.msg {
				t.Errorf("msg %q\nwant %q", ev.Msg, tc.msg)
			}
			var st ping.State
			if err := ev.DecodeState(&st); err != nil {
				t.Fatal(err)
			}
			if st.Alive != tc.r.Alive() || st.Sent != tc.r.Sent || st.Recv != tc.r.Recv || len(st.RTTsMs) != tc.r.Recv ||
				st.Time != "2026-05-01T12:00:00.000Z" || st.Addr != "192.168.92.1" || st.Target != "192.168.92.1" {
				t.Errorf("state %+v", st)
			}
			if string(ev.Data) != string(ev.State) {
				t.Errorf("data %s != state %s", ev.Data, ev.State)
			}
		})
	}
	// Numeric data, not strings.
	ev := ping.Result("h", probe.Summarize(target, 2, []time.Duration{us(434), us(4894)}), end)
	var raw map[string]any
	if err := json.Unmarshal(ev.Data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["avg_ms"] != 2.664 || raw["loss"] != 0.0 || raw["jitter_ms"] != 4.46 || raw["alive"] != true {
		t.Errorf("data %s", ev.Data)
	}
}

func mustNew(t *testing.T, cfg config.Ping, deps ping.Deps) *ping.Monitor {
	t.Helper()
	m, err := ping.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, cfg config.Ping, n *probetest.Net, res *probetest.Resolver) (*nettest.Recorder, context.CancelFunc, chan error) {
	j := &nettest.Recorder{}
	m := mustNew(t, cfg, ping.Deps{Pinger: n, Resolver: res})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, monitor.Env{Instance: "t", Logger: slog.New(slog.DiscardHandler), Emit: j.Emit})
	}()
	return j, cancel, done
}

// runEnv runs m with env (Instance and Logger filled in) until stop, which
// checks that Run returned nil.
func runEnv(t *testing.T, m *ping.Monitor, env monitor.Env) (stop func()) {
	env.Instance, env.Logger = "t", slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, env) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}

func cfg(interval, wait time.Duration, count int) config.Ping {
	return config.Ping{Probe: config.Probe{Enable: true, Interval: interval, PingCount: count, PingWait: wait}, MonitorIP: target.String()}
}

func TestRunRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.Set(target, probetest.Host{Up: true, RTT: 5 * time.Millisecond})
		start := time.Now()
		j, cancel, done := run(t, cfg(10*time.Second, time.Second, 3), n, probetest.NewResolver(nil))
		time.Sleep(35 * time.Second)
		n.SetUp(target, false)
		time.Sleep(20 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		evs := j.Events()
		if len(evs) != 6 {
			t.Fatalf("%d rounds in 55s, want 6 (at 0, 10, ..., 50s)", len(evs))
		}
		for i, ev := range evs {
			// Each round ends 2 spacings (1s: min(1s, 10s/4)) + RTT after
			// its tick (alive) or after its budget (dead): no drift.
			var st ping.State
			if err := ev.DecodeState(&st); err != nil {
				t.Fatal(err)
			}
			tick := start.Add(time.Duration(i) * 10 * time.Second)
			wantEnd := tick.Add(2*time.Second + 5*time.Millisecond)
			if !st.Alive {
				wantEnd = tick.Add(2*time.Second + time.Second)
			}
			if !ev.Time.Equal(wantEnd) {
				t.Errorf("round %d ended at +%v, want +%v", i, ev.Time.Sub(start), wantEnd.Sub(start))
			}
			if alive := i < 4; st.Alive != alive {
				t.Errorf("round %d alive %v", i, st.Alive)
			}
		}
		if o := n.Pings()[0].Opt; o.Spacing != time.Second || o.Count != 3 || o.Wait != time.Second {
			t.Errorf("options %+v", o)
		}
	})
}

func TestRunSlowRoundsDoNotPileUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1) // target is a black hole: every round takes its budget
		// interval 1s, pingcount 2, pingwait 1.5s: a round takes
		// 1/3s + 1.5s > interval.
		j, cancel, done := run(t, cfg(time.Second, 1500*time.Millisecond, 2), n, probetest.NewResolver(nil))
		time.Sleep(9*time.Second + 900*time.Millisecond)
		cancel()
		<-done
		starts := n.Pings()
		if len(starts) != 5 {
			t.Errorf("%d rounds in 9.9s, want 5 (every other tick: 0, 2, 4, 6, 8s)", len(starts))
		}
		for i := 1; i < len(starts); i++ {
			if gap := starts[i].At.Sub(starts[i-1].At); gap != 2*time.Second {
				t.Errorf("round %d started %v after the previous one, want 2s (on the tick grid)", i, gap)
			}
		}
		if len(j.Events()) != len(starts) {
			t.Errorf("%d events for %d rounds", len(j.Events()), len(starts))
		}
	})
}

func TestRunResolveFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.SetUp(target, true)
		res := probetest.NewResolver(nil)
		res.Fail("router.lan", nil)
		c := cfg(time.Second, time.Second, 2)
		c.MonitorIP = "router.lan"
		j, cancel, done := run(t, c, n, res)
		time.Sleep(5*time.Second + 100*time.Millisecond)
		res.Set("router.lan", target)
		time.Sleep(2*time.Second + 500*time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, ev := range j.Events() {
			kinds = append(kinds, ev.Kind)
		}
		want := []string{ping.KindResolveFailed, event.KindPingResult, event.KindPingResult}
		if !slices.Equal(kinds, want) {
			t.Fatalf("events %v, want %v", kinds, want)
		}
		if ev := j.Events()[0]; ev.Level != event.LevelWarn || !strings.Contains(ev.Msg, "router.lan") {
			t.Errorf("resolve failure %+v", ev)
		}
		if ev := j.Events()[1]; !strings.HasPrefix(ev.Args[0], "router.lan:True:") {
			t.Errorf("args %q", ev.Args)
		}
	})
}

func TestRunPingError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.FailPings(errors.New("socket: operation not permitted"))
		_, cancel, done := run(t, cfg(time.Second, time.Second, 2), n, probetest.NewResolver(nil))
		defer cancel()
		if err := <-done; err == nil || !strings.Contains(err.Error(), "operation not permitted") {
			t.Errorf("Run returned %v", err)
		}
	})
}

// TestNew: New applies the config (and its defaults to zero settings), and
// refuses deps with a seam missing, naming it.
func TestNew(t *testing.T) {
	deps := ping.Deps{Pinger: probetest.NewNet(1), Resolver: probetest.NewResolver(nil)}
	m, err := ping.New(cfg(time.Second, time.Second, 2), deps)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "ping" {
		t.Errorf("name %q", m.Name())
	}
	if o := m.Options(); o.Spacing != time.Second/3 || o.Count != 2 || o.Wait != time.Second {
		t.Errorf("options %+v", o)
	}
	if m, err = ping.New(config.Ping{MonitorIP: "x"}, deps); err != nil {
		t.Fatal(err)
	}
	if o := m.Options(); o.Count != 2 || o.Spacing != time.Second || o.Wait != time.Second {
		t.Errorf("defaults %+v", o)
	}
	if _, err := ping.New(config.Ping{MonitorIP: "x"}, ping.Deps{Resolver: deps.Resolver}); err == nil || !strings.Contains(err.Error(), "Pinger") {
		t.Errorf("New without a pinger: %v", err)
	}
}

// TestRunAnswersLiveness: between rounds the loop answers the agent
// watchdog's liveness requests at once, without running a round for them.
func TestRunAnswersLiveness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.Set(target, probetest.Host{Up: true, RTT: 5 * time.Millisecond})
		j := &nettest.Recorder{}
		m := mustNew(t, cfg(10*time.Second, time.Second, 1), ping.Deps{Pinger: n, Resolver: probetest.NewResolver(nil)})
		live := make(chan func(), 1)
		stop := runEnv(t, m, monitor.Env{Emit: j.Emit, Liveness: live})
		time.Sleep(3 * time.Second) // the first round is over
		for i := range 3 {
			answered := make(chan struct{})
			live <- func() { close(answered) }
			synctest.Wait()
			select {
			case <-answered:
			default:
				t.Fatalf("liveness request %d not answered", i)
			}
		}
		if n := len(j.Events()); n != 1 {
			t.Errorf("%d rounds, want 1: a liveness request must not start a round", n)
		}
		stop()
	})
}

// TestRunRoundsOnEnvTicks: with env.Every (imon's: the probe engine's
// grid), rounds start at its ticks, asked for at the interval.
func TestRunRoundsOnEnvTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.Set(target, probetest.Host{Up: true, RTT: 5 * time.Millisecond})
		j := &nettest.Recorder{}
		m := mustNew(t, cfg(10*time.Second, time.Second, 1), ping.Deps{Pinger: n, Resolver: probetest.NewResolver(nil)})
		ticks := make(chan time.Time, 1)
		var period time.Duration
		every := func(_ context.Context, d time.Duration) <-chan time.Time { period = d; return ticks }
		stop := runEnv(t, m, monitor.Env{Emit: j.Emit, Every: every})
		time.Sleep(time.Minute)
		if got := len(j.Events()); got != 1 || period != 10*time.Second {
			t.Fatalf("a minute without a tick: %d rounds, ticks asked every %v; want 1 (the first), 10s", got, period)
		}
		for range 2 {
			ticks <- time.Now()
			time.Sleep(5 * time.Second)
		}
		if got := len(j.Events()); got != 3 {
			t.Errorf("%d rounds after two ticks, want 3", got)
		}
		stop()
	})
}

// TestRunStaleAndFreshTicks: after a round, a tick older than the engine's
// grid (it came while a long round ran) is skipped; one that came as the
// round ended (on the engine's grid: the same tick) starts the next round
// at once.
func TestRunStaleAndFreshTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := probetest.NewNet(1)
		n.Set(target, probetest.Host{Up: false})
		j := &nettest.Recorder{}
		m := mustNew(t, cfg(10*time.Second, time.Second, 1), ping.Deps{Pinger: n, Resolver: probetest.NewResolver(nil)})
		ticks := make(chan time.Time, 1)
		every := func(context.Context, time.Duration) <-chan time.Time { return ticks }
		stop := runEnv(t, m, monitor.Env{Emit: j.Emit, Every: every})
		ticks <- time.Now() // during the first round, which waits 1 s for a dead target
		time.Sleep(5 * time.Second)
		if got := len(j.Events()); got != 1 {
			t.Fatalf("%d rounds, want 1: a tick 1 s old at the end of a round is stale", got)
		}
		n.Set(target, probetest.Host{Up: true, RTT: 5 * time.Millisecond})
		ticks <- time.Now() // starts round 2
		ticks <- time.Now() // buffered while round 2 runs (5 ms): fresh at its end
		time.Sleep(5 * time.Second)
		if got := len(j.Events()); got != 3 {
			t.Errorf("%d rounds, want 3: a tick that came as a round ended starts the next", got)
		}
		stop()
	})
}
