package outbox_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"imon/agent/outbox"
	"imon/config"
	"imon/event"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mode string
		err  error
	}{
		{"primary", "primary", nil},
		{"standby", "standby", nil},
		{"auto", "auto", nil},
		{"  Primary\r\n", "primary", nil},
		{"\tSTANDBY\n", "standby", nil},
		{"AuTo", "auto", nil},
		{"", "", outbox.ErrEmptyCommand},
		{"   ", "", outbox.ErrUnknownMode},
		{"prim", "", outbox.ErrUnknownMode},
		{"primary standby", "", outbox.ErrUnknownMode},
		{"primary\x00", "", outbox.ErrUnknownMode},
		{`"auto"`, "", outbox.ErrUnknownMode},
		{`{"mode":"primary"}`, "", outbox.ErrUnknownMode},
		{"ſtandby", "", outbox.ErrUnknownMode}, // U+017F folds to s under Unicode rules: not accepted
		{"auto\v", "", outbox.ErrUnknownMode},
		{"\xff\xfeauto", "", outbox.ErrNotText},
		{strings.Repeat(" ", 40) + "auto", "", outbox.ErrCommandTooLarge},
		{strings.Repeat("x", 1<<20), "", outbox.ErrCommandTooLarge},
	} {
		mode, err := outbox.ParseCommand([]byte(tc.in))
		if mode != tc.mode || !errors.Is(err, tc.err) {
			t.Errorf("ParseCommand(%q) = %q, %v; want %q, %v", tc.in, mode, err, tc.mode, tc.err)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"primary", "standby", "auto", " Auto\n", "", "prim", `{"mode":"auto"}`, "\xff", "ſtandby", "auto\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		mode, err := outbox.ParseCommand(p)
		trimmed := strings.ToLower(strings.Trim(string(p), " \t\r\n"))
		valid := len(p) <= outbox.MaxCommandBytes && (trimmed == "primary" || trimmed == "standby" || trimmed == "auto")
		if valid != (err == nil) {
			t.Fatalf("ParseCommand(%q) = %q, %v; valid %v", p, mode, err, valid)
		}
		if err == nil && mode != trimmed {
			t.Fatalf("ParseCommand(%q) = %q", p, mode)
		}
		if err != nil && mode != "" {
			t.Fatalf("mode %q with error %v", mode, err)
		}
		// What is journaled of a rejected payload is short, printable,
		// valid UTF-8.
		shown := outbox.ShowPayload(p)
		if !utf8.ValidString(shown) || len(shown) > 4*outbox.ShownPayloadBytes+len("…") {
			t.Fatalf("ShowPayload(%q) = %q", p, shown)
		}
		for _, r := range shown {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("ShowPayload(%q) = %q keeps a control character", p, shown)
			}
		}
	})
}

func TestShowPayload(t *testing.T) {
	for in, want := range map[string]string{
		"auto":                   "auto",
		"a\x00b\n":               `a\x00b\n`,
		"\xff\xfe":               `\xff\xfe`,
		`back\slash "q"`:         `back\\slash "q"`,
		"zero\u200bwidth":        `zero\u200bwidth`,
		"é€":                     "é€",
		strings.Repeat("x", 100): strings.Repeat("x", 64) + "…",
	} {
		if got := outbox.ShowPayload([]byte(in)); got != want {
			t.Errorf("ShowPayload(%q) = %q, want %q", in, got, want)
		}
	}
}

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
		strings.Repeat("a", 1<<20), "primary\x00", "ſtandby", "auto;reboot", "failover"}
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
		if d.Payload != outbox.ShowPayload([]byte(malformed[i])) || len(d.Payload) > 4*outbox.ShownPayloadBytes+3 {
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
	if d.Reason != outbox.ErrFailoverDisabled.Error() || d.Payload != "primary" {
		t.Errorf("rejection %+v", d)
	}
	if n := len(journalEvents(t, j, event.KindFailoverCommand)); n != 0 {
		t.Errorf("%d failover-command events", n)
	}
}
