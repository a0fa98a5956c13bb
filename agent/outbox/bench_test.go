package outbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"imon/agent/event"
	"imon/config"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// BenchmarkBacklogDrain measures how fast a backlog of 100,000 journaled
// events (the real bbolt journal) is published at QoS 1 to a local
// Mosquitto (Receive Maximum 20) and acknowledged, while a subscriber
// receives all of them (at QoS 0: its own PUBACKs would be the test's
// cost, not the publisher's, on a two-core machine). Target: ≥ 25,000
// msg/s.
//
//	go test -run '^$' -bench BacklogDrain -benchtime 3x ./agent/outbox/
func BenchmarkBacklogDrain(b *testing.B) {
	const backlog = 100_000
	br := mqtttest.Start(b, mqtttest.Options{})
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		j := journaltest.Open(b)
		appendEvents(b, j, backlog)
		last := j.LastSeq()
		sub := br.SubscribeQoS(b, 0, base+"/event")
		b.StartTimer()
		start := time.Now()
		r := run(b, mqttConfig(br.URL()), config.HomeAssistant{}, allMonitors, j)
		got := 0
		for got < backlog {
			m := <-sub.C
			if m.Topic == base+"/event" {
				got++
			}
		}
		waitCursor(b, j, last, time.Minute)
		total += time.Since(start)
		b.StopTimer()
		r.stop()
	}
	b.ReportMetric(float64(backlog)*float64(b.N)/total.Seconds(), "msg/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAppendToReceive measures the latency from journal.Append (an
// event journaled by a monitor, fsync included) to its arrival at an MQTT
// subscriber on loopback. Target: median ≤ 10 ms.
//
//	go test -run '^$' -bench AppendToReceive -benchtime 500x ./agent/outbox/
func BenchmarkAppendToReceive(b *testing.B) {
	br := mqtttest.Start(b, mqtttest.Options{})
	j := journaltest.Open(b)
	sub := br.Subscribe(b, base+"/event")
	run(b, mqttConfig(br.URL()), config.HomeAssistant{}, allMonitors, j)
	// Wait for the outbox to be live: its own mqtt-connected event arrives.
	for m := range sub.C {
		if ev, _ := eventSeq(b, m); ev.Kind == "mqtt-connected" {
			break
		}
	}
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := event.New(event.MonitorPing, event.KindPingResult, "ping", map[string]any{"i": i})
		start := time.Now()
		out, err := j.Append(ctx, ev)
		if err != nil {
			b.Fatal(err)
		}
		for {
			m := <-sub.C
			if _, seq := eventSeq(b, m); seq == out[0].Seq {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "ms-median")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "ms-p99")
}
