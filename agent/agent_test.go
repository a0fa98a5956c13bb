package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"imon/agent"
	"imon/agent/command"
	"imon/agent/logsink"
	"imon/agent/monitor"
	"imon/event"
	"imon/journal/journaltest"
)

// fakeMonitor runs fn as its Run.
type fakeMonitor struct {
	name string
	run  func(ctx context.Context, env monitor.Env) error
}

func (m fakeMonitor) Name() string                                   { return m.name }
func (m fakeMonitor) Run(ctx context.Context, env monitor.Env) error { return m.run(ctx, env) }

// TestSupervisorRestartsPanickingMonitor: a monitor that panics is journaled
// as monitor-error and run again; another monitor keeps running; the
// restarted run gets the latest state back in Env.Last; stop journals
// agent-stop after the monitors stopped.
func TestSupervisorRestartsPanickingMonitor(t *testing.T) {
	j := journaltest.Open(t)
	var runs atomic.Int32
	restored := make(chan event.Event, 1)
	crashy := fakeMonitor{name: "crashy", run: func(ctx context.Context, env monitor.Env) error {
		if runs.Add(1) == 1 {
			if _, err := env.Emit(ctx, event.New("crashy", "crashy-state", "state", nil).WithState(map[string]int{"n": 7})); err != nil {
				return err
			}
			panic("boom")
		}
		restored <- env.Last
		<-ctx.Done()
		return nil
	}}
	steady := fakeMonitor{name: "steady", run: func(ctx context.Context, env monitor.Env) error {
		<-ctx.Done()
		_, err := env.Emit(context.WithoutCancel(ctx), event.New("steady", "steady-bye", "bye", nil))
		return err
	}}
	ready := make(chan struct{})
	a := agent.New(agent.Options{Instance: "t", Journal: j, Monitors: []monitor.Monitor{crashy, steady},
		RestartBackoff: time.Millisecond, Ready: func() { close(ready) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	<-ready
	last := <-restored
	if last.Kind != "crashy-state" || string(last.State) != `{"n":7}` {
		t.Errorf("restarted monitor got Last = %s %s, want crashy-state {\"n\":7}", last.Kind, last.State)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs, err := j.Read(1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
		if ev.Instance != "t" {
			t.Errorf("event %d instance %q, want t", ev.Seq, ev.Instance)
		}
	}
	got := strings.Join(kinds, " ")
	for _, want := range []string{"agent-start", "crashy-state", "monitor-error"} {
		if !strings.Contains(got, want) {
			t.Errorf("journal kinds %q lack %s", got, want)
		}
	}
	if !strings.HasSuffix(got, "steady-bye agent-stop") {
		t.Errorf("journal kinds %q: want monitors' last events before agent-stop at the end", got)
	}
	for _, ev := range evs {
		if ev.Kind == event.KindMonitorError && (ev.Level != event.LevelError || !strings.Contains(ev.Msg, "boom")) {
			t.Errorf("monitor-error event = %+v, want level error mentioning the panic", ev)
		}
	}
}

// lineWriter hands every write (one log line) to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

// TestLogConsumerResumesFromCursor: events are logged once, in order, and a
// second consumer run (after a restart) continues after the cursor.
func TestLogConsumerResumesFromCursor(t *testing.T) {
	j := journaltest.Open(t)
	lines := make(lineWriter, 16)
	sink := logsink.New(logsink.Options{Instance: "main", NoSyslog: true, DateFmt: "%H", Stderr: lines})
	ctx := context.Background()
	if _, err := j.Append(ctx, event.New("updown", event.KindUpdownOffline, "Monitored IP 192.0.2.1 offline", nil)); err != nil {
		t.Fatal(err)
	}
	// runUntilLine runs a consumer until it wrote one line, then stops it.
	runUntilLine := func() string {
		c := &agent.LogConsumer{J: j, Sink: sink}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = c.Run(cctx); close(done) }()
		var line string
		select {
		case line = <-lines:
		case <-time.After(10 * time.Second):
			t.Fatal("no log line")
		}
		cancel()
		<-done
		return line
	}
	if l := runUntilLine(); !strings.HasSuffix(l, " imon [main-updown] Monitored IP 192.0.2.1 offline\n") {
		t.Errorf("line 1 = %q", l)
	}
	if _, err := j.Append(ctx, event.New("ping", event.KindPingResult, "", nil).WithArgs("192.0.2.1:True:1.000:1.000:1.000:0:0.000")); err != nil {
		t.Fatal(err)
	}
	if l := runUntilLine(); !strings.HasSuffix(l, " imon [main-ping] ping-result 192.0.2.1:True:1.000:1.000:1.000:0:0.000\n") {
		t.Errorf("line 2 = %q (the restarted consumer must continue after its cursor)", l)
	}
	if got := j.Cursor("log"); got != 2 {
		t.Errorf("log cursor = %d, want 2", got)
	}
}

// TestFailoverCommand: valid modes become failover-command events; others
// and a disabled failover monitor are journaled as command-rejected.
func TestFailoverCommand(t *testing.T) {
	j := journaltest.Open(t)
	// No budget to speak of, no spacing: this test is about parsing.
	lim := command.Limits{Burst: 100, MinSwitch: -1}
	on := agent.New(agent.Options{Instance: "t", Journal: j, FailoverEnabled: true, CommandLimits: lim})
	off := agent.New(agent.Options{Instance: "t", Journal: j, CommandLimits: lim})
	ctx := context.Background()
	for _, tc := range []struct {
		mode    string
		enabled bool
		kind    string
	}{
		{"primary", true, event.KindFailoverCommand},
		{"standby", true, event.KindFailoverCommand},
		{"auto", true, event.KindFailoverCommand},
		{"PRIMARY", true, event.KindFailoverCommand}, // one parser for the CLI and MQTT
		{"toggle", true, event.KindCommandRejected},
		{strings.Repeat("x", 1<<20), true, event.KindCommandRejected},
		{"primary", false, event.KindCommandRejected},
	} {
		a := on
		if !tc.enabled {
			a = off
		}
		ev, err := a.FailoverCommand(ctx, []byte(tc.mode), "cli")
		if ev.Kind != tc.kind {
			t.Errorf("mode %.10q enabled %v: kind %s, want %s", tc.mode, tc.enabled, ev.Kind, tc.kind)
		}
		if (tc.kind == event.KindCommandRejected) != errors.Is(err, agent.ErrCommandRejected) {
			t.Errorf("mode %.10q: err %v", tc.mode, err)
		}
		if len(ev.Data) > 512 {
			t.Errorf("mode %.10q: rejected payload journaled in full (%d bytes)", tc.mode, len(ev.Data))
		}
	}
}

// TestCommandFloodSummarised: a flood of commands journals the budget's
// burst and then one command-throttled summary per window, not one event
// per command (before the budget every command was journaled).
func TestCommandFloodSummarised(t *testing.T) {
	j := journaltest.Open(t)
	a := agent.New(agent.Options{Instance: "t", Journal: j, FailoverEnabled: true,
		CommandLimits: command.Limits{Burst: 5, Every: time.Hour, Window: 100 * time.Millisecond}})
	ctx := context.Background()
	throttled := 0
	for i := range 1000 {
		_, err := a.FailoverCommand(ctx, []byte(fmt.Sprintf("bad %d", i)), "mqtt")
		if errors.Is(err, agent.ErrCommandThrottled) {
			throttled++
		}
	}
	if throttled != 995 {
		t.Errorf("%d commands throttled, want 995", throttled)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := j.Wait(wctx, 5); err != nil {
		t.Fatalf("no summary: %v", err)
	}
	evs, err := j.Read(1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 6 || evs[4].Kind != event.KindCommandRejected || evs[5].Kind != event.KindCommandThrottled {
		t.Fatalf("journal: %v, want 5 command-rejected and 1 command-throttled", evs)
	}
	var d struct {
		Dropped int
		Sources map[string]int
	}
	if err := evs[5].DecodeData(&d); err != nil || d.Dropped != 995 || d.Sources["mqtt"] != 995 {
		t.Errorf("summary %+v (%v), want 995 dropped from mqtt", d, err)
	}
}

// TestStopDuringStartup: a stop requested before Run journaled agent-start
// is a clean stop: agent-start and agent-stop are journaled, no error.
func TestStopDuringStartup(t *testing.T) {
	j := journaltest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := agent.New(agent.Options{Instance: "t", Journal: j})
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run with a cancelled context: %v, want a clean stop", err)
	}
	evs, err := j.Read(1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Kind != event.KindAgentStart || evs[1].Kind != event.KindAgentStop {
		t.Fatalf("journal = %v, want agent-start, agent-stop", evs)
	}
}

// TestLogConsumerDirect: an event logged at once (Now, the journal could
// not be written) is not logged again when it is journaled later; an
// identical event journaled after that is; a forgotten one (dropped from
// the queue) does not hide a later one.
func TestLogConsumerDirect(t *testing.T) {
	j := journaltest.Open(t)
	lines := make(lineWriter, 16)
	sink := logsink.New(logsink.Options{Instance: "main", NoSyslog: true, DateFmt: "%H", Stderr: lines})
	c := &agent.LogConsumer{J: j, Sink: sink}
	ev := event.New("updown", event.KindUpdownOffline, "offline", nil)
	gone := event.New("ping", event.KindPingResult, "dropped", nil)
	c.Now(ev)
	c.Now(gone)
	c.Forget(gone)
	for _, want := range []string{"offline", "dropped"} {
		if l := <-lines; !strings.HasSuffix(l, want+"\n") {
			t.Fatalf("direct line %q, want %q", l, want)
		}
	}
	ctx := context.Background()
	if _, err := j.Append(ctx, ev, gone, ev); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = c.Run(cctx); close(done) }()
	for _, want := range []string{"dropped", "offline"} {
		select {
		case l := <-lines:
			if !strings.HasSuffix(l, want+"\n") {
				t.Errorf("journaled line %q, want %q", l, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no log line %q", want)
		}
	}
	cancel()
	<-done
	select {
	case l := <-lines:
		t.Errorf("extra line %q", l)
	default:
	}
}
