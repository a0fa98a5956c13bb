package updown_test

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
	"imon/agent/monitor/updown"
	"imon/agent/probe/probetest"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
)

var (
	target = netip.MustParseAddr("192.0.2.1")
	router = netip.MustParseAddr("192.0.2.254")
)

type fixture struct {
	net  *probetest.Net
	res  *probetest.Resolver
	dns  *probetest.DNS
	j    *nettest.Recorder
	mon  *updown.Monitor
	done chan error
	stop context.CancelFunc
	live chan func() // the agent watchdog's liveness requests
}

func fastCfg() config.Updown {
	return config.Updown{
		Probe:     config.Probe{Enable: true, Interval: time.Second, PingCount: 2, PingWait: time.Second},
		MonitorIP: target.String(),
	}
}

// start runs the monitor in the background (inside a synctest bubble).
func start(t *testing.T, cfg config.Updown, last event.Event, setup func(f *fixture)) *fixture {
	f := &fixture{
		net:  probetest.NewNet(1),
		res:  probetest.NewResolver(nil),
		dns:  probetest.NewDNS(true, 20*time.Millisecond),
		j:    &nettest.Recorder{},
		done: make(chan error, 1),
		live: make(chan func(), 1),
	}
	f.net.SetUp(target, true)
	f.net.SetUp(router, true)
	if setup != nil {
		setup(f)
	}
	m, err := updown.New(cfg, updown.Deps{Streamer: f.net, Pinger: f.net, Resolver: f.res, DNS: f.dns})
	if err != nil {
		t.Fatal(err)
	}
	f.mon = m
	ctx, cancel := context.WithCancel(t.Context())
	f.stop = cancel
	env := monitor.Env{Instance: "test", Logger: slog.New(slog.DiscardHandler), Emit: f.j.Emit, Last: last, Liveness: f.live}
	go func() { f.done <- f.mon.Run(ctx, env) }()
	return f
}

// finish stops the monitor and checks that Run returned nil.
func (f *fixture) finish(t *testing.T) {
	t.Helper()
	f.stop()
	if err := <-f.done; err != nil {
		t.Errorf("Run returned %v, want nil after cancel", err)
	}
}

func TestRunOutageAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, fastCfg(), event.Event{}, nil)
		// Off the 250ms probe grid, so that no probe is sent at the very
		// instant of the cut.
		time.Sleep(5*time.Second + 100*time.Millisecond)
		if got := f.j.Kinds(); !slices.Equal(got, []string{updown.KindStatus}) {
			t.Fatalf("after 5s up: %v", got)
		}
		cut := time.Now()
		f.net.SetUp(target, false)
		time.Sleep(10 * time.Second)
		evs := f.j.Events()
		if len(evs) != 2 || evs[1].Kind != event.KindUpdownOffline {
			t.Fatalf("after the cut: %v", f.j.Kinds())
		}
		off := evs[1]
		if d := off.Time.Sub(cut); d < 1250*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("offline journaled %v after the cut, want 1.25..1.5s", d)
		}
		if !slices.Equal(off.Args, []string{"192.0.2.1"}) || off.Msg != "Monitored IP 192.0.2.1 offline" {
			t.Errorf("offline event %q %q", off.Args, off.Msg)
		}
		var st updown.State
		if err := off.DecodeState(&st); err != nil || st.Up || st.Status != updown.StatusDown || st.Outages != 1 {
			t.Errorf("state %+v %v", st, err)
		}
		// The outage is dated back to the last reply before the cut.
		if since := st.Since.Time; since.After(cut) || cut.Sub(since) > 250*time.Millisecond {
			t.Errorf("since %v, cut %v", since, cut)
		}

		f.net.SetUp(target, true)
		back := time.Now()
		time.Sleep(2 * time.Second)
		evs = f.j.Events()
		if len(evs) != 3 || evs[2].Kind != event.KindUpdownOnline {
			t.Fatalf("after recovery: %v", f.j.Kinds())
		}
		on := evs[2]
		if d := on.Time.Sub(back); d > 260*time.Millisecond {
			t.Errorf("online journaled %v after recovery", d)
		}
		if len(on.Args) != 2 || on.Args[0] != "192.0.2.1" || on.Args[1] != "0:0:0:10" {
			t.Errorf("online args %q (outage ~10s)", on.Args)
		}
		if !strings.HasPrefix(on.Msg, "Monitored IP 192.0.2.1 online. Outage Duration: 0 days 0 hours, 0 minutes 10 seconds") {
			t.Errorf("online msg %q", on.Msg)
		}
		f.finish(t)
		// Paced as documented: one probe every interval/(2*pingcount).
		if s := f.net.Streams(); len(s) != 1 || s[0].Opt.Spacing != 250*time.Millisecond || s[0].Opt.Wait != time.Second {
			t.Errorf("streams %+v", s)
		}
	})
}

func TestRunAddping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastCfg()
		cfg.AddPing = []string{router.String(), "gone.example", "192.0.2.77"}
		f := start(t, cfg, event.Event{}, nil)
		time.Sleep(3*time.Second + 100*time.Millisecond)
		f.net.SetUp(target, false)
		time.Sleep(5 * time.Second)
		evs := f.j.Events()
		if len(evs) != 2 {
			t.Fatalf("events %v", f.j.Kinds())
		}
		want := "Monitored IP 192.0.2.1 offline; Secondary IP 192.0.2.254 online; Secondary IP gone.example offline; Secondary IP 192.0.2.77 offline"
		if evs[1].Msg != want {
			t.Errorf("msg %q\nwant %q", evs[1].Msg, want)
		}
		var data struct {
			Addping []updown.AddpingStatus `json:"addping"`
		}
		if err := json.Unmarshal(evs[1].Data, &data); err != nil || len(data.Addping) != 3 {
			t.Fatalf("data %s %v", evs[1].Data, err)
		}
		if a := data.Addping[0]; !a.Alive || a.RTTms != 10 || a.Addr != router.String() {
			t.Errorf("router %+v", a)
		}
		if a := data.Addping[1]; a.Alive || a.Error == "" {
			t.Errorf("unresolvable %+v", a)
		}
		// Addping is pinged concurrently: up to pingcount requests 100ms
		// apart waiting pingwait each, so a dead host costs ~1.1s however
		// many there are, and a live one an RTT.
		pings := f.net.Pings()
		if len(pings) != 4 { // 2 resolvable hosts, at the first status and at the outage
			t.Errorf("%d pings", len(pings))
		}
		if o := pings[len(pings)-1].Opt; o.Count != 2 || o.Spacing != updown.AddpingSpacing || o.Wait != time.Second || !o.UntilReply {
			t.Errorf("addping options %+v", o)
		}
		f.finish(t)
	})
}

func TestRunDNSRefutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastCfg()
		cfg.DNSServer, cfg.DNSLookup = "192.0.2.53", "example.com"
		f := start(t, cfg, event.Event{}, nil)
		time.Sleep(2*time.Second + 100*time.Millisecond)
		f.net.SetUp(target, false) // ping blocked, internet fine
		time.Sleep(10 * time.Second)
		if got := f.j.Kinds(); !slices.Equal(got, []string{updown.KindStatus, updown.KindRefuted}) {
			t.Fatalf("events %v", got)
		}
		calls := len(f.dns.Calls())
		if calls < 9 || calls > 11 { // rechecked every down-interval (1s)
			t.Errorf("%d DNS checks in 10s of refuted outage", calls)
		}
		f.dns.SetAnswering(false) // now the internet is really down
		time.Sleep(3 * time.Second)
		evs := f.j.Events()
		if len(evs) != 3 || evs[2].Kind != event.KindUpdownOffline {
			t.Fatalf("events %v", f.j.Kinds())
		}
		f.finish(t)
	})
}

func TestRunResolveFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastCfg()
		cfg.MonitorIP = "host.example"
		f := start(t, cfg, event.Event{}, func(f *fixture) { f.res.Fail("host.example", nil) })
		time.Sleep(10 * time.Second)
		evs := f.j.Events()
		if len(evs) != 1 || evs[0].Kind != updown.KindResolveFailed || evs[0].Level != event.LevelWarn {
			t.Fatalf("events %v", f.j.Kinds())
		}
		if n := len(f.res.Calls()); n < 9 {
			t.Errorf("resolved %d times in 10s, want a retry every down-interval", n)
		}
		f.res.Set("host.example", target)
		time.Sleep(2 * time.Second)
		evs = f.j.Events()
		if len(evs) != 2 || evs[1].Kind != updown.KindStatus || !strings.Contains(evs[1].Msg, "Monitored IP host.example online") {
			t.Fatalf("events %v", f.j.Kinds())
		}
		var st updown.State
		if err := evs[1].DecodeState(&st); err != nil || st.Addr != "192.0.2.1" || st.ResolveError != "" || st.Target != "host.example" {
			t.Errorf("state %+v %v", st, err)
		}
		f.finish(t)
	})
}

func TestRunNameRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastCfg()
		cfg.MonitorIP = "host.example"
		f := start(t, cfg, event.Event{}, func(f *fixture) { f.res.Set("host.example", target) })
		// Just before the 5-minute refresh the DNS dies (slow lookups) and
		// the target with it: the refresh must not hold up the detection.
		time.Sleep(5*time.Minute - 100*time.Millisecond)
		f.res.SetDelay(3 * time.Second)
		f.res.Fail("host.example", nil)
		cut := time.Now()
		f.net.SetUp(target, false)
		time.Sleep(5 * time.Second)
		evs := f.j.Events()
		if len(evs) != 2 || evs[1].Kind != event.KindUpdownOffline {
			t.Fatalf("events %v", f.j.Kinds())
		}
		if d := evs[1].Time.Sub(cut); d > 1500*time.Millisecond {
			t.Errorf("offline %v after the cut: held up by the refresh", d)
		}
		// The name moves to another (live) address: probing follows it at
		// the next refresh.
		f.res.SetDelay(0)
		f.res.Set("host.example", router)
		time.Sleep(5 * time.Minute)
		streams := f.net.Streams()
		if len(streams) != 2 || streams[1].Addr != router {
			t.Fatalf("streams %+v", streams)
		}
		evs = f.j.Events()
		if len(evs) != 3 || evs[2].Kind != event.KindUpdownOnline {
			t.Fatalf("events %v", f.j.Kinds())
		}
		f.finish(t)
	})
}

func TestRunRestoresOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		since := time.Now().Add(-time.Hour)
		last := event.New(event.MonitorUpdown, event.KindUpdownOffline, "", nil).
			WithState(updown.State{Target: "192.0.2.1", Status: updown.StatusDown, Since: updown.At(since), Outages: 3})
		last.Seq = 42
		f := start(t, fastCfg(), last, func(f *fixture) { f.net.SetUp(target, false) })
		time.Sleep(5*time.Second + 100*time.Millisecond)
		if got := f.j.Kinds(); len(got) != 0 {
			t.Fatalf("still down after a restart: want no event, got %v", got)
		}
		f.net.SetUp(target, true)
		time.Sleep(time.Second)
		evs := f.j.Events()
		if len(evs) != 1 || evs[0].Kind != event.KindUpdownOnline || evs[0].Args[1] != "0:1:0:5" {
			t.Fatalf("events %v %v", f.j.Kinds(), evs)
		}
		f.finish(t)
	})
}

func TestRunErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, fastCfg(), event.Event{}, func(f *fixture) { f.net.FailStreams(errors.New("socket: operation not permitted")) })
		if err := <-f.done; err == nil || !strings.Contains(err.Error(), "operation not permitted") {
			t.Errorf("stream failure: Run returned %v", err)
		}
		f.stop()

		f = start(t, fastCfg(), event.Event{}, func(f *fixture) { f.j.Err = func(event.Event) error { return errors.New("disk full") } })
		if err := <-f.done; err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("journal failure: Run returned %v", err)
		}
		f.stop()
	})
}

// A journal failure while an addping round is still running: Run must
// return the error and stop its helpers (synctest fails on a goroutine
// left blocked).
func TestRunJournalFailureWithHelpersInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastCfg()
		cfg.AddPing = []string{"192.0.2.99"} // a black hole: every round takes 1.1s
		f := start(t, cfg, event.Event{}, func(f *fixture) {
			f.j.Err = func(ev event.Event) error {
				if ev.Kind == event.KindUpdownOffline {
					return errors.New("disk full")
				}
				return nil
			}
		})
		time.Sleep(3*time.Second + 100*time.Millisecond)
		f.net.SetUp(target, false)
		time.Sleep(1500 * time.Millisecond) // offline decided, its addping round running
		f.net.SetUp(target, true)           // online decided, a second round starts
		if err := <-f.done; err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Run returned %v", err)
		}
		f.stop()
	})
}

// TestNew: New applies the config (and its defaults to zero settings), and
// refuses deps with a seam missing, naming it.
func TestNew(t *testing.T) {
	n := probetest.NewNet(1)
	deps := updown.Deps{Streamer: n, Pinger: n, Resolver: probetest.NewResolver(nil), DNS: probetest.NewDNS(true, 0)}
	cfg := config.Updown{
		Probe:     config.Probe{Enable: true, Interval: 10 * time.Second, PingCount: 2, PingWait: time.Second},
		MonitorIP: "1.1.1.1", AddPing: []string{"192.168.92.1", "192.168.1.1"},
		DNSServer: "1.1.1.1", DNSLookup: "google.com", DownInterval: time.Second,
	}
	m, err := updown.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "updown" {
		t.Errorf("name %q", m.Name())
	}
	if o := m.StreamOptions(); o.Spacing != 2500*time.Millisecond || o.Wait != time.Second {
		t.Errorf("stream options %+v", o)
	}
	p := m.Params()
	if p.Target != "1.1.1.1" || p.PingCount != 2 || p.DNSLookup != "google.com" || len(p.AddPing) != 2 {
		t.Errorf("params %+v", p)
	}
	// Zero settings get the defaults.
	m, err = updown.New(config.Updown{MonitorIP: "x"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if o := m.StreamOptions(); o.Spacing != 2500*time.Millisecond || o.Wait != time.Second {
		t.Errorf("defaults %+v", o)
	}
	deps.DNS = nil
	if _, err := updown.New(cfg, deps); err == nil || !strings.Contains(err.Error(), "DNS") {
		t.Errorf("New without a DNS checker: %v", err)
	}
}

// TestRunAnswersLiveness: the loop answers the agent watchdog's liveness
// requests at once, without a journaled event for them.
func TestRunAnswersLiveness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, fastCfg(), event.Event{}, nil)
		time.Sleep(3 * time.Second)
		n := len(f.j.Events())
		for i := range 3 {
			answered := make(chan struct{})
			f.live <- func() { close(answered) }
			synctest.Wait()
			select {
			case <-answered:
			default:
				t.Fatalf("liveness request %d not answered", i)
			}
		}
		if got := len(f.j.Events()); got != n {
			t.Errorf("%d events after the liveness requests, %d before", got, n)
		}
		f.finish(t)
	})
}
