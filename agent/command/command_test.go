package command_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"imon/agent/command"
	"imon/event"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mode command.Mode
		err  error
	}{
		{"primary", command.ModePrimary, nil},
		{"standby", command.ModeStandby, nil},
		{"auto", command.ModeAuto, nil},
		{"  Primary\r\n", command.ModePrimary, nil},
		{"\tSTANDBY\n", command.ModeStandby, nil},
		{"AuTo", command.ModeAuto, nil},
		{"", "", command.ErrEmpty},
		{"   ", "", command.ErrUnknown},
		{"prim", "", command.ErrUnknown},
		{"primary standby", "", command.ErrUnknown},
		{"primary\x00", "", command.ErrUnknown},
		{`"auto"`, "", command.ErrUnknown},
		{`{"mode":"primary"}`, "", command.ErrUnknown},
		{"ſtandby", "", command.ErrUnknown}, // U+017F folds to s under Unicode rules: not accepted
		{"auto\v", "", command.ErrUnknown},
		{"\xff\xfeauto", "", command.ErrNotText},
		{strings.Repeat(" ", 40) + "auto", "", command.ErrTooLarge},
		{strings.Repeat("x", 1<<20), "", command.ErrTooLarge},
	} {
		mode, err := command.Parse([]byte(tc.in))
		if mode != tc.mode || !errors.Is(err, tc.err) {
			t.Errorf("Parse(%q) = %q, %v; want %q, %v", tc.in, mode, err, tc.mode, tc.err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"primary", "standby", "auto", " Auto\n", "", "prim", `{"mode":"auto"}`, "\xff", "ſtandby", "auto\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		mode, err := command.Parse(p)
		trimmed := strings.ToLower(strings.Trim(string(p), " \t\r\n"))
		valid := len(p) <= command.MaxPayloadBytes && (trimmed == "primary" || trimmed == "standby" || trimmed == "auto")
		if valid != (err == nil) {
			t.Fatalf("Parse(%q) = %q, %v; valid %v", p, mode, err, valid)
		}
		if err == nil && string(mode) != trimmed {
			t.Fatalf("Parse(%q) = %q", p, mode)
		}
		if err != nil && mode != "" {
			t.Fatalf("mode %q with error %v", mode, err)
		}
		// What is journaled of a rejected payload is short, printable,
		// valid UTF-8.
		shown := command.Show(p)
		if !utf8.ValidString(shown) || len(shown) > 4*command.ShownPayloadBytes+len("…") {
			t.Fatalf("Show(%q) = %q", p, shown)
		}
		for _, r := range shown {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("Show(%q) = %q keeps a control character", p, shown)
			}
		}
	})
}

func TestShow(t *testing.T) {
	for in, want := range map[string]string{
		"auto":                   "auto",
		"a\x00b\n":               `a\x00b\n`,
		"\xff\xfe":               `\xff\xfe`,
		`back\slash "q"`:         `back\\slash "q"`,
		"zero\u200bwidth":        `zero\u200bwidth`,
		"é€":                     "é€",
		strings.Repeat("x", 100): strings.Repeat("x", 64) + "…",
	} {
		if got := command.Show([]byte(in)); got != want {
			t.Errorf("Show(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEventsOneShape: the CLI and MQTT get the same events, differing only
// in the source.
func TestEventsOneShape(t *testing.T) {
	for _, src := range []string{"cli", "mqtt"} {
		ev := command.Accepted(command.ModeStandby, src)
		var d struct{ Mode, Source string }
		if err := ev.DecodeData(&d); err != nil || ev.Kind != event.KindFailoverCommand || d.Mode != "standby" || d.Source != src ||
			ev.Msg != "Manual failover command standby from "+src {
			t.Errorf("Accepted from %s: %+v %+v %v", src, ev, d, err)
		}
		rej := command.Rejected([]byte("x\n"), src, command.ErrUnknown)
		var r struct {
			Source, Reason, Payload string
			Size                    int
		}
		if err := rej.DecodeData(&r); err != nil || rej.Kind != event.KindCommandRejected || rej.Level != event.LevelWarn ||
			r.Source != src || r.Payload != `x\n` || r.Size != 2 || r.Reason != command.ErrUnknown.Error() {
			t.Errorf("Rejected from %s: %+v %+v %v", src, rej, r, err)
		}
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestBudgetBucket: a burst, then one command per Every; each source has
// its own bucket (a flood over MQTT leaves the CLI its budget).
func TestBudgetBucket(t *testing.T) {
	b := command.NewBudget(command.Limits{Burst: 5, Every: 2 * time.Second, Window: time.Minute})
	now := t0
	for i := range 5 {
		if ok, _ := b.Take("mqtt", now); !ok {
			t.Fatalf("command %d of the burst refused", i)
		}
	}
	ok, closeAt := b.Take("mqtt", now)
	if ok || !closeAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("6th command: ok %v, window closes %v; want refused, window to %v", ok, closeAt, now.Add(time.Minute))
	}
	if ok, _ := b.Take("cli", now); !ok {
		t.Fatal("the CLI's budget is spent by MQTT's flood")
	}
	// 1.9 s later: no token yet; 2 s: one.
	if ok, closeAt := b.Take("mqtt", now.Add(1900*time.Millisecond)); ok || !closeAt.IsZero() {
		t.Fatalf("after 1.9 s: ok %v closeAt %v; want refused within the open window", ok, closeAt)
	}
	if ok, _ := b.Take("mqtt", now.Add(2*time.Second)); !ok {
		t.Fatal("no token after 2 s")
	}
	// A flood of 1,000 a second for 60 s passes 30 commands.
	passed := 0
	for i := range 60_000 {
		if ok, _ := b.Take("mqtt", now.Add(2*time.Second+time.Duration(i)*time.Millisecond)); ok {
			passed++
		}
	}
	if passed < 29 || passed > 31 {
		t.Errorf("%d of 60,000 commands in 60 s passed; want 30 (one per 2 s)", passed)
	}
	s := b.Close()
	if s.Dropped != 2+60_000-passed || s.BySource["mqtt"] != s.Dropped || !s.From.Equal(now) {
		t.Errorf("summary %+v", s)
	}
	if ev := s.Event(); ev.Kind != event.KindCommandThrottled || ev.Level != event.LevelWarn {
		t.Errorf("summary event %+v", ev)
	}
	if s := b.Close(); s.Dropped != 0 {
		t.Errorf("second Close: %+v", s)
	}
	// After a pause the burst is back, not more.
	later := now.Add(time.Hour)
	n := 0
	for range 10 {
		if ok, _ := b.Take("mqtt", later); ok {
			n++
		}
	}
	if n != 5 {
		t.Errorf("after an hour %d commands pass at once, want the burst of 5", n)
	}
}

// TestBudgetSwitchSpacing: mode changes are at least MinSwitch apart;
// repeating the current mode is always allowed. 50 commands a second
// alternating primary/standby for 5 s change the mode once.
func TestBudgetSwitchSpacing(t *testing.T) {
	b := command.NewBudget(command.Limits{MinSwitch: 10 * time.Second})
	if err := b.Switch(command.ModePrimary, t0); err != nil {
		t.Fatal(err)
	}
	if err := b.Switch(command.ModePrimary, t0.Add(time.Second)); err != nil {
		t.Fatalf("repeating the mode: %v", err)
	}
	err := b.Switch(command.ModeStandby, t0.Add(3*time.Second))
	if !errors.Is(err, command.ErrTooSoon) || !strings.Contains(err.Error(), "retry in 7s") {
		t.Fatalf("standby 3 s after primary: %v, want ErrTooSoon, retry in 7s", err)
	}
	if err := b.Switch(command.ModeStandby, t0.Add(10*time.Second)); err != nil {
		t.Fatalf("standby 10 s after: %v", err)
	}

	b = command.NewBudget(command.Limits{})
	changes, last := 0, command.Mode("")
	for i := range 250 {
		m := command.ModePrimary
		if i%2 == 1 {
			m = command.ModeStandby
		}
		now := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		if ok, _ := b.Take("mqtt", now); !ok {
			continue
		}
		if b.Switch(m, now) == nil && m != last {
			changes++
			last = m
		}
	}
	if changes != 1 {
		t.Errorf("%d mode changes in 5 s of alternating commands, want 1", changes)
	}
}

// TestBudgetRejections: a steady stream of bad commands that stays within
// the command budget (one per 2 s) journals one rejection a minute after
// the burst, the rest counted in the summary: the journal's growth under
// such a flood is bounded by minutes, not commands.
func TestBudgetRejections(t *testing.T) {
	b := command.NewBudget(command.Limits{Burst: 5, Every: 2 * time.Second, Window: time.Minute})
	journaled, counted := 0, 0
	var windows []time.Time
	for i := range 300 { // 10 minutes
		now := t0.Add(time.Duration(i) * 2 * time.Second)
		if ok, _ := b.Take("mqtt", now); !ok {
			t.Fatalf("command %d over the command budget: the stream is within it", i)
		}
		ok, closeAt := b.Reject("mqtt", now)
		if ok {
			journaled++
		} else {
			counted++
		}
		if !closeAt.IsZero() {
			windows = append(windows, closeAt)
		}
		if len(windows) > 0 && !now.Before(windows[len(windows)-1]) {
			if s := b.Close(); s.Empty() {
				t.Fatalf("an open window closed empty at %v", now)
			}
		}
	}
	if journaled < 5 || journaled > 5+11 {
		t.Errorf("%d rejections journaled in 10 minutes; want the burst of 5 plus about one a minute", journaled)
	}
	if journaled+counted != 300 {
		t.Errorf("journaled %d + counted %d != 300", journaled, counted)
	}
	if len(windows) > 11 {
		t.Errorf("%d summary windows in 10 minutes; want at most one a minute", len(windows))
	}
}
