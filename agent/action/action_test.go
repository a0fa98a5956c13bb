package action_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"imon/agent/action"
	"imon/event"
)

const (
	script  = "/usr/local/bin/imon-action"
	primary = "pnet:Primary:eth1:192.168.42.2"
	standby = "snet:Standby:eth2:192.168.62.2"
)

// TestArgs checks the argv of every action command against docs/action.md.
func TestArgs(t *testing.T) {
	tests := []struct {
		kind string
		args []string
		want string // argv joined by "|"
	}{
		{event.KindUpdownOnline, []string{"1.1.1.1", "0:00:05:17"},
			script + "|main|0|updown-online|1.1.1.1|0:00:05:17"},
		{event.KindUpdownOffline, []string{"1.1.1.1"},
			script + "|main|0|updown-offline|1.1.1.1"},
		{event.KindDDNSIPUpdate, []string{"203.0.113.7", "unknown"},
			script + "|main|0|ddns-ip-update|203.0.113.7|unknown"},
		{event.KindDDNSIP6Update, []string{"2001:db8::7", "2001:db8::1"},
			script + "|main|0|ddns-ip6-update|2001:db8::7|2001:db8::1"},
		{event.KindDDNSNoUpdate, nil,
			script + "|main|0|ddns-no-update"},
		{event.KindFailoverInitial, []string{primary, "online"},
			script + "|main|0|failover-initial|" + primary + "|online"},
		{event.KindFailoverPrimary, []string{primary},
			script + "|main|0|failover-primary|" + primary},
		{event.KindFailoverStandby, []string{standby},
			script + "|main|0|failover-standby|" + standby},
		{event.KindFailoverBothDown, []string{primary, standby},
			script + "|main|0|failover-bothdown|" + primary + "|" + standby},
		{event.KindFailoverPostping, []string{standby, "offline"},
			script + "|main|0|failover-postping|" + standby + "|offline"},
		{event.KindFailoverWANUp, []string{primary},
			script + "|main|0|failover-wan-up|" + primary},
		{event.KindFailoverWANDown, []string{standby},
			script + "|main|0|failover-wan-down|" + standby},
		{event.KindPingResult, []string{"1.1.1.1:True:10.123:11.000:12.500:0.0:0.75"},
			script + "|main|0|ping-result|1.1.1.1:True:10.123:11.000:12.500:0.0:0.75"},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			if !event.IsAction(tc.kind) {
				t.Fatalf("%s is not an action kind", tc.kind)
			}
			ev := event.New("m", tc.kind, "", nil).WithArgs(tc.args...)
			got := strings.Join(action.Args(script, "main", false, ev), "|")
			if got != tc.want {
				t.Errorf("Args:\n got %s\nwant %s", got, tc.want)
			}
		})
		covered[tc.kind] = true
	}
	for _, k := range event.ActionKinds() {
		if !covered[k] {
			t.Errorf("action kind %s has no argv test", k)
		}
	}
}

func TestArgsSyslogFlagAndInstance(t *testing.T) {
	ev := event.New("updown", event.KindUpdownOffline, "", nil).WithArgs("192.0.2.1")
	for _, tc := range []struct {
		nosyslog bool
		want     []string
	}{
		{false, []string{"/a", "demo", "0", "updown-offline", "192.0.2.1"}},
		{true, []string{"/a", "demo", "1", "updown-offline", "192.0.2.1"}},
	} {
		if got := action.Args("/a", "demo", tc.nosyslog, ev); !slices.Equal(got, tc.want) {
			t.Errorf("nosyslog=%v: got %q, want %q", tc.nosyslog, got, tc.want)
		}
	}
}

func TestEnv(t *testing.T) {
	ev := event.New("updown", event.KindUpdownOffline, "Monitored IP 192.0.2.1 offline",
		map[string]any{"ip": "192.0.2.1"}).WithArgs("192.0.2.1")
	ev.Seq = 42
	ev.Instance = "demo"
	ev.Time = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	env := action.Env("demo", "", ev)

	want := map[string]string{
		"PATH":          action.DefaultPath,
		"HOME":          "/",
		"LANG":          "C.UTF-8",
		"IMON_SEQ":      "42",
		"IMON_INSTANCE": "demo",
		"IMON_MONITOR":  "updown",
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("malformed env entry %q", kv)
		}
		if _, dup := got[k]; dup {
			t.Errorf("duplicate env %s", k)
		}
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	var back event.Event
	if err := json.Unmarshal([]byte(got["IMON_EVENT"]), &back); err != nil {
		t.Fatalf("IMON_EVENT is not an event: %v", err)
	}
	if back.Seq != 42 || back.Kind != event.KindUpdownOffline || !back.Time.Equal(ev.Time) ||
		!slices.Equal(back.Args, ev.Args) {
		t.Errorf("IMON_EVENT round trip: got %+v", back)
	}
	if len(got) != len(want)+1 {
		t.Errorf("env has %d entries, want exactly %d: %q", len(got), len(want)+1, env)
	}
	if e := action.Env("demo", "/root", ev); !slices.Contains(e, "HOME=/root") {
		t.Errorf("HOME not passed: %q", e)
	}
}
