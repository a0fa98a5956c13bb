package outbox_test

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"syscall"
	"testing"
	"time"

	"imon/config"
	"imon/event"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// BenchmarkBacklogDrain measures how fast a backlog of 100,000 journaled
// events (the real bbolt journal) is published at QoS 1 to a local
// Mosquitto (Receive Maximum 20) and acknowledged, while mosquitto_sub (a
// separate process, as Home Assistant would be) receives all of them.
// Target: ≥ 25,000 msg/s. Besides the rate it reports the CPU time per
// message of this process and of the broker, which on a shared machine say
// more than the rate.
//
//	go test -run '^$' -bench BacklogDrain -benchtime 3x ./agent/outbox/
func BenchmarkBacklogDrain(b *testing.B) { benchDrain(b, true) }

// BenchmarkBacklogDrainAlone is BenchmarkBacklogDrain without a
// subscriber: the broker only acknowledges (PUBACK 0x10).
func BenchmarkBacklogDrainAlone(b *testing.B) { benchDrain(b, false) }

func benchDrain(b *testing.B, subscriber bool) {
	const backlog = 100_000
	br := mqtttest.Start(b, mqtttest.Options{})
	var total, cpu, bcpu time.Duration
	var allocs uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		j := journaltest.Open(b)
		appendEvents(b, j, backlog)
		last := j.LastSeq()
		var received <-chan error
		if subscriber {
			received = br.Count(b, base+"/event", backlog)
		}
		// The setup's garbage is not the outbox's cost.
		runtime.GC()
		debug.FreeOSMemory()
		b.StartTimer()
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		start, cpu0, bcpu0 := time.Now(), processCPU(), br.CPUTime()
		r := run(b, mqttConfig(br.URL()), config.HomeAssistant{}, allMonitors, j)
		if subscriber {
			if err := <-received; err != nil {
				b.Fatalf("mosquitto_sub: %v", err)
			}
		}
		waitCursor(b, j, last, time.Minute)
		total += time.Since(start)
		cpu += processCPU() - cpu0
		bcpu += br.CPUTime() - bcpu0
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		allocs += ms1.Mallocs - ms0.Mallocs
		b.StopTimer()
		r.stop()
	}
	n := float64(backlog) * float64(b.N)
	b.ReportMetric(n/total.Seconds(), "msg/s")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/msg")
	b.ReportMetric(float64(bcpu.Microseconds())/n, "broker-cpu-µs/msg")
	b.ReportMetric(float64(allocs)/n, "allocs/msg")
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

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
