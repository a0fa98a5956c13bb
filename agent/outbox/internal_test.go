package outbox

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"imon/config"
	"imon/event"
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
		o, err := New(c, config.HomeAssistant{Enable: tc.ha, DiscoveryPrefix: "ha"}, []string{"failover"}, "main", "v", nopJournal{}, nil, WithEmitter(nopJournal{}))
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
	if _, err := New(config.MQTT{Server: "mqtt://b"}, config.HomeAssistant{}, nil, "main", "v", nopJournal{}, nil, WithEmitter(nopJournal{})); err != ErrDisabled {
		t.Errorf("disabled: %v", err)
	}
	if _, err := New(config.MQTT{Enable: true, Server: "http://b"}, config.HomeAssistant{}, nil, "main", "v", nopJournal{}, nil, WithEmitter(nopJournal{})); err == nil {
		t.Error("bad server accepted")
	}
	o, err := New(config.MQTT{Enable: true, Server: "mqtt://b"}, config.HomeAssistant{}, nil, "my inst", "v", nopJournal{}, nil, WithEmitter(nopJournal{}))
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

// TestEventMessageTrims: an event that does not fit in the broker's limit
// loses its data (replaced by the marker), then its state, then part of its
// message; below any sensible limit it is not published; the packet always
// fits when ok.
func TestEventMessageTrims(t *testing.T) {
	o := &Outbox{eventTopic: "imon/pi-main/event"}
	ev := event.New(event.MonitorFailover, event.KindFailoverStandby, strings.Repeat("ü", 200), map[string]string{"x": strings.Repeat("x", 3000)})
	ev.Seq, ev.Instance = 42, "main"
	ev.State = event.MustJSON(map[string]string{"s": strings.Repeat("s", 500)})
	for _, tc := range []struct {
		limit   int
		trimmed []string
		ok      bool
	}{
		{0, nil, true},
		{10000, nil, true},
		{2000, []string{"data"}, true},
		{800, []string{"data", "state"}, true},
		{400, []string{"data", "state", "msg"}, true},
		{100, []string{"data", "state", "msg"}, false},
	} {
		m, trimmed, ok, err := o.eventMessage(ev, tc.limit)
		if err != nil || ok != tc.ok || !slices.Equal(trimmed, tc.trimmed) {
			t.Errorf("limit %d: trimmed %v ok %v err %v; want %v %v", tc.limit, trimmed, ok, err, tc.trimmed, tc.ok)
			continue
		}
		if ok && tc.limit > 0 && m.PacketSize() > tc.limit {
			t.Errorf("limit %d: packet of %d bytes", tc.limit, m.PacketSize())
		}
		if ok && len(trimmed) > 0 {
			var got event.Event
			if err := json.Unmarshal(m.Payload, &got); err != nil || !utf8.ValidString(got.Msg) {
				t.Errorf("limit %d: payload %s (%v)", tc.limit, m.Payload, err)
			}
			var mk Trimmed
			if err := got.DecodeData(&mk); err != nil || !mk.Trimmed || mk.Seq != 42 || mk.Size < 3000 || got.Seq != 42 {
				t.Errorf("limit %d: marker %+v (%v)", tc.limit, mk, err)
			}
		}
	}
}
