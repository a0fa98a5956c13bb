package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/testbed"
)

// TestNoDefaultRouteAtStart starts the agent with updown and failover on a
// host without a default route (first boot, dhcpcd with nogateway): the
// updown probes find no route until failover installed one, which is not an
// outage (issue 13: Internet off 2.5 s after start, on at +5 s, Outages +1).
// No updown-offline, no outage counted, and the failover state never says
// "no WAN" (bothdown) once a WAN is up: Home Assistant's Active WAN shows
// unknown while failover chooses, then the WAN.
func TestNoDefaultRouteAtStart(t *testing.T) {
	b := testbed.New(t)
	if d := b.DefaultRoute(); d != "" {
		t.Fatalf("the testbed host has a default route %q", d)
	}
	dir := t.TempDir()
	inst := fmt.Sprintf("boot%d", time.Now().UnixNano()%1e6)
	sections := fmt.Sprintf(`"updown": {"enable": true, "interval": 1.0, "pingcount": 2.0, "pingwait": 1.0, "monitorip": %q},
  "failover": {
    "enable": true, "interval": 1.0, "pingcount": 2.0, "pingwait": 1.0, "prefer-primary": true,
    "primary-if": %q, "primary-name": "pnet", "primary-gw": %q, "primary-ping": %q,
    "standby-if": %q, "standby-name": "snet", "standby-gw": %q, "standby-ping": %q
  }`, testbed.Target, testbed.WANIf[0], testbed.Gateway[0], testbed.Target, testbed.WANIf[1], testbed.Gateway[1], testbed.Target)
	cfg := writeConfig(t, dir, inst, "", sections)
	harness.Start(t, b.Host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	first := w.WaitFor(20*time.Second, "updown's first determination", harness.Kind("updown-status"))
	// Settle: a few more seconds of probing through the new route.
	time.Sleep(3 * time.Second)
	evs := journalEvents(t, cfg)
	var st struct {
		Status  string `json:"status"`
		Outages int    `json:"outages"`
	}
	if err := json.Unmarshal(first.State, &st); err != nil || st.Status != "up" {
		t.Errorf("first updown status %q (%v): %s", st.Status, err, first.Msg)
	}
	wanUp := false
	for _, ev := range evs {
		switch {
		case ev.Kind == event.KindUpdownOffline || ev.Kind == event.KindUpdownOnline:
			t.Errorf("false outage at start: %s %s", ev.Kind, ev.Msg)
		case ev.Monitor == event.MonitorUpdown && len(ev.State) > 0:
			if err := json.Unmarshal(ev.State, &st); err == nil && st.Outages != 0 {
				t.Errorf("%s: %d outages counted", ev.Kind, st.Outages)
			}
		case ev.Monitor == event.MonitorFailover && len(ev.State) > 0:
			var fo struct {
				Active   string `json:"active"`
				BothDown bool   `json:"bothdown"`
				WANs     []struct {
					Status string `json:"status"`
				} `json:"wans"`
			}
			if err := json.Unmarshal(ev.State, &fo); err != nil {
				t.Fatalf("failover state: %v", err)
			}
			for _, w := range fo.WANs {
				wanUp = wanUp || w.Status == "up"
			}
			if wanUp && fo.BothDown {
				t.Errorf("%s: no WAN (bothdown) after a WAN was up", ev.Kind)
			}
		}
	}
	if t.Failed() {
		t.Logf("journal:\n%s", harness.Summary(evs))
	}
}
