package outbox_test

import (
	"strings"
	"testing"
	"time"

	"imon/agent"
	"imon/agent/command"
	"imon/agent/outbox"
	"imon/config"
	"imon/event"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// TestCommands: each valid command on BASE/failover/set is journaled as a
// failover-command for the failover monitor; every malformed payload is
// journaled as command-rejected with its reason and changes nothing.
func TestCommands(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	j := journaltest.Open(t)
	run(t, mqttConfig(b.URL()), config.HomeAssistant{}, allMonitors, j)
	waitEvents(t, j, outbox.KindMQTTConnected, 1, 20*time.Second)
	pub := b.Subscribe(t, "unused")
	topic := base + "/failover/set"

	valid := []struct{ payload, mode string }{{"primary", "primary"}, {" standby\n", "standby"}, {"AUTO", "auto"}}
	for _, v := range valid {
		pub.Publish(topic, []byte(v.payload), false)
	}
	cmds := waitEvents(t, j, event.KindFailoverCommand, len(valid), 20*time.Second)
	for i, ev := range cmds {
		var d struct{ Mode, Source string }
		if err := ev.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if ev.Monitor != "agent" || ev.Instance != instance || d.Mode != valid[i].mode || d.Source != "mqtt" {
			t.Errorf("command %d: %s %+v", i, ev.Monitor, d)
		}
	}

	malformed := []string{"", "prim", "primary standby", `{"mode":"primary"}`, `"auto"`, "\x00\xff\xfe",
		strings.Repeat("a", 4000), "primary\x00", "ſtandby", "auto;reboot", "failover"}
	for _, p := range malformed {
		pub.Publish(topic, []byte(p), false)
	}
	rej := waitEvents(t, j, event.KindCommandRejected, len(malformed), 30*time.Second)
	for i, ev := range rej {
		var d struct {
			Source, Reason, Payload string
			Size                    int
		}
		if err := ev.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if d.Source != "mqtt" || d.Reason == "" || d.Size != len(malformed[i]) || ev.Level != event.LevelWarn {
			t.Errorf("rejection %d of %q: %+v", i, malformed[i], d)
		}
		if d.Payload != command.Show([]byte(malformed[i])) || len(d.Payload) > 4*command.ShownPayloadBytes+3 {
			t.Errorf("rejection %d: payload %q", i, d.Payload)
		}
	}
	// Commands are journaled in order: after the last rejection, a stray
	// failover-command would already be there.
	if n := len(journalEvents(t, j, event.KindFailoverCommand)); n != len(valid) {
		t.Errorf("%d failover-command events, want %d", n, len(valid))
	}
}

// TestCommandWithoutFailover: a valid command while the failover monitor is
// not enabled is rejected.
func TestCommandWithoutFailover(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	j := journaltest.Open(t)
	run(t, mqttConfig(b.URL()), config.HomeAssistant{}, []string{"updown", "ping"}, j)
	waitEvents(t, j, outbox.KindMQTTConnected, 1, 20*time.Second)
	b.Subscribe(t, "unused").Publish(base+"/failover/set", []byte("primary"), false)
	rej := waitEvents(t, j, event.KindCommandRejected, 1, 20*time.Second)
	var d struct{ Reason, Payload string }
	if err := rej[0].DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if d.Reason != agent.ErrFailoverDisabled.Error() || d.Payload != "primary" {
		t.Errorf("rejection %+v", d)
	}
	if n := len(journalEvents(t, j, event.KindFailoverCommand)); n != 0 {
		t.Errorf("%d failover-command events", n)
	}
}
