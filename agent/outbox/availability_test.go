package outbox_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"imon/agent/outbox"
	"imon/config"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// TestAvailabilityState: BASE/availability/state is published retained on
// connect with the payload of the availability function, which runs on the
// agent-state tick but at most once a minute.
func TestAvailabilityState(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	j := journaltest.Open(t)
	var calls atomic.Int32
	ticks := make(chan struct{}, 100)
	payload := `{"internet_24h":99.5,"internet_30d":99.9,"internet_7d":99.8,"internet_downtime_today_s":42}`
	avail := func(context.Context) ([]byte, error) {
		calls.Add(1)
		return []byte(payload), nil
	}
	sub := b.Subscribe(t, base+"/availability/state")
	agentSub := b.Subscribe(t, base+"/agent/state")
	run(t, mqttConfig(b.URL()), config.HomeAssistant{}, allMonitors, j,
		outbox.WithAvailability(avail), outbox.WithAgentStateInterval(5*time.Millisecond),
		outbox.WithJournalSize(func() int64 { ticks <- struct{}{}; return 1 }))
	m := waitLive(t, sub, base+"/availability/state")
	if string(m.Payload) != payload {
		t.Errorf("availability state %q, want %q", m.Payload, payload)
	}
	waitLive(t, agentSub, base+"/agent/state")
	// Twenty agent-state ticks later the function has still run once.
	for range 20 {
		select {
		case <-ticks:
		case <-time.After(20 * time.Second):
			t.Fatal("no agent-state tick")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("availability computed %d times within a few ticks, want once (at most once a minute)", n)
	}
	if got := b.Retained(t, base+"/availability/state"); string(got[base+"/availability/state"]) != payload {
		t.Errorf("retained %q", got)
	}
}

// TestAgentStateOnTicker: with WithTicker (imon's: the probe engine's
// grid), BASE/agent/state is refreshed at its ticks, asked for at the
// agent-state interval.
func TestAgentStateOnTicker(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	j := journaltest.Open(t)
	refreshed := make(chan struct{}, 100)
	tick := make(chan time.Time, 1)
	periods := make(chan time.Duration, 10)
	every := func(_ context.Context, d time.Duration) <-chan time.Time { periods <- d; return tick }
	agentSub := b.Subscribe(t, base+"/agent/state")
	run(t, mqttConfig(b.URL()), config.HomeAssistant{}, allMonitors, j,
		outbox.WithTicker(every), outbox.WithAgentStateInterval(7*time.Second),
		outbox.WithJournalSize(func() int64 { refreshed <- struct{}{}; return 1 }))
	waitLive(t, agentSub, base+"/agent/state")
	select {
	case d := <-periods:
		if d != 7*time.Second {
			t.Errorf("ticks asked every %v, want the agent-state interval (7s)", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the ticker was not used")
	}
	for len(refreshed) > 0 { // the refresh on connect
		<-refreshed
	}
	tick <- time.Now()
	select {
	case <-refreshed:
	case <-time.After(20 * time.Second):
		t.Fatal("no agent-state refresh at the tick")
	}
}
