package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
	"imon/internal/testbed"
)

// These tests run the real imon binary inside the host namespace of a
// testbed (see package testbed) with the failover monitor enabled, and
// check what a user sees: the journal, the action script calls and the
// host's routes.

// failoverConfig writes a config whose failover section probes the
// internet target through both WANs (interval 1, pingcount 2, pingwait 1,
// the defaults for everything else but the hold).
func failoverConfig(t *testing.T, dir, action string, holdS int) string {
	t.Helper()
	inst := fmt.Sprintf("fo%d", time.Now().UnixNano()%1e6)
	section := fmt.Sprintf(`"failover": {
    "enable": true, "interval": 1.0, "pingcount": 2.0, "pingwait": 1.0,
    "prefer-primary": true, "metric": 201,
    "primary-if": %q, "primary-name": "pnet", "primary-gw": %q, "primary-ping": %q, "primary-postping": "",
    "standby-if": %q, "standby-name": "snet", "standby-gw": %q, "standby-ping": %q, "standby-postping": %q,
    "failback-hold": %d
  }`, testbed.WANIf[0], testbed.Gateway[0], testbed.Target, testbed.WANIf[1], testbed.Gateway[1], testbed.Target, testbed.Target2, holdS)
	return writeConfig(t, dir, inst, fmt.Sprintf(`"action": %q`, action), section)
}

// ofWAN matches an event of kind whose first argument is WAN i's NETINFO.
func ofWAN(kind string, i int) func(event.Event) bool {
	ename := []string{":Primary:", ":Standby:"}[i]
	return func(ev event.Event) bool {
		return ev.Kind == kind && len(ev.Args) > 0 && strings.Contains(ev.Args[0], ename)
	}
}

func failoverCLI(t *testing.T, b *testbed.Bed, cfg, mode string) {
	t.Helper()
	out, err := harness.Command(t, b.Host.Name, "failover", "--config", cfg, mode).CombinedOutput()
	if err != nil {
		t.Fatalf("imon failover %s: %v\n%s", mode, err, out)
	}
}

func oneDefault(t *testing.T, b *testbed.Bed, dev string) {
	t.Helper()
	d := b.DefaultRoute()
	if strings.Count(d, "\n") != 0 || !strings.Contains(d, "dev "+dev+" proto 201 metric 201") {
		t.Errorf("default routes %q, want exactly one imon route via %s", d, dev)
	}
}

// TestFailoverEndToEnd walks through the failover scenarios on one
// testbed: start, upstream cut, failback after the hold, carrier loss, a
// dead standby, both down and recovery, and manual pins.
func TestFailoverEndToEnd(t *testing.T) {
	b := testbed.New(t)
	dir := t.TempDir()
	action, calls := harness.RecordingAction(t, dir)
	cfg := failoverConfig(t, dir, action, 3)
	harness.Start(t, b.Host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "failover monitor start (is it wired into the agent?)", harness.Kind(event.KindFailoverInitial))
	w.WaitFor(10*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	oneDefault(t, b, "wan0")
	if !testbed.Ping(t, b.LAN, testbed.LANClient, testbed.Target, time.Second) {
		t.Error("LAN offline with the primary active")
	}

	t.Run("status", func(t *testing.T) {
		out, err := harness.Command(t, "", "status", "--config", cfg, "--json").Output()
		if err != nil {
			t.Fatalf("imon status: %v", err)
		}
		var st struct {
			Monitors map[string]struct {
				State struct {
					Active string `json:"active"`
					Mode   string `json:"mode"`
					WANs   []struct {
						Ifname string  `json:"ifname"`
						GW     string  `json:"gw"`
						Up     bool    `json:"up"`
						RTTms  float64 `json:"rtt_ms"`
					} `json:"wans"`
				} `json:"state"`
			} `json:"monitors"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, out)
		}
		fo := st.Monitors["failover"].State
		if fo.Active != "primary" || fo.Mode != "auto" || len(fo.WANs) != 2 || fo.WANs[1].Ifname != "wan1" || fo.WANs[1].GW != "192.0.2.9" {
			t.Errorf("failover status %+v\n%s", fo, out)
		}
	})
	t.Run("upstream cut", func(t *testing.T) {
		b.CutUpstream(0)
		start := time.Now()
		w.Next(5*time.Second, "primary down", ofWAN(event.KindFailoverWANDown, 0))
		w.Next(5*time.Second, "failover-standby", harness.Kind(event.KindFailoverStandby))
		t.Logf("switched %v after the cut", time.Since(start))
		oneDefault(t, b, "wan1")
		if !testbed.Ping(t, b.LAN, testbed.LANClient, testbed.Target, time.Second) {
			t.Error("LAN offline after the switch")
		}
		pp := w.Next(5*time.Second, "failover-postping", harness.Kind(event.KindFailoverPostping))
		if !slices.Equal(pp.Args, []string{"snet:Standby:wan1:192.0.2.10", "online"}) {
			t.Errorf("postping args %q", pp.Args)
		}
	})
	t.Run("failback after hold", func(t *testing.T) {
		// The WAN answers again part-way through Heal (several tc/nft
		// commands; slow on a loaded machine): the hold cannot start
		// before Heal does, so that is the time to measure from.
		healed := time.Now()
		b.Heal()
		w.Next(5*time.Second, "primary up", ofWAN(event.KindFailoverWANUp, 0))
		w.Next(15*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
		if d := time.Since(healed); d < 3*time.Second {
			t.Errorf("failback %v after heal, before the 3 s hold", d)
		}
		oneDefault(t, b, "wan0")
	})
	t.Run("carrier loss", func(t *testing.T) {
		time.Sleep(1500 * time.Millisecond)
		b.CarrierLoss(0)
		start := time.Now()
		w.Next(3*time.Second, "failover-standby", harness.Kind(event.KindFailoverStandby))
		t.Logf("switched %v after carrier loss", time.Since(start))
		oneDefault(t, b, "wan1")
		b.Heal()
		w.Next(30*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	})
	t.Run("standby dead while primary active", func(t *testing.T) {
		b.CutUpstream(1)
		w.Next(5*time.Second, "standby down", ofWAN(event.KindFailoverWANDown, 1))
		oneDefault(t, b, "wan0")
	})
	t.Run("both down then recovery", func(t *testing.T) {
		b.CutUpstream(0)
		bd := w.Next(5*time.Second, "failover-bothdown", harness.Kind(event.KindFailoverBothDown))
		if !slices.Equal(bd.Args, []string{"pnet:Primary:wan0:192.0.2.2", "snet:Standby:wan1:192.0.2.10"}) {
			t.Errorf("bothdown args %q", bd.Args)
		}
		oneDefault(t, b, "wan0") // the last route stays
		b.HealWAN(1)
		w.Next(5*time.Second, "failover-standby", harness.Kind(event.KindFailoverStandby))
		oneDefault(t, b, "wan1")
		b.Heal()
		w.Next(30*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	})
	t.Run("manual pin", func(t *testing.T) {
		failoverCLI(t, b, cfg, "standby")
		pinned := time.Now()
		w.Next(5*time.Second, "failover-mode", harness.Kind("failover-mode"))
		w.Next(5*time.Second, "failover-standby", harness.Kind(event.KindFailoverStandby))
		oneDefault(t, b, "wan1")
		// Mode changes are at least 10 s apart (the command budget).
		out, err := harness.Command(t, b.Host.Name, "failover", "--config", cfg, "auto").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "too soon") {
			t.Errorf("auto right after standby: %v %s, want a too-soon refusal", err, out)
		}
		time.Sleep(time.Until(pinned.Add(10 * time.Second))) // the documented minimum
		failoverCLI(t, b, cfg, "auto")
		w.Next(5*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
		oneDefault(t, b, "wan0")
	})

	// The action script saw the original's commands with NETINFO.
	var got []string
	for _, c := range harness.ActionCalls(t, calls) {
		if len(c) > 3 && strings.HasPrefix(c[2], "failover-") {
			got = append(got, strings.Join(c[2:], " "))
		}
	}
	for _, want := range []string{
		"failover-initial pnet:Primary:wan0:192.0.2.2 online",
		"failover-primary pnet:Primary:wan0:192.0.2.2",
		"failover-standby snet:Standby:wan1:192.0.2.10",
		"failover-wan-down snet:Standby:wan1:192.0.2.10",
		"failover-bothdown pnet:Primary:wan0:192.0.2.2 snet:Standby:wan1:192.0.2.10",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("action script never called with %q; calls:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// TestFailoverRestart restarts the agent mid-failover (standby active,
// primary back, hold running): the route is adopted, not re-added or
// switched, and the failback still happens after the hold.
func TestFailoverRestart(t *testing.T) {
	b := testbed.New(t)
	dir := t.TempDir()
	action, _ := harness.RecordingAction(t, dir)
	cfg := failoverConfig(t, dir, action, 8)
	a := harness.Start(t, b.Host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	b.CutUpstream(0)
	w.Next(5*time.Second, "failover-standby", harness.Kind(event.KindFailoverStandby))
	b.Heal()
	w.Next(5*time.Second, "primary up", ofWAN(event.KindFailoverWANUp, 0))
	if err := a.Stop(); err != nil {
		t.Logf("agent exit: %v", err)
	}
	oneDefault(t, b, "wan1")
	if r := b.Run(b.Host, "ip", "rule"); strings.Contains(r, "proto 201") {
		t.Errorf("probe rules left after a clean stop:\n%s", r)
	}
	restarted := time.Now()
	harness.Start(t, b.Host.Name, cfg)
	w2 := harness.Watch(t, cfg)
	// Skip what the first run journaled.
	w2.WaitFor(20*time.Second, "failover-adopted", func(ev event.Event) bool {
		return ev.Kind == "failover-adopted" && ev.Time.After(restarted.Add(-time.Second))
	})
	switched := func(ev event.Event) bool {
		return (ev.Kind == event.KindFailoverPrimary || ev.Kind == event.KindFailoverStandby) && ev.Time.After(restarted)
	}
	ev := w2.Next(20*time.Second, "failback after the hold", switched)
	if ev.Kind != event.KindFailoverPrimary || time.Since(restarted) < 3*time.Second {
		t.Errorf("after restart: %s %v after the restart", ev.Kind, time.Since(restarted))
	}
	oneDefault(t, b, "wan0")
}

// TestFailoverRandomLoss: 10 % random loss on the primary for two minutes
// causes no switch and no WAN-down event.
func TestFailoverRandomLoss(t *testing.T) {
	b := testbed.New(t)
	dir := t.TempDir()
	action, _ := harness.RecordingAction(t, dir)
	cfg := failoverConfig(t, dir, action, 3)
	harness.Start(t, b.Host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	b.RandomLoss(0, 10)
	d := 2 * time.Minute
	if testing.Short() {
		d = 20 * time.Second
	}
	time.Sleep(d) // the test is this long: nothing may happen meanwhile
	for _, ev := range journalEvents(t, cfg) {
		if ev.Kind == event.KindFailoverStandby || ev.Kind == event.KindFailoverWANDown {
			t.Errorf("under 10%% random loss: %s %q", ev.Kind, ev.Msg)
		}
	}
	oneDefault(t, b, "wan0")
}

// journalEvents reads cfg's whole journal with `imon journal --json`.
func journalEvents(t *testing.T, cfg string) []event.Event {
	t.Helper()
	out, err := harness.Command(t, "", "journal", "--config", cfg, "--json").Output()
	if err != nil {
		t.Fatalf("imon journal: %v", err)
	}
	var evs []event.Event
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ev event.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("journal line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestFailoverProbesOwnWAN captures the agent's probes with tcpdump in the
// host namespace: each WAN's probes leave through it.
func TestFailoverProbesOwnWAN(t *testing.T) {
	b := testbed.New(t)
	nettest.NeedCmd(t, "tcpdump")
	dir := t.TempDir()
	action, _ := harness.RecordingAction(t, dir)
	cfg := failoverConfig(t, dir, action, 3)
	harness.Start(t, b.Host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	count := func(ifname string) map[string]int {
		out, _ := exec.Command("ip", "netns", "exec", b.Host.Name, "timeout", "2", "tcpdump", "-n", "-l", "-i", ifname,
			"icmp[icmptype] == icmp-echo and dst host "+testbed.Target.String()).CombinedOutput()
		n := map[string]int{}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 3 && strings.Contains(l, "ICMP echo request") {
				n[f[2]]++
			}
		}
		return n
	}
	type capture struct {
		ifn string
		n   map[string]int
	}
	ch := make(chan capture)
	for _, ifn := range testbed.WANIf {
		go func() { ch <- capture{ifn, count(ifn)} }()
	}
	res := map[string]map[string]int{}
	for range testbed.WANIf {
		c := <-ch
		res[c.ifn] = c.n
	}
	t.Logf("echo requests by source in 2 s: %v", res)
	if res["wan0"]["192.0.2.2"] < 5 || res["wan1"]["192.0.2.10"] < 5 {
		t.Errorf("probes missing on their own WAN: %v", res)
	}
	if res["wan0"]["192.0.2.10"] != 0 || res["wan1"]["192.0.2.2"] != 0 {
		t.Errorf("probes on the wrong WAN: %v", res)
	}
}
