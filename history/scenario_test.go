package history

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"imon/event"
)

// homeScenario is a deterministic month of a two-WAN home: mostly up,
// primary outages with a failover to the LTE standby and back, an ISP
// outage without failover, IP changes, an agent restart and a crash, and
// ping rounds every pingEvery.
type homeScenario struct {
	loc  *time.Location
	t    time.Time
	seq  uint64
	evs  []event.Event
	r    *rand.Rand
	ip   int
	wans [2]string
	act  string
}

func (h *homeScenario) at(t time.Time, ev event.Event) {
	if t.Before(h.t) {
		t = h.t
	}
	h.t = t
	h.seq++
	ev.Seq, ev.Time = h.seq, t.UTC().Truncate(time.Millisecond)
	h.evs = append(h.evs, ev)
}

func (h *homeScenario) fo(t time.Time, kind string, data map[string]any) {
	snap := map[string]any{"active": h.act, "both_down": h.wans == [2]string{Down, Down}, "wans": []map[string]any{
		{"role": "primary", "name": "Fibre", "ifname": "eth1", "status": h.wans[0]},
		{"role": "standby", "name": "LTE", "ifname": "wwan0", "status": h.wans[1]}}}
	h.at(t, event.New(event.MonitorFailover, kind, "", data).WithState(snap))
}

func (h *homeScenario) updown(t time.Time, status string, since time.Time, addping []map[string]any) {
	kind := event.KindUpdownOnline
	data := map[string]any{}
	if status == Down {
		kind = event.KindUpdownOffline
		data["addping"] = addping
	}
	h.at(t, event.New(event.MonitorUpdown, kind, "", data).WithState(map[string]any{
		"target": "9.9.9.9", "status": status, "up": status == Up, "since": since.UTC()}))
}

func (h *homeScenario) newIP(t time.Time) {
	old := fmt.Sprintf("203.0.113.%d", h.ip)
	h.ip++
	h.at(t, event.New(event.MonitorDDNS, event.KindDDNSIPUpdate, "", nil).WithArgs(fmt.Sprintf("203.0.113.%d", h.ip), old))
}

// pings emits ping rounds from h.t to until.
func (h *homeScenario) pings(until time.Time, every time.Duration, lossy bool) {
	for t := h.t.Add(every); t.Before(until); t = t.Add(every) {
		hour := float64(t.In(h.loc).Hour())
		base := 11 + 6*math.Max(0, math.Sin((hour-14)/24*2*math.Pi)) // evening peak
		avg := base + h.r.Float64()*3
		loss := 0.0
		if lossy || h.r.IntN(400) == 0 {
			loss = []float64{0.333, 0.667, 1}[h.r.IntN(3)]
		}
		alive := "True"
		if loss == 1 {
			alive = "False"
		}
		a := fmt.Sprintf("9.9.9.9:%s:%.3f:%.3f:%.3f:%s:%.3f", alive, avg*0.9, avg, avg*1.3, fmt.Sprint(loss), 0.5+h.r.Float64())
		h.at(t, event.New(event.MonitorPing, event.KindPingResult, "", nil).WithArgs(a).WithState(map[string]any{}))
	}
	h.t = until
}

func (h *homeScenario) start(t time.Time) {
	h.at(t, event.New(event.MonitorAgent, event.KindAgentStart, "Starting imon",
		map[string]any{"monitors": []string{"ddns", "updown", "failover", "ping"}}))
}

// buildHome makes the scenario ending at end.
func buildHome(loc *time.Location, end time.Time, days int, pingEvery time.Duration) []event.Event {
	h := &homeScenario{loc: loc, r: rand.New(rand.NewPCG(42, 7)), ip: 10, wans: [2]string{Up, Up}, act: "primary"}
	t0 := end.Add(-time.Duration(days) * 24 * time.Hour)
	h.t = t0
	h.start(t0)
	h.fo(t0.Add(2*time.Second), event.KindFailoverInitial, map[string]any{"wan": "primary"})
	h.at(t0.Add(3*time.Second), event.New(event.MonitorDDNS, event.KindDDNSIPUpdate, "", nil).WithArgs("203.0.113.10", ""))
	h.updown(t0.Add(4*time.Second), Up, t0.Add(4*time.Second), nil)
	t := t0.Add(time.Minute)
	step := 0
	for {
		// the next incident 1.5 to 4 days on, at a random hour
		next := t.Add(36*time.Hour + time.Duration(h.r.IntN(60))*time.Hour + time.Duration(h.r.IntN(3600))*time.Second)
		if next.After(end.Add(-3 * time.Hour)) {
			break
		}
		h.pings(next, pingEvery, false)
		switch step % 4 {
		case 0, 2:
			h.fibreCut(next, pingEvery)
		case 1: // the ISP's upstream fails: no failover helps
			h.updown(next.Add(4*time.Second), Down, next, []map[string]any{{"ip": "192.168.1.1", "alive": true}, {"ip": "100.64.0.1", "alive": true}})
			back := next.Add(time.Duration(2+h.r.IntN(8)) * time.Minute)
			h.pings(back, pingEvery, true)
			h.updown(back, Up, back, nil)
		case 3: // an update restarts the agent; later a power cut
			h.at(next, event.New(event.MonitorAgent, event.KindAgentStop, "Stopping imon", nil))
			h.start(next.Add(90 * time.Second))
			crash := next.Add(26 * time.Hour)
			h.pings(crash, pingEvery, false)
			h.start(crash.Add(25 * time.Minute))
		}
		t = h.t
		step++
	}
	h.pings(end.Add(-6*time.Hour), pingEvery, false)
	h.fibreCut(h.t, pingEvery)
	h.pings(end.Add(-time.Second), pingEvery, false)
	return h.evs
}

// fibreCut: the fibre fails, failover to LTE, back after a while.
func (h *homeScenario) fibreCut(next time.Time, pingEvery time.Duration) {
	h.wans[0] = Down
	h.act = "standby"
	h.fo(next, event.KindFailoverWANDown, map[string]any{"wan": "primary", "reason": "no reply from 192.0.2.1"})
	h.fo(next.Add(800*time.Millisecond), event.KindFailoverStandby, map[string]any{"from": "primary", "to": "standby", "reason": "primary down: no reply from 192.0.2.1"})
	h.updown(next.Add(3*time.Second), Down, next.Add(-2*time.Second), []map[string]any{{"ip": "192.168.1.1", "alive": true}, {"ip": "100.64.0.1", "alive": false}})
	h.updown(next.Add(9*time.Second), Up, next.Add(9*time.Second), nil)
	h.newIP(next.Add(20 * time.Second))
	back := next.Add(time.Duration(10+h.r.IntN(90)) * time.Minute)
	h.pings(back, pingEvery, true)
	h.wans[0] = Up
	h.fo(back, event.KindFailoverWANUp, map[string]any{"wan": "primary"})
	h.pings(back.Add(2*time.Minute), pingEvery, false)
	h.act = "primary"
	h.fo(back.Add(2*time.Minute), event.KindFailoverPrimary, map[string]any{"from": "standby", "to": "primary", "reason": "primary up: failback after the hold"})
	h.newIP(back.Add(2*time.Minute + 15*time.Second))
}

// homeReport builds the report of the scenario for the window since.
func homeReport(loc *time.Location, end time.Time, since time.Duration, pingEvery time.Duration) *Report {
	evs := buildHome(loc, end, 30, pingEvery)
	p := NewProjector(loc, State{})
	for i := range evs {
		p.Apply(&evs[i])
	}
	snap, err := snapshotOf(nil, p, end.AddDate(0, 0, -31).UnixMilli(), end.UnixMilli(), true)
	if err != nil {
		panic(err)
	}
	snap.Finalize(loc)
	return BuildReport(snap, loc, ReportOptions{Instance: "home", From: end.Add(-since)})
}
