package outbox_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"imon/agent/outbox"
	"imon/config"
	"imon/event"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// TestOversizedEventTrimmed: a broker with a Maximum Packet Size of 2000
// bytes and a 3.2 KB action-failed event: the event is published with its
// data replaced by the trim marker, the trim is journaled once (also after
// a reconnect), and every later event is received. Before, the broker
// disconnected imon at every resend and nothing after it ever arrived
// (seen failing: no message after seq 1).
func TestOversizedEventTrimmed(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Extra: []string{"max_packet_size 2000"}})
	j := journaltest.Open(t)
	ctx := context.Background()
	small := func(i int) event.Event {
		ev := event.New(event.MonitorPing, event.KindPingResult, "ping "+strconv.Itoa(i), map[string]int{"i": i})
		ev.Instance = instance
		return ev
	}
	big := event.New(event.MonitorAction, event.KindActionFailed, "Action script failed: "+strings.Repeat("é", 20),
		map[string]string{"output": strings.Repeat("x", 3200)}).WithLevel(event.LevelError)
	big.Instance = instance
	if _, err := j.Append(ctx, small(1), big, small(3), small(4)); err != nil {
		t.Fatal(err)
	}
	sub := b.Subscribe(t, base+"/event")
	p := mqtttest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(b.Port))
	run(t, mqttConfig(p.URL()), config.HomeAssistant{}, allMonitors, j)

	seen := map[uint64]event.Event{}
	next := func(want uint64) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for seen[want].Seq == 0 {
			select {
			case m := <-sub.C:
				var ev event.Event
				if err := json.Unmarshal(m.Payload, &ev); err != nil {
					t.Fatalf("payload %q: %v", m.Payload, err)
				}
				if len(m.Payload) > 2000 {
					t.Errorf("event %d: %d-byte payload over the broker's limit", ev.Seq, len(m.Payload))
				}
				seen[ev.Seq] = ev
			case <-deadline:
				t.Fatalf("event %d not received (got %v)", want, keys(seen))
			}
		}
	}
	for seq := uint64(1); seq <= 4; seq++ {
		next(seq)
	}
	var marker outbox.Trimmed
	if err := seen[2].DecodeData(&marker); err != nil || !marker.Trimmed || marker.Seq != 2 || marker.Size < 3200 {
		t.Errorf("event 2 data %s (%v), want the trim marker with seq 2 and the original size", seen[2].Data, err)
	}
	if seen[2].Kind != event.KindActionFailed || seen[2].Level != event.LevelError {
		t.Errorf("trimmed event lost its kind or level: %+v", seen[2])
	}
	tr := waitEvents(t, j, outbox.KindEventTrimmed, 1, 10*time.Second)
	// The trim event itself and later events get through.
	if _, err := j.Append(ctx, small(6)); err != nil {
		t.Fatal(err)
	}
	next(tr[0].Seq)
	next(j.LastSeq())

	// A reconnect that resends the event: the trim is not journaled again.
	waitCursor(t, j, j.LastSeq(), 10*time.Second)
	j.SetCursor(outbox.CursorName, 1)
	p.Cut()
	waitEvents(t, j, outbox.KindMQTTConnected, 2, 20*time.Second)
	if _, err := j.Append(ctx, small(7)); err != nil {
		t.Fatal(err)
	}
	waitCursor(t, j, j.LastSeq(), 10*time.Second)
	if n := len(journalEvents(t, j, outbox.KindEventTrimmed)); n != 1 {
		t.Errorf("trim journaled %d times, want once", n)
	}
}

func keys(m map[uint64]event.Event) []uint64 {
	var out []uint64
	for k := range m {
		out = append(out, k)
	}
	return out
}
