package outbox

import (
	"testing"

	"imon/config"
	"imon/mqtt"
)

// TestSubscriptions: BASE/failover/set is subscribed (QoS 1, RetainHandling
// 2, NoLocal) only when commands are on, Home Assistant's status only when
// discovery is on.
func TestSubscriptions(t *testing.T) {
	cfg := config.MQTT{Enable: true, Server: "mqtt://b", TopicPrefix: "imon", NodeID: "n", Commands: true}
	cmd := mqtt.Subscription{Topic: "imon/n/failover/set", QoS: 1, NoLocal: true, RetainHandling: 2}
	birth := mqtt.Subscription{Topic: "ha/status", QoS: 1, RetainHandling: 2}
	for _, tc := range []struct {
		commands, ha bool
		want         []mqtt.Subscription
	}{
		{true, true, []mqtt.Subscription{cmd, birth}},
		{true, false, []mqtt.Subscription{cmd}},
		{false, true, []mqtt.Subscription{birth}},
		{false, false, nil},
	} {
		c := cfg
		c.Commands = tc.commands
		o, err := New(c, config.HomeAssistant{Enable: tc.ha, DiscoveryPrefix: "ha"}, []string{"failover"}, "main", "v", nopJournal{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := o.clientConfig().Subscriptions
		if len(got) != len(tc.want) {
			t.Fatalf("commands=%v ha=%v: %v", tc.commands, tc.ha, got)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("commands=%v ha=%v: %v, want %v", tc.commands, tc.ha, got[i], tc.want[i])
			}
		}
	}
}

func TestNewDefaultsAndErrors(t *testing.T) {
	if _, err := New(config.MQTT{Server: "mqtt://b"}, config.HomeAssistant{}, nil, "main", "v", nopJournal{}, nil); err != ErrDisabled {
		t.Errorf("disabled: %v", err)
	}
	if _, err := New(config.MQTT{Enable: true, Server: "http://b"}, config.HomeAssistant{}, nil, "main", "v", nopJournal{}, nil); err == nil {
		t.Error("bad server accepted")
	}
	o, err := New(config.MQTT{Enable: true, Server: "mqtt://b"}, config.HomeAssistant{}, nil, "my inst", "v", nopJournal{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := o.clientConfig()
	if o.cfg.TopicPrefix != "imon" || o.cfg.NodeID == "" || c.ClientID != "imon-"+o.cfg.NodeID || c.StatusTopic != o.Base()+"/status" {
		t.Errorf("defaults: %+v / %+v", o.cfg, c)
	}
	for _, r := range o.cfg.NodeID {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			t.Fatalf("default node id %q", o.cfg.NodeID)
		}
	}
}
