package updown

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"imon/agent/probe"
	"imon/event"
)

// A discrete-event simulation of the Machine with the Run loop's pacing:
// probes every interval/(2·pingcount), lost after pingwait, DNS checks that
// take dnsDelay (or dnsTimeout when they fail). No goroutines, no clock:
// ten simulated minutes take a millisecond.

type simConfig struct {
	interval, wait, downInterval time.Duration
	pingcount                    int
	rtt                          time.Duration
	loss                         float64       // independent loss of each probe
	cut                          time.Duration // from this offset every probe is lost (0: never)
	dns                          bool          // DNS check configured
	dnsFail                      float64       // probability that a DNS check fails (server reachable)
	dnsDelay, dnsTimeout         time.Duration
	duration                     time.Duration
}

type simItem struct {
	at   time.Time
	n    int // insertion order, breaks ties
	kind int
	o    probe.Outcome
	id   int
	err  error
}

const (
	simSend = iota
	simOutcome
	simDNS
	simTick
)

type simHeap []simItem

func (h simHeap) Len() int { return len(h) }
func (h simHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].n < h[j].n
}
func (h simHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simHeap) Push(x any)   { *h = append(*h, x.(simItem)) }
func (h *simHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type timedEvent struct {
	at time.Time
	ev event.Event
}

func simulate(c simConfig, rnd *rand.Rand) []timedEvent {
	p := Params{Target: ip, PingCount: c.pingcount, DownInterval: c.downInterval}
	if c.dns {
		p.DNSServer, p.DNSLookup = "192.0.2.53", "example.com"
	}
	m := NewMachine(p)
	m.Start(t0, nil)
	spacing := c.interval / time.Duration(2*c.pingcount)
	var (
		h     simHeap
		n     int
		seq   uint64
		out   []timedEvent
		wakes = map[time.Time]bool{}
	)
	push := func(it simItem) {
		n++
		it.n = n
		heap.Push(&h, it)
	}
	push(simItem{at: t0, kind: simSend})
	end := t0.Add(c.duration)
	for h.Len() > 0 {
		it := heap.Pop(&h).(simItem)
		if it.at.After(end) {
			break
		}
		now := it.at
		var o Output
		switch it.kind {
		case simSend:
			seq++
			oc := probe.Outcome{Seq: seq, Sent: now}
			cut := c.cut > 0 && now.Sub(t0) >= c.cut
			if cut || rnd.Float64() < c.loss {
				oc.At = now.Add(c.wait)
			} else {
				oc.At, oc.OK, oc.RTT = now.Add(c.rtt), true, c.rtt
			}
			push(simItem{at: oc.At, kind: simOutcome, o: oc})
			push(simItem{at: now.Add(spacing), kind: simSend})
		case simOutcome:
			o = m.Probe(now, it.o)
		case simDNS:
			o = m.DNSResult(now, it.id, it.err)
		case simTick:
			delete(wakes, now)
			o = m.Tick(now)
		}
		for _, ev := range o.Events {
			out = append(out, timedEvent{now, ev})
		}
		if o.DNSCheck != 0 {
			down := c.cut > 0 && now.Sub(t0) >= c.cut
			if down || rnd.Float64() < c.dnsFail {
				push(simItem{at: now.Add(c.dnsTimeout), kind: simDNS, id: o.DNSCheck, err: errors.New("timeout")})
			} else {
				push(simItem{at: now.Add(c.dnsDelay), kind: simDNS, id: o.DNSCheck})
			}
		}
		if w := m.Wake(); !w.IsZero() && !wakes[w] {
			wakes[w] = true
			push(simItem{at: w, kind: simTick})
		}
	}
	return out
}

func count(evs []timedEvent, kind string) int {
	n := 0
	for _, e := range evs {
		if e.ev.Kind == kind {
			n++
		}
	}
	return n
}

// fastConfig is the benchmark target's setting: interval 1, pingcount 2,
// pingwait 1.
func fastConfig() simConfig {
	return simConfig{interval: time.Second, wait: time.Second, downInterval: time.Second, pingcount: 2,
		rtt: 15 * time.Millisecond, dnsDelay: 20 * time.Millisecond, dnsTimeout: 2 * time.Second}
}

// lossyDNSFail is the probability that a DNS check over a link with 5%
// loss each way fails: each of the three UDP tries needs the query and the
// answer through (probe.DNSClient resends twice).
var lossyDNSFail = func() float64 {
	try := 1 - 0.95*0.95
	return try * try * try
}()

func TestSimNoFalseOutagesWithDNS(t *testing.T) {
	c := fastConfig()
	c.loss, c.dns, c.duration = 0.05, true, 10*time.Minute
	rnd := rand.New(rand.NewPCG(1, 2))
	for run := range 10 {
		if n := count(simulate(c, rnd), event.KindUpdownOffline); n != 0 {
			t.Errorf("run %d: %d false outages in 10 min of 5%% loss with a DNS check", run, n)
		}
	}
	// Heavy loss makes loss streaks common: the DNS check refutes them all.
	c.loss = 0.3
	evs := simulate(c, rnd)
	if n := count(evs, event.KindUpdownOffline); n != 0 {
		t.Errorf("%d false outages with 30%% loss and a DNS check that answers", n)
	}
	if count(evs, KindRefuted) == 0 {
		t.Error("no loss streak was refuted: the simulation did not exercise the DNS check")
	}
}

func TestSimDetection(t *testing.T) {
	// Cut at every 10ms across one probe period: detection takes pingwait
	// plus up to two probe spacings (the first lost probe is sent 0..250ms
	// after the cut, the second 250ms later and declared lost 1s after).
	c := fastConfig()
	c.duration = time.Minute
	var lat []time.Duration
	for off := 0; off < 250; off += 10 {
		c.cut = 10*time.Second + time.Duration(off)*time.Millisecond
		evs := simulate(c, rand.New(rand.NewPCG(1, 2)))
		var got time.Duration
		for _, e := range evs {
			if e.ev.Kind == event.KindUpdownOffline {
				got = e.at.Sub(t0.Add(c.cut))
				break
			}
		}
		if got < c.wait+250*time.Millisecond-time.Nanosecond || got > c.wait+500*time.Millisecond {
			t.Errorf("cut at +%dms: offline after %v, want 1.25..1.5s", off, got)
		}
		lat = append(lat, got)
	}
	slices.Sort(lat)
	if med := lat[len(lat)/2]; med > 1500*time.Millisecond {
		t.Errorf("median detection %v > 1.5s", med)
	}
}

// BenchmarkFalseOutages simulates 10 minutes of 5% random probe loss per
// iteration with interval 1, pingcount 2, pingwait 1 and reports the false
// updown-offline events per 10 minutes: with a DNS check that answers, over
// a DNS path with the same 5% loss, and without a DNS check; and the same
// at 30% loss, where loss streaks are common.
func BenchmarkFalseOutages(b *testing.B) {
	for _, bc := range []struct {
		name    string
		loss    float64
		dns     bool
		dnsFail float64
	}{
		{"dns-answers", 0.05, true, 0},
		{"dns-lossy-link", 0.05, true, lossyDNSFail},
		{"no-dns", 0.05, false, 0},
		{"dns-answers-30pct", 0.3, true, 0},
		{"no-dns-30pct", 0.3, false, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := fastConfig()
			c.loss, c.dns, c.dnsFail, c.duration = bc.loss, bc.dns, bc.dnsFail, 10*time.Minute
			rnd := rand.New(rand.NewPCG(7, 7))
			offline, refuted := 0, 0
			for b.Loop() {
				evs := simulate(c, rnd)
				offline += count(evs, event.KindUpdownOffline)
				refuted += count(evs, KindRefuted)
			}
			b.ReportMetric(float64(offline)/float64(b.N), "false-offline/10min")
			b.ReportMetric(float64(refuted)/float64(b.N), "refuted/10min")
		})
	}
}

// BenchmarkDetectionLatency cuts the target at random times (200 cuts per
// iteration, so that -benchtime 1x still gives a distribution) and reports
// how long after the cut updown-offline is journaled (simulated time),
// with interval 1, pingcount 2, pingwait 1 and no DNS check (and, for
// reference, with a DNS check that times out after 2 s).
func BenchmarkDetectionLatency(b *testing.B) {
	const cutsPerOp = 200
	for _, bc := range []struct {
		name string
		dns  bool
	}{{"no-dns", false}, {"dns-2s-timeout", true}} {
		b.Run(bc.name, func(b *testing.B) {
			c := fastConfig()
			c.dns, c.duration = bc.dns, 20*time.Second
			rnd := rand.New(rand.NewPCG(3, 4))
			var lat []time.Duration
			for b.Loop() {
				for range cutsPerOp {
					c.cut = 10*time.Second + time.Duration(rnd.Int64N(int64(5*time.Second)))
					for _, e := range simulate(c, rnd) {
						if e.ev.Kind == event.KindUpdownOffline {
							lat = append(lat, e.at.Sub(t0.Add(c.cut)))
							break
						}
					}
				}
			}
			if len(lat) != b.N*cutsPerOp {
				b.Fatalf("%d of %d cuts detected", len(lat), b.N*cutsPerOp)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "ms-median")
			b.ReportMetric(float64(lat[len(lat)*95/100])/1e6, "ms-p95")
			b.ReportMetric(float64(lat[len(lat)-1])/1e6, "ms-max")
		})
	}
}
