package failover_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"imon/agent/monitor"
	"imon/agent/monitor/failover"
	"imon/agent/probe"
	"imon/agent/route"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
	"imon/internal/testbed"
)

// The tests in this file run the real monitor (netlink, pro-bing probes)
// in a child process of the test binary started with `ip netns exec` inside
// a testbed's host namespace, so that every socket it opens lives there.
// The child prints each journaled event as a JSON line.

const (
	helperEnv = "IMON_FAILOVER_HELPER"
	cfgEnv    = "IMON_FAILOVER_CFG"
	lastEnv   = "IMON_FAILOVER_LAST"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain runs the monitor until SIGTERM.
func helperMain() int {
	var cfg struct{ F failoverJSON }
	if err := json.Unmarshal([]byte(os.Getenv(cfgEnv)), &cfg.F); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		return 2
	}
	var last event.Event
	if s := os.Getenv(lastEnv); s != "" {
		if err := json.Unmarshal([]byte(s), &last); err != nil {
			fmt.Fprintln(os.Stderr, "helper last:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var mu sync.Mutex
	var seq uint64
	enc := json.NewEncoder(os.Stdout)
	emit := func(_ context.Context, ev event.Event) (event.Event, error) {
		mu.Lock()
		defer mu.Unlock()
		seq++
		ev.Seq, ev.Time, ev.Instance = seq, time.Now().UTC(), "netns"
		return ev, enc.Encode(ev)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The real seams, as cmd/imon injects them.
	icmp, res := probe.NewPinger(logger), probe.NewResolver(logger)
	res.Network = "ip4"
	m, err := failover.New(cfg.F.config(), failover.Deps{
		OpenKernel: func() (route.Kernel, error) { return route.NewNetlink() },
		Streamer:   icmp, Pinger: icmp, Resolver: res,
		Updates: func(ctx context.Context, log *slog.Logger) <-chan route.Update {
			return route.Watch(ctx, netns.None(), log)
		},
		Carrier: icmp.WatchCarrier,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "new:", err)
		return 2
	}
	if err := m.Run(ctx, monitor.Env{Instance: "netns", Logger: logger, Emit: emit, Last: last}); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return 0
}

// failoverJSON carries the config to the child.
type failoverJSON struct {
	HoldS     float64
	HoldMaxS  float64
	DownAfter int
	Spacing   time.Duration
	Prefer    bool
}

func (f failoverJSON) config() config.Failover {
	c := testConfig()
	c.Primary.If, c.Standby.If = testbed.WANIf[0], testbed.WANIf[1]
	c.Primary.GW, c.Standby.GW = testbed.Gateway[0], testbed.Gateway[1]
	c.Primary.Ping, c.Standby.Ping = testbed.Target.String(), testbed.Target.String()
	c.Standby.PostPing = testbed.Target2.String()
	c.HoldTime = time.Duration(f.HoldS * float64(time.Second))
	c.PreferPrimary = f.Prefer
	if f.HoldMaxS > 0 {
		c.HoldMax = time.Duration(f.HoldMaxS * float64(time.Second))
	}
	if f.DownAfter > 0 {
		c.DownAfter = f.DownAfter
	}
	if f.Spacing > 0 {
		c.ProbeInterval = f.Spacing
	}
	return c
}

func (f failoverJSON) routeCfg() route.Config { return failover.RouteConfig(f.config()) }

// TestNetnsRandomLoss: 10 % random loss on the primary for 30 s causes no
// switch and no WAN-down event (the 2-minute run is e2e's
// TestFailoverRandomLoss with the binary, and BenchmarkFailoverRandomLoss).
func TestNetnsRandomLoss(t *testing.T) {
	sw, downs := randomLoss(t, 30*time.Second)
	if sw != 0 || downs != 0 {
		t.Errorf("under 10%% random loss: %d switches, %d wan-down events", sw, downs)
	}
}

// child is a running monitor process in the testbed.
type child struct {
	t    testing.TB
	cmd  *exec.Cmd
	evs  chan event.Event
	seen []event.Event
	err  nettest.Buffer // the child's stderr
	done chan struct{}
}

func startChild(t testing.TB, b *testbed.Bed, f failoverJSON, last *event.Event) *child {
	t.Helper()
	cfg, _ := json.Marshal(f)
	cmd := testbed.Command(b.Host, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", cfgEnv+"="+string(cfg))
	if last != nil {
		l, _ := json.Marshal(last)
		cmd.Env = append(cmd.Env, lastEnv+"="+string(l))
	}
	c := &child{t: t, cmd: cmd, evs: make(chan event.Event, 1024), done: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &c.err
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.evs)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		for sc.Scan() {
			var ev event.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err == nil {
				c.evs <- ev
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("monitor stderr:\n%s", c.err.String())
		}
	})
	return c
}

// stop sends SIGTERM and waits for the process to exit.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// next waits for the next event of kind (among kinds) and returns it.
func (c *child) next(timeout time.Duration, kinds ...string) (event.Event, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.evs:
			if !ok {
				return event.Event{}, false
			}
			c.seen = append(c.seen, ev)
			for _, k := range kinds {
				if ev.Kind == k {
					return ev, true
				}
			}
		case <-deadline:
			return event.Event{}, false
		}
	}
}

func (c *child) must(timeout time.Duration, kinds ...string) event.Event {
	c.t.Helper()
	ev, ok := c.next(timeout, kinds...)
	if !ok {
		c.t.Fatalf("no %v within %v; seen: %v", kinds, timeout, summary(c.seen))
	}
	return ev
}

// none asserts that no event of the kinds arrives within d.
func (c *child) none(d time.Duration, kinds ...string) {
	c.t.Helper()
	if ev, ok := c.next(d, kinds...); ok {
		c.t.Fatalf("unexpected %s: %s; seen: %v", ev.Kind, ev.Msg, summary(c.seen))
	}
}

func summary(evs []event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s %q", e.Time.Format("15:04:05.000"), e.Kind, e.Msg)
	}
	return b.String()
}

func defaultVia(t testing.TB, b *testbed.Bed) string {
	t.Helper()
	return b.DefaultRoute()
}

func TestNetnsCutFailbackBothDown(t *testing.T) {
	b := testbed.New(t)
	c := startChild(t, b, failoverJSON{HoldS: 3, Prefer: true}, nil)
	c.must(10*time.Second, event.KindFailoverPrimary)
	if d := defaultVia(t, b); !strings.Contains(d, "dev wan0 proto 201 metric 201") {
		t.Fatalf("default route %q", d)
	}
	if !testbed.Ping(t, b.LAN, testbed.LANClient, testbed.Target, time.Second) {
		t.Error("LAN offline with the primary active")
	}

	// A LAN flow masqueraded to the primary's address.
	if !testbed.Ping(t, b.LAN, testbed.LANClient, testbed.Target2, time.Second) {
		t.Error("LAN client cannot reach Target2")
	}
	lanFlow := func() bool {
		out, _ := testbed.Exec(b.Host, "conntrack", "-L", "-p", "icmp", "-s", testbed.LANClient.String(), "--reply-dst", testbed.HostWAN[0].String())
		return strings.Contains(out, "src="+testbed.LANClient.String())
	}
	if !lanFlow() {
		t.Error("no conntrack entry for the LAN flow before the switch")
	}

	// Upstream cut: the gateway still answers, the internet does not.
	b.CutUpstream(0)
	start := time.Now()
	c.must(5*time.Second, event.KindFailoverStandby)
	t.Logf("upstream cut → switched in %v", time.Since(start))
	if d := defaultVia(t, b); !strings.Contains(d, "dev wan1 proto 201 metric 201") || strings.Count(d, "\n") != 0 {
		t.Errorf("default route after the cut %q", d)
	}
	if !testbed.Ping(t, b.LAN, testbed.LANClient, testbed.Target, time.Second) {
		t.Error("LAN offline after the switch")
	}
	if lanFlow() {
		t.Error("the LAN flow's conntrack entry via the failed WAN survived the switch")
	}
	pp := c.must(5*time.Second, event.KindFailoverPostping)
	if len(pp.Args) != 2 || pp.Args[1] != "online" {
		t.Errorf("postping %v", pp.Args)
	}

	// Heal: failback only after the hold.
	b.Heal()
	healed := time.Now()
	up := c.must(5*time.Second, event.KindFailoverWANUp)
	if up.Args[0] != "pnet:Primary:wan0:192.0.2.2" {
		t.Errorf("wan-up args %v", up.Args)
	}
	c.must(10*time.Second, event.KindFailoverPrimary)
	if d := time.Since(healed); d < 3*time.Second {
		t.Errorf("failback %v after heal, before the 3 s hold", d)
	}

	// The standby's upstream dies while the primary is active: noticed.
	b.CutUpstream(1)
	down := c.must(5*time.Second, event.KindFailoverWANDown)
	if !strings.Contains(down.Args[0], ":Standby:wan1:") {
		t.Errorf("wan-down for %v, want the standby", down.Args)
	}
	// Both down: bothdown, and the route stays.
	b.CutUpstream(0)
	c.must(5*time.Second, event.KindFailoverBothDown)
	if d := defaultVia(t, b); !strings.Contains(d, "dev wan0") {
		t.Errorf("default route during bothdown %q", d)
	}
	b.HealWAN(1)
	c.must(5*time.Second, event.KindFailoverStandby)
}

func TestNetnsCarrierLoss(t *testing.T) {
	b := testbed.New(t)
	c := startChild(t, b, failoverJSON{HoldS: 3, Prefer: true}, nil)
	c.must(10*time.Second, event.KindFailoverPrimary)
	time.Sleep(1500 * time.Millisecond) // let linkwatch's 1 s batching settle
	b.CarrierLoss(0)
	start := time.Now()
	ev := c.must(3*time.Second, event.KindFailoverStandby)
	t.Logf("carrier loss → switched in %v", time.Since(start))
	var data map[string]any
	_ = ev.DecodeData(&data)
	if !strings.Contains(fmt.Sprint(data["reason"]), "carrier") {
		t.Errorf("reason %v", data)
	}
	b.Heal()
	c.must(15*time.Second, event.KindFailoverPrimary)
	if d := defaultVia(t, b); !strings.Contains(d, "dev wan0 proto 201") || strings.Count(d, "\n") != 0 {
		t.Errorf("default route after recovery %q", d)
	}
}

// TestNetnsRestart stops the monitor mid-failover and starts it again: the
// route is adopted (no duplicate, no flap).
func TestNetnsRestart(t *testing.T) {
	b := testbed.New(t)
	c := startChild(t, b, failoverJSON{HoldS: 30, Prefer: true}, nil)
	c.must(10*time.Second, event.KindFailoverPrimary)
	b.CutUpstream(0)
	c.must(5*time.Second, event.KindFailoverStandby)
	b.Heal()
	c.must(5*time.Second, event.KindFailoverWANUp) // primary back, hold running
	c.stop()
	last := c.must(5*time.Second, failover.KindStopped)
	if d := defaultVia(t, b); !strings.Contains(d, "dev wan1 proto 201") {
		t.Fatalf("default route after stop %q", d)
	}
	if r := b.Run(b.Host, "ip", "rule"); strings.Contains(r, "proto 201") {
		t.Errorf("rules left after stop:\n%s", r)
	}
	c2 := startChild(t, b, failoverJSON{HoldS: 30, Prefer: true}, &last)
	c2.must(10*time.Second, failover.KindAdopted)
	c2.none(5*time.Second, event.KindFailoverPrimary, event.KindFailoverStandby)
	if d := defaultVia(t, b); !strings.Contains(d, "dev wan1 proto 201") || strings.Count(d, "\n") != 0 {
		t.Errorf("default route after restart %q", d)
	}
}

// TestNetnsProbesOwnWAN captures the probes with tcpdump: each WAN's probes
// leave through it, the standby's too while the primary is active.
func TestNetnsProbesOwnWAN(t *testing.T) {
	b := testbed.New(t)
	nettest.NeedCmd(t, "tcpdump")
	c := startChild(t, b, failoverJSON{HoldS: 3, Prefer: true}, nil)
	c.must(10*time.Second, event.KindFailoverPrimary)
	count := func(ifname, src string) int {
		out, _ := testbed.Exec(b.Host, "timeout", "2", "tcpdump", "-n", "-l", "-i", ifname,
			"icmp[icmptype] == icmp-echo and dst host "+testbed.Target.String()+" and src host "+src)
		return strings.Count(out, "ICMP echo request")
	}
	var wg sync.WaitGroup
	res := map[string]int{}
	var mu sync.Mutex
	for _, tc := range [][2]string{{"wan0", "192.0.2.2"}, {"wan1", "192.0.2.10"}, {"wan0", "192.0.2.10"}, {"wan1", "192.0.2.2"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := count(tc[0], tc[1])
			mu.Lock()
			res[tc[0]+" from "+tc[1]] = n
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("echo requests seen in 2 s: %v", res)
	if res["wan0 from 192.0.2.2"] < 5 || res["wan1 from 192.0.2.10"] < 5 {
		t.Errorf("probes missing on their own WAN: %v", res)
	}
	if res["wan0 from 192.0.2.10"] != 0 || res["wan1 from 192.0.2.2"] != 0 {
		t.Errorf("probes on the wrong WAN: %v", res)
	}
}

// TestNetnsAddressChange renumbers the standby (a DHCP renew): its rules
// and probes follow the new address, and NETINFO carries it.
func TestNetnsAddressChange(t *testing.T) {
	b := testbed.New(t)
	c := startChild(t, b, failoverJSON{HoldS: 3, Prefer: true}, nil)
	c.must(10*time.Second, event.KindFailoverPrimary)
	b.Run(b.Host, "ip", "addr", "add", "192.0.2.11/29", "dev", "wan1")
	b.Run(b.Host, "ip", "addr", "del", "192.0.2.10/29", "dev", "wan1")
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		r := b.Run(b.Host, "ip", "rule")
		if strings.Contains(r, "from 192.0.2.11 lookup 202") && !strings.Contains(r, "192.0.2.10") {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("rules not rebound:\n%s", r)
		}
	}
	time.Sleep(time.Second) // the standby proves itself again through the new address
	b.CutUpstream(0)
	ev := c.must(5*time.Second, event.KindFailoverStandby)
	if ev.Args[0] != "snet:Standby:wan1:192.0.2.11" {
		t.Errorf("NETINFO %q", ev.Args[0])
	}
	if !testbed.Ping(t, b.LAN, testbed.LANClient, testbed.Target, time.Second) {
		t.Error("LAN offline via the renumbered standby")
	}
}

// TestNetnsReassert: something else deletes imon's default route, or a
// rule: imon puts them back.
func TestNetnsReassert(t *testing.T) {
	b := testbed.New(t)
	c := startChild(t, b, failoverJSON{HoldS: 3, Prefer: true}, nil)
	c.must(10*time.Second, event.KindFailoverPrimary)
	b.Run(b.Host, "ip", "route", "del", "default", "proto", "201")
	b.Run(b.Host, "ip", "rule", "del", "pref", "10104")
	deadline := time.Now().Add(3 * time.Second)
	for {
		d, r := b.DefaultRoute(), b.Run(b.Host, "ip", "rule")
		if strings.Contains(d, "dev wan0 proto 201 metric 201") && strings.Contains(r, "10104:\tfrom 192.0.2.10 lookup 202") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not re-asserted: default %q\n%s", d, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A rule alone: rules are watched too (no route changes to hear of).
	b.Run(b.Host, "ip", "rule", "del", "pref", "10104")
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := b.Run(b.Host, "ip", "rule")
		if strings.Contains(r, "10104:\tfrom 192.0.2.10 lookup 202") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rule not re-asserted within 3 s:\n%s", r)
		}
	}
	c.none(time.Second, event.KindFailoverPrimary, event.KindFailoverStandby)
}
