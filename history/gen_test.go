package history

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"imon/event"
)

// change is one step of the model timeline: subject takes status at t.
type change struct {
	t       int64 // Unix ms
	subject string
	status  string
	standby bool
}

// gen makes a random event stream and, independently of the projector,
// the timeline of what each subject's status really was.
type gen struct {
	r       *rand.Rand
	t       int64
	seq     uint64
	evs     []event.Event
	model   []change
	running bool
	crashed bool
	cur     map[string]change // subject → current model status
	resume  map[string]change
	inet    string
	wan     [2]string
	active  string // "primary", "standby", "" (none)
	outages int
}

func newGen(seed uint64, start time.Time) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), t: start.UnixMilli(),
		cur: map[string]change{}, resume: map[string]change{}, inet: Unknown, wan: [2]string{Unknown, Unknown}}
}

func (g *gen) emit(ev event.Event) {
	g.seq++
	ev.Seq = g.seq
	ev.Time = time.UnixMilli(g.t).UTC()
	g.evs = append(g.evs, ev)
}

func (g *gen) mark(subject, status string, standby bool, at int64) {
	c := change{t: at, subject: subject, status: status, standby: standby}
	g.cur[subject] = c
	g.model = append(g.model, c)
}

var genSubjects = []string{SubjectInternet, SubjectPrimary, SubjectStandby, SubjectActive}

func (g *gen) start() {
	if g.crashed {
		// the agent died right after its last event
		last := g.evs[len(g.evs)-1].Time.UnixMilli()
		for _, n := range genSubjects {
			if c, ok := g.cur[n]; ok {
				g.resume[n] = c
				g.mark(n, Unknown, false, last)
			}
		}
	}
	g.emit(event.New(event.MonitorAgent, event.KindAgentStart, "Starting imon",
		map[string]any{"monitors": []string{"updown", "failover", "ping"}}))
	for _, n := range genSubjects {
		if c, ok := g.resume[n]; ok {
			g.mark(n, c.status, c.standby, g.t)
		} else if _, ok := g.cur[n]; !ok {
			g.mark(n, Unknown, false, g.t)
		}
	}
	g.running, g.crashed = true, false
}

func (g *gen) stop(crash bool) {
	g.running = false
	if crash {
		g.crashed = true
		return
	}
	g.emit(event.New(event.MonitorAgent, event.KindAgentStop, "Stopping imon", nil))
	for _, n := range genSubjects {
		g.resume[n] = g.cur[n]
		g.mark(n, Unknown, false, g.t)
	}
}

func (g *gen) updown() {
	st := []string{Up, Down, Unknown}[g.r.IntN(3)]
	if st == g.inet {
		return
	}
	since := g.t
	if st == Down {
		// dated back to a moment after the last change
		from := g.cur[SubjectInternet].t
		since = from + g.r.Int64N(g.t-from+1)
	}
	g.inet = st
	kind := map[string]string{Up: event.KindUpdownOnline, Down: event.KindUpdownOffline, Unknown: "updown-status"}[st]
	state := map[string]any{"target": "192.0.2.1", "status": st, "up": st == Up, "since": time.UnixMilli(since).UTC()}
	data := map[string]any{}
	if st == Down {
		g.outages++
		data["addping"] = []map[string]any{{"ip": "10.0.0.1", "alive": g.r.IntN(2) == 0}}
	}
	g.emit(event.New(event.MonitorUpdown, kind, "", data).WithState(state))
	g.mark(SubjectInternet, st, false, since)
}

func (g *gen) failover() {
	i := g.r.IntN(2)
	g.wan[i] = []string{Up, Down}[g.r.IntN(2)]
	prev := g.active
	switch {
	case g.wan[0] == Up:
		g.active = "primary"
	case g.wan[1] == Up:
		g.active = "standby"
	default:
		g.active = ""
	}
	if g.r.IntN(5) == 0 && g.wan[1] == Up {
		g.active = "standby" // a manual pin
	}
	bothDown := g.wan[0] == Down && g.wan[1] == Down
	kind := event.KindFailoverWANUp
	if g.active != prev && g.active != "" {
		kind = map[string]string{"primary": event.KindFailoverPrimary, "standby": event.KindFailoverStandby}[g.active]
	}
	snap := map[string]any{"active": g.active, "both_down": bothDown, "wans": []map[string]any{
		{"role": "primary", "status": g.wan[0], "ifname": "eth0"}, {"role": "standby", "status": g.wan[1], "ifname": "wwan0", "name": "LTE"}}}
	g.emit(event.New(event.MonitorFailover, kind, "", map[string]any{"from": prev, "to": g.active, "reason": "test"}).WithState(snap))
	for j, n := range []string{SubjectPrimary, SubjectStandby} {
		if g.cur[n].status != g.wan[j] {
			g.mark(n, g.wan[j], false, g.t)
		}
	}
	st, sb := Unknown, false
	switch {
	case g.active == "primary":
		st = Up
	case g.active == "standby":
		st, sb = Up, true
	case bothDown:
		st = Down
	}
	if c := g.cur[SubjectActive]; c.status != st || c.standby != sb {
		g.mark(SubjectActive, st, sb, g.t)
	}
}

func (g *gen) ping() {
	alive := g.r.IntN(10) != 0
	avg := 1 + g.r.Float64()*80
	a := fmt.Sprintf("2001:db8::1:%s:%.3f:%.3f:%.3f:%.1f:%.3f", map[bool]string{true: "True", false: "False"}[alive], avg/2, avg, avg*2, g.r.Float64(), avg/10)
	g.emit(event.New(event.MonitorPing, event.KindPingResult, "", nil).WithArgs(a).WithState(json.RawMessage(`{}`)))
}

func (g *gen) ip() {
	g.emit(event.New(event.MonitorDDNS, event.KindDDNSIPUpdate, "", nil).WithArgs(fmt.Sprintf("198.51.100.%d", g.r.IntN(250)), fmt.Sprintf("198.51.100.%d", g.r.IntN(250))))
}

// run makes n steps.
func (g *gen) run(n int) {
	if len(g.evs) == 0 {
		g.start()
	}
	for range n {
		// mostly short steps, now and then hours
		if g.r.IntN(20) == 0 {
			g.t += g.r.Int64N(6 * 3600 * 1000)
		} else {
			g.t += 1 + g.r.Int64N(120*1000)
		}
		if !g.running {
			g.start()
			continue
		}
		switch k := g.r.IntN(100); {
		case k < 2:
			g.stop(false)
		case k < 3:
			g.stop(true)
		case k < 20:
			g.updown()
		case k < 35:
			g.failover()
		case k < 38:
			g.ip()
		default:
			g.ping()
		}
	}
}

// expected computes from the model the milliseconds per status, per
// subject and local day and hour, up to end, by walking each second...
// the plain way: interval by interval, hour by hour with time.Date.
func (g *gen) expected(loc *time.Location, end int64) map[string]map[string][]Slot {
	out := map[string]map[string][]Slot{}
	bySubj := map[string][]change{}
	for _, c := range g.model {
		bySubj[c.subject] = append(bySubj[c.subject], c)
	}
	for subj, cs := range bySubj {
		for i, c := range cs {
			to := end
			if i+1 < len(cs) {
				to = cs[i+1].t
			}
			for t := c.t; t < to; {
				lt := time.UnixMilli(t).In(loc)
				day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
				next := time.Date(lt.Year(), lt.Month(), lt.Day()+1, 0, 0, 0, 0, loc)
				h := int((t - day.UnixMilli()) / 3600000)
				he := min(day.UnixMilli()+int64(h+1)*3600000, next.UnixMilli(), to)
				date := day.Format("2006-01-02")
				if out[subj] == nil {
					out[subj] = map[string][]Slot{}
				}
				if out[subj][date] == nil {
					out[subj][date] = make([]Slot, int((next.UnixMilli()-day.UnixMilli()+3599999)/3600000))
				}
				sl := &out[subj][date][h]
				switch c.status {
				case Up:
					sl.Up += he - t
					if c.standby {
						sl.Standby += he - t
					}
				case Down:
					sl.Down += he - t
				default:
					sl.Unknown += he - t
				}
				t = he
			}
		}
	}
	return out
}
