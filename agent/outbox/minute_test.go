package outbox_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"imon/config"
	"imon/event"
	"imon/journal"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// TestPingMinute: the ping rounds are folded into BASE/ping/minute, which
// is published (retained) once per minute, when the first round of the next
// minute is journaled; the rounds themselves still go to BASE/ping/state.
func TestPingMinute(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixMilli())
	j := journaltest.Open(t, journal.Options{Now: func() time.Time { return time.UnixMilli(now.Load()) }})
	b := mqtttest.Start(t, mqtttest.Options{})
	minute := b.Subscribe(t, base+"/ping/minute")
	state := b.Subscribe(t, base+"/ping/state")
	run(t, mqttConfig(b.URL()), config.HomeAssistant{Enable: true, DiscoveryPrefix: "homeassistant"}, []string{"ping"}, j)

	round := func(at time.Duration, recv int, avg float64) {
		t.Helper()
		now.Store(t0.Add(at).UnixMilli())
		st, _ := json.Marshal(map[string]any{"target": "192.0.2.1", "sent": 5, "recv": recv, "min_ms": avg - 1, "avg_ms": avg, "max_ms": avg + 1, "jitter_ms": 0.5, "loss": float64(5-recv) / 5})
		ev := event.New(event.MonitorPing, event.KindPingResult, "round", nil).WithState(json.RawMessage(st))
		if _, err := j.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		waitLive(t, state, base+"/ping/state") // each round is published on its own
	}
	round(5*time.Second, 5, 10)
	round(15*time.Second, 5, 20)
	round(25*time.Second, 0, 0)
	round(65*time.Second, 5, 30)
	// The first message on the topic: a minute published before it ended
	// would come first and differ.
	m := waitLive(t, minute, base+"/ping/minute")
	want := `{"start":"2025-01-02T03:04:00.000Z","end":"2025-01-02T03:04:25.000Z","rounds":3,"sent":15,"recv":10,"loss":0.333,"min_ms":9,"avg_ms":15,"max_ms":21,"jitter_ms":0.5}`
	if string(m.Payload) != want {
		t.Errorf("minute %s, want %s", m.Payload, want)
	}
	if r := string(b.Retained(t, base+"/ping/minute")[base+"/ping/minute"]); r != want {
		t.Errorf("retained minute %s", r)
	}
}
