package outbox_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"imon/agent"
	"imon/agent/command"
	"imon/agent/outbox"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
	"imon/mqtt/mqtttest"
)

// Test instance: the same as the homeassistant golden files.
const (
	nodeID   = "pi-main"
	base     = "imon/" + nodeID
	instance = "main"
	version  = "1.2.3"
)

var allMonitors = []string{"updown", "ping", "ddns", "failover"}

func mqttConfig(server string) config.MQTT {
	return config.MQTT{
		Enable:      true,
		Server:      server,
		ClientID:    "imon-" + nodeID,
		TopicPrefix: "imon",
		NodeID:      nodeID,
		Commands:    true,
		KeepAlive:   30 * time.Second,
	}
}

// fast are the options of every test: quick retries, no birth delay.
func fast() []outbox.Option {
	return []outbox.Option{
		outbox.WithBackoff(func(int) time.Duration { return 50 * time.Millisecond }),
		outbox.WithBirthDelay(0, 20*time.Millisecond),
		outbox.WithStateInterval(10 * time.Millisecond),
		outbox.WithAgentStateInterval(time.Hour),
		outbox.WithSections(goldenSections()),
	}
}

// goldenSections are the monitors' sections of the instance the golden
// discovery files describe (homeassistant's goldenConfig): WANs named Fibre
// and LTE, a CGNAT interface, an IPv6 provider.
func goldenSections() *config.Config {
	c := &config.Config{}
	c.Failover.Primary.Name, c.Failover.Standby.Name = "Fibre", "LTE"
	c.DDNS.Interface = "eth1"
	c.DDNS.Providers = []string{"dns://192.0.2.53/myip?type=A", "dns://192.0.2.53/myip6?type=AAAA"}
	return c
}

// commander is the agent's command entry point on j, as cmd/imon wires it
// (with a budget generous enough for the tests that publish many commands
// at once; the budget is tested in package command and the e2e suite).
func commander(j outbox.Journal, enabled []string) []outbox.Option {
	aj, ok := j.(agent.Journal)
	if !ok {
		return nil
	}
	a := agent.New(agent.Options{Instance: instance, Journal: aj, FailoverEnabled: slices.Contains(enabled, "failover"),
		CommandLimits: command.Limits{Burst: 1000, MinSwitch: -1}})
	return []outbox.Option{outbox.WithCommander(a.FailoverCommand), outbox.WithEmitter(nettest.Emitter{J: aj, Instance: instance})}
}

type running struct {
	o    *outbox.Outbox
	stop func()
}

// run starts an outbox; it is stopped at the end of the test (or by stop).
func run(t testing.TB, cfg config.MQTT, ha config.HomeAssistant, enabled []string, j outbox.Journal, opts ...outbox.Option) running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts = append(append(fast(), commander(j, enabled)...), opts...)
	o, err := outbox.New(cfg, ha, enabled, instance, version, j, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return running{o: o, stop: stop}
}

// appendEvents journals n ping-result events.
func appendEvents(t testing.TB, j *journal.Journal, n int) {
	t.Helper()
	const chunk = 5000
	for done := 0; done < n; {
		k := min(chunk, n-done)
		evs := make([]event.Event, k)
		for i := range evs {
			evs[i] = event.New(event.MonitorPing, event.KindPingResult, "ping "+strconv.Itoa(done+i),
				map[string]any{"i": done + i}).WithArgs("192.0.2.1:True:1.0:2.0:3.0:0.0:0.5")
			evs[i].Instance = instance
		}
		if _, err := j.Append(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
		done += k
	}
}

// waitCursor waits until the outbox's cursor reached seq.
func waitCursor(t testing.TB, j outbox.Journal, seq uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for j.Cursor(outbox.CursorName) < seq {
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d, want %d after %s", j.Cursor(outbox.CursorName), seq, timeout)
		}
		// The cursor is an in-memory value without a change notification;
		// polling it is the observation, not a synchronisation shortcut.
		time.Sleep(5 * time.Millisecond)
	}
}

// eventSeq decodes a BASE/event message and checks that the seq user
// property matches the payload.
func eventSeq(t testing.TB, m mqtttest.Msg) (event.Event, uint64) {
	t.Helper()
	var ev event.Event
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatalf("event payload %q: %v", m.Payload, err)
	}
	if p := m.User["seq"]; p != strconv.FormatUint(ev.Seq, 10) {
		t.Fatalf("seq user property %q, payload seq %d", p, ev.Seq)
	}
	return ev, ev.Seq
}

// stream checks BASE/event deliveries: it dedupes by seq and requires every
// newly seen seq to be the next one (journal order, no gap).
type stream struct {
	t    testing.TB
	next uint64 // the next new seq expected
	dups int
}

func newStream(t testing.TB) *stream { return &stream{t: t, next: 1} }

func (s *stream) add(seq uint64) {
	s.t.Helper()
	switch {
	case seq < s.next:
		s.dups++
	case seq == s.next:
		s.next++
	default:
		s.t.Fatalf("received seq %d while %d was expected: gap or reordering", seq, s.next)
	}
}

// drain reads BASE/event messages from sub until seq last was seen.
func (s *stream) drain(sub *mqtttest.Sub, last uint64, timeout time.Duration) {
	s.t.Helper()
	deadline := time.After(timeout)
	for s.next <= last {
		select {
		case m := <-sub.C:
			if m.Topic != base+"/event" {
				continue
			}
			_, seq := eventSeq(s.t, m)
			s.add(seq)
		case <-deadline:
			s.t.Fatalf("after %s: received up to %d, want %d", timeout, s.next-1, last)
		}
	}
}

// journalEvents returns the events of kind in j.
func journalEvents(t testing.TB, j *journal.Journal, kind string) []event.Event {
	t.Helper()
	evs, err := j.Read(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for _, ev := range evs {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvents waits until j holds n events of kind. It waits for an event
// after the last one it read: waiting after LastSeq() taken once the read
// was done missed an event appended in between, and when that was the
// last one, waited out the timeout with all n in the journal (seen failing
// under load: "10 command-rejected events after 30s, want 11").
func waitEvents(t testing.TB, j *journal.Journal, kind string, n int, timeout time.Duration) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		last := j.LastSeq()
		evs := journalEvents(t, j, kind)
		if len(evs) >= n {
			return evs
		}
		if err := j.Wait(ctx, last); err != nil {
			t.Fatalf("%d %s events after %s, want %d", len(evs), kind, timeout, n)
		}
	}
}
