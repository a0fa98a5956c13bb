package homeassistant_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"
	"time"

	"imon/agent/monitor/ping"
	"imon/agent/probe"
	"imon/homeassistant"
)

// rowCounter counts the state rows Home Assistant's recorder writes for the
// device: one per entity whenever what the entity shows (its state or its
// attributes) changes. An entity's view is approximated by the values of
// the fields it reads (Entity.Reads), so the count is an upper bound: a
// field change that renders the same state still counts.
type rowCounter struct {
	byTopic map[string][]homeassistant.Entity
	last    map[string]string // object id -> last view
	rows    map[string]int
}

func newRowCounter(c homeassistant.Config) *rowCounter {
	rc := &rowCounter{byTopic: map[string][]homeassistant.Entity{}, last: map[string]string{}, rows: map[string]int{}}
	for _, e := range homeassistant.Entities(c) {
		if c.Published(e) && len(e.Reads) > 0 {
			rc.byTopic[e.Payload.StateTopic] = append(rc.byTopic[e.Payload.StateTopic], e)
		}
	}
	return rc
}

// publish is one retained state message as the outbox sends it.
func (rc *rowCounter) publish(t testing.TB, topic string, payload []byte) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(payload, &v); err != nil {
		t.Fatalf("%s: %v", topic, err)
	}
	for _, e := range rc.byTopic[topic] {
		view := ""
		for _, f := range e.Reads {
			view += f + "=" + string(v[f]) + ";"
		}
		if prev, ok := rc.last[e.ObjectID()]; !ok || prev != view {
			rc.rows[e.ObjectID()]++
			rc.last[e.ObjectID()] = view
		}
	}
}

func (rc *rowCounter) total() int {
	n := 0
	for _, r := range rc.rows {
		n += r
	}
	return n
}

// simulateDay replays a quiet day of one instance at the defaults (all
// four monitors, ping interval 10 s with 2 requests, RTT 8-20 ms with 0.5 %
// random loss; no outage, failover or address change; the agent state every
// 30 s with the journal file growing in 16 MiB steps) through what the
// outbox publishes, with a fake clock. perRound makes the ping entities read
// every round (BASE/ping/state), as before issue 13.
func simulateDay(t testing.TB, perRound bool) *rowCounter {
	c := goldenConfig
	rc := newRowCounter(c)
	if perRound { // the old wiring: measurements from every round
		for _, es := range rc.byTopic {
			for _, e := range es {
				if e.Payload.StateTopic == c.PingMinuteTopic() {
					rc.byTopic[c.StateTopic("ping")] = append(rc.byTopic[c.StateTopic("ping")], e)
				}
			}
		}
		delete(rc.byTopic, c.PingMinuteTopic())
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// The retained states published on connect.
	rc.publish(t, c.StateTopic("updown"), []byte(`{"target":"192.0.2.1","addr":"192.0.2.1","status":"up","up":true,"since":"2025-05-31T22:00:00.000Z","outages":2,"last_outage_start":"2025-05-30T10:00:00.000Z","last_outage_duration_s":42.5}`))
	rc.publish(t, c.StateTopic("ddns"), []byte(`{"ip":"203.0.113.5","changed_at":"2025-05-20T10:00:00.000Z","previous":"203.0.113.4","agreed":["a","b"],"consensus":"ok","cgnat":false,"providers":[{"name":"a","status":"ok"},{"name":"b","status":"ok"}]}`))
	rc.publish(t, c.StateTopic("failover"), []byte(`{"active":"primary","active_since":"2025-05-31T22:00:00.000Z","mode":"auto","hold_s":30,"hold_remaining_s":0,"flaps":0,"bothdown":false,"wans":[{"role":"primary","name":"Fibre","ifname":"eth1","status":"up","rtt_ms":1.2,"loss":0},{"role":"standby","name":"LTE","ifname":"wwan0","status":"up","rtt_ms":30.5,"loss":0}]}`))
	var win homeassistant.MinuteWindow
	journal := int64(1 << 20)
	for s := 10 * time.Second; s <= 24*time.Hour; s += 10 * time.Second {
		end := t0.Add(s)
		r := probe.PingResult{Addr: netip.MustParseAddr("192.0.2.1"), Sent: 2}
		for range 2 {
			if rnd.Float64() < 0.005 {
				continue
			}
			r.RTTs = append(r.RTTs, 8*time.Millisecond+time.Duration(rnd.Int64N(int64(12*time.Millisecond))))
		}
		r.Recv = len(r.RTTs)
		r.Loss = float64(r.Sent-r.Recv) / float64(r.Sent)
		if r.Recv > 0 {
			r.Min, r.Max = r.RTTs[0], r.RTTs[0]
			var sum time.Duration
			for i, d := range r.RTTs {
				r.Min, r.Max, sum = min(r.Min, d), max(r.Max, d), sum+d
				if i > 0 {
					r.Jitter += (d - r.RTTs[i-1]).Abs()
				}
			}
			r.Avg = sum / time.Duration(r.Recv)
		}
		ev := ping.Result("192.0.2.1", r, end)
		rc.publish(t, c.StateTopic("ping"), ev.State)
		if m, done := win.Add(end, ev.State); done {
			rc.publish(t, c.PingMinuteTopic(), m.JSON())
		}
		journal += int64(len(ev.State)) + 150
		if s%(30*time.Second) == 0 {
			size := (journal + 16<<20 - 1) / (16 << 20) * (16 << 20)
			as := homeassistant.AgentState{Version: "1.2.3", Instance: "main", JournalBytes: &size, LastSeq: uint64(s / (10 * time.Second))}
			rc.publish(t, c.StateTopic("agent"), as.JSON())
		}
	}
	return rc
}

// TestRecorderBudget: at the defaults the device writes at most 10,000
// state rows a day (issue 13: it wrote about 17,280, Latency and Jitter
// every 10 s).
func TestRecorderBudget(t *testing.T) {
	rc := simulateDay(t, false)
	ids := make([]string, 0, len(rc.rows))
	for id := range rc.rows {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t.Logf("%-28s %6d rows/day", id, rc.rows[id])
	}
	if n := rc.total(); n > 10000 {
		t.Errorf("%d rows/day, want <= 10000", n)
	}
	for _, id := range []string{"ping_latency", "ping_jitter", "ping_latency_min", "ping_latency_max", "ping_packet_loss"} {
		if rc.rows[id] > 1441 {
			t.Errorf("%s: %d rows/day, more than one a minute", id, rc.rows[id])
		}
	}
	if old := simulateDay(t, true).total(); old <= 10000 {
		t.Errorf("the per-round wiring gives %d rows/day: the simulation no longer shows the problem", old)
	}
}

// BenchmarkRecorderRowsPerDay reports the state rows a day Home Assistant's
// recorder writes for one instance at the defaults (rows/day), and what
// the per-round wiring of the ping entities wrote (rows/day-per-round).
func BenchmarkRecorderRowsPerDay(b *testing.B) {
	var now, old int
	for b.Loop() {
		now = simulateDay(b, false).total()
		old = simulateDay(b, true).total()
	}
	b.ReportMetric(float64(now), "rows/day")
	b.ReportMetric(float64(old), "rows/day-per-round")
}
