package homeassistant_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"imon/agent/probe/extip"
	"imon/config"
	"imon/homeassistant"
)

// TestCGNATUnknownWithoutInterface: without ddns.interface nothing is
// checked, so "Behind carrier-grade NAT" is unknown whatever the state says
// (it showed OK, from the state's default false).
func TestCGNATUnknownWithoutInterface(t *testing.T) {
	c := goldenConfig
	c.CGNATChecked = false
	tp := entityByID(t, c, "ddns_cgnat").Payload.ValueTemplate
	checked := entityByID(t, goldenConfig, "ddns_cgnat").Payload.ValueTemplate
	render(t, []renderCase{
		{"unchecked", tp, `{"ip":"203.0.113.5","cgnat":false}`, "None"},
		{"unchecked", tp, `{"cgnat":true}`, "None"},
		{"checked", checked, `{"cgnat":false}`, "OFF"},
		{"checked", checked, `{"cgnat":true}`, "ON"},
	})
	// WithSections derives it from ddns.interface.
	cfg := &config.Config{}
	if (homeassistant.Config{}).WithSections(cfg).CGNATChecked {
		t.Error("CGNATChecked without ddns.interface")
	}
	cfg.DDNS.Interface = "eth0"
	if !(homeassistant.Config{}).WithSections(cfg).CGNATChecked {
		t.Error("not CGNATChecked with ddns.interface eth0")
	}
}

// TestQoS: every entity that reads a state subscribes at QoS 1, the QoS
// the states are published with (discovery carried none: HA subscribed at
// QoS 0).
func TestQoS(t *testing.T) {
	for _, m := range homeassistant.Discovery(goldenConfig) {
		var p map[string]any
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		if p["qos"] != 1.0 {
			t.Errorf("%s: qos %v, want 1", m.Topic, p["qos"])
		}
	}
}

// TestNoDisabledByDefault: Home Assistant keeps an entity created disabled
// when its config topic is cleared, so an entity imon may remove (its
// monitor turned off, IPv6 no longer looked up) must never be created
// disabled: Latency min/max and External IPv6 were, and stayed behind.
func TestNoDisabledByDefault(t *testing.T) {
	for _, e := range homeassistant.Entities(goldenConfig) {
		if e.Payload.EnabledByDefault != nil && !*e.Payload.EnabledByDefault {
			t.Errorf("%s is disabled by default: it would be orphaned on removal", e.ObjectID())
		}
	}
}

// TestIPv6Published: External IPv6 exists only while an IPv6 provider is
// configured, and is removed (empty retained config) otherwise.
func TestIPv6Published(t *testing.T) {
	for _, tc := range []struct {
		providers []string
		want      bool
	}{
		{nil, false}, // the defaults are IPv4
		{[]string{"dns://[2001:db8::53]/whoami?type=TXT"}, true},
		{[]string{"dns://192.0.2.53/myip?type=AAAA"}, true},
		{[]string{"dns://192.0.2.53/myip?type=A"}, false},
		{[]string{"dns://[2001:db8::53]/myip?type=A"}, false},
		{[]string{"https://[2001:db8::80]/ip"}, true},
		{[]string{"https://ip.example/ip"}, false},
	} {
		// The same rule as the ddns monitor's (extip.Spec.Family).
		v6 := false
		for _, raw := range tc.providers {
			sp, err := extip.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			v6 = v6 || sp.Family() == extip.IPv6
		}
		if tc.providers != nil && v6 != tc.want {
			t.Errorf("providers %v: the ddns monitor says IPv6 %v, the test %v", tc.providers, v6, tc.want)
		}
		cfg := &config.Config{}
		cfg.DDNS.Providers = tc.providers
		c := goldenConfig.WithSections(cfg)
		e := entityByID(t, c, "ddns_external_ipv6")
		if got := c.Published(e); got != tc.want {
			t.Errorf("providers %v: External IPv6 published %v, want %v", tc.providers, got, tc.want)
		}
		for _, m := range homeassistant.Discovery(c) {
			if m.Topic == c.Topic(e) && (len(m.Payload) > 0) != tc.want {
				t.Errorf("providers %v: payload %q", tc.providers, m.Payload)
			}
		}
	}
}

// TestLabels: Active WAN and the mode select show the configured WAN
// names (or Primary/Standby), and the select's command template turns each
// option back into the command BASE/failover/set accepts.
func TestLabels(t *testing.T) {
	for _, tc := range []struct {
		names  [2]string
		labels [2]string
	}{
		{[2]string{"Fibre", "LTE"}, [2]string{"Fibre", "LTE"}},
		{[2]string{"", "LTE"}, [2]string{"Primary", "Standby"}},
		{[2]string{"Home", "home"}, [2]string{"Primary", "Standby"}},
		{[2]string{"ISP {{ x }}", "Mobile 'B'"}, [2]string{"ISP x", "Mobile B"}},
	} {
		c := goldenConfig
		c.WANNames = tc.names
		if a, b := c.WANLabel(0), c.WANLabel(1); a != tc.labels[0] || b != tc.labels[1] {
			t.Errorf("names %q: labels %q %q, want %q", tc.names, a, b, tc.labels)
		}
	}
	sel := entityByID(t, goldenConfig, "failover_mode").Payload
	active := entityByID(t, goldenConfig, "failover_active_wan").Payload
	if strings.Join(sel.Options, "|") != "Automatic|Pin Fibre|Pin LTE" {
		t.Errorf("select options %q", sel.Options)
	}
	if strings.Join(active.Options, "|") != "Fibre|LTE|No WAN" {
		t.Errorf("active WAN options %q", active.Options)
	}
	var cases []renderCase
	for i, opt := range sel.Options {
		cases = append(cases, renderCase{"command " + opt, sel.CommandTemplate, opt, homeassistant.FailoverModes[i]})
		// The state shows the option HA sent.
		cases = append(cases, renderCase{"state " + opt, sel.ValueTemplate, `{"mode":"` + homeassistant.FailoverModes[i] + `"}`, opt})
	}
	// A raw command (an older HA, a script) passes unchanged.
	cases = append(cases, renderCase{"raw", sel.CommandTemplate, "standby", "standby"})
	render(t, cases)
}

// TestAttributes: per-WAN details, the WAN names, the address history and
// the providers' status reach Home Assistant as attributes; the measurement
// sensors carry none (each attribute change is a recorder row).
func TestAttributes(t *testing.T) {
	get := func(id string) homeassistant.Payload { return entityByID(t, goldenConfig, id).Payload }
	failover := `{"active":"primary","active_since":"2025-01-02T03:04:05.000Z","mode":"auto","hold_remaining_s":0,"bothdown":false,"wans":[` +
		`{"role":"primary","name":"Fibre","ifname":"eth1","ip":"192.0.2.2","gw":"192.0.2.1","target":"192.0.2.1","status":"up","carrier":true,"rtt_ms":1.5,"loss":0.02,"switches":3},` +
		`{"role":"standby","name":"LTE","ifname":"wwan0","ip":"","gw":"198.51.100.1","target":"198.51.100.1","status":"down","reason":"no reply","carrier":true,"rtt_ms":0,"loss":1,"switches":1}]}`
	ddns := `{"ip":"203.0.113.5","previous":"203.0.113.4","changed_at":"2025-01-02T03:04:05.000Z","consensus":"ok","agreed":["a","b"],"cgnat":false,` +
		`"providers":[{"name":"dns://a/x","status":"ok"},{"name":"https://b/ip","status":"failed"}]}`
	render(t, []renderCase{
		{"primary_wan", get("failover_primary_wan").AttributesTemplate, failover,
			`{"name": "Fibre", "interface": "eth1", "ip": "192.0.2.2", "gateway": "192.0.2.1", "target": "192.0.2.1", "rtt_ms": 1.5, "loss_percent": 2.0, "carrier": true, "reason": null, "switches": 3}`},
		{"standby_wan", get("failover_standby_wan").AttributesTemplate, failover,
			`{"name": "LTE", "interface": "wwan0", "ip": "", "gateway": "198.51.100.1", "target": "198.51.100.1", "rtt_ms": 0, "loss_percent": 100.0, "carrier": true, "reason": "no reply", "switches": 1}`},
		{"standby_wan empty", get("failover_standby_wan").AttributesTemplate, `{}`, `{}`},
		{"active_wan", get("failover_active_wan").AttributesTemplate, failover,
			`{"mode": "auto", "active_since": "2025-01-02T03:04:05.000Z", "hold_remaining_s": 0, "primary": "Fibre", "standby": "LTE"}`},
		{"external_ip", get("ddns_external_ip").AttributesTemplate, ddns,
			`{"previous": "203.0.113.4", "changed_at": "2025-01-02T03:04:05.000Z", "consensus": "ok", "agreed": ["a", "b"], "providers": {"dns://a/x": "ok", "https://b/ip": "failed"}}`},
		{"external_ip empty", get("ddns_external_ip").AttributesTemplate, `{}`,
			`{"previous": null, "changed_at": null, "consensus": null, "agreed": null, "providers": { } }`},
		{"internet", get("updown_internet").AttributesTemplate, `{"target":"192.0.2.1","addr":"192.0.2.1","status":"up"}`,
			`{"target": "192.0.2.1", "address": "192.0.2.1"}`},
	})
	for _, e := range homeassistant.Entities(goldenConfig) {
		if e.Payload.StateClass == "measurement" && e.Payload.AttributesTopic != "" {
			t.Errorf("%s: attributes on a measurement sensor", e.ObjectID())
		}
		if e.Payload.AttributesTopic != "" && e.Payload.AttributesTopic != e.Payload.StateTopic {
			t.Errorf("%s: attributes from %s, state from %s", e.ObjectID(), e.Payload.AttributesTopic, e.Payload.StateTopic)
		}
	}
}

// TestMinuteWindow: the rounds of one minute make one PingMinute, returned
// when the first round of a later minute arrives; a minute without
// replies has null RTTs, not 0.
func TestMinuteWindow(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	round := func(sent, recv int, mn, avg, mx, jit float64) []byte {
		b, _ := json.Marshal(map[string]any{"sent": sent, "recv": recv, "min_ms": mn, "avg_ms": avg, "max_ms": mx, "jitter_ms": jit, "loss": 0})
		return b
	}
	var w homeassistant.MinuteWindow
	if _, ok := w.Add(t0.Add(5*time.Second), round(5, 5, 10, 12, 14, 1)); ok {
		t.Fatal("a minute completed by its first round")
	}
	w.Add(t0.Add(15*time.Second), round(5, 3, 8, 16, 30, 3))
	w.Add(t0.Add(25*time.Second), round(5, 0, 0, 0, 0, 0))
	w.Add(t0.Add(30*time.Second), []byte(`{"target":"x"}`)) // not a round: ignored
	m, ok := w.Add(t0.Add(65*time.Second), round(5, 0, 0, 0, 0, 0))
	if !ok {
		t.Fatal("the next minute's round did not complete the minute")
	}
	got := string(m.JSON())
	want := `{"start":"2025-01-02T03:04:00.000Z","end":"2025-01-02T03:04:25.000Z","rounds":3,"sent":15,"recv":8,"loss":0.467,"min_ms":8,"avg_ms":13.5,"max_ms":30,"jitter_ms":2}`
	if got != want {
		t.Errorf("minute\n got %s\nwant %s", got, want)
	}
	m, ok = w.Add(t0.Add(125*time.Second), round(5, 5, 1, 1, 1, 0))
	if !ok || string(m.JSON()) != `{"start":"2025-01-02T03:05:00.000Z","end":"2025-01-02T03:05:05.000Z","rounds":1,"sent":5,"recv":0,"loss":1,"min_ms":null,"avg_ms":null,"max_ms":null,"jitter_ms":null}` {
		t.Errorf("dead minute %v %s", ok, m.JSON())
	}
}
