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
