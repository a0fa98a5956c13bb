package history

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Finalize accounts the open periods up to Now into the days (the agent's
// statuses hold until Now when Alive, else until the last event, and the
// rest is unknown), and drops days before the snapshot's first day.
func (s *Snapshot) Finalize(loc *time.Location) {
	p := NewProjector(loc, s.State)
	first := ""
	for _, d := range s.Days {
		p.Put(d)
		if first == "" || d.Date < first {
			first = d.Date
		}
	}
	p.Finish(s.Now, s.Alive)
	s.State = *p.State()
	s.Days = s.Days[:0]
	for _, d := range p.Days() {
		if first == "" || d.Date >= first {
			s.Days = append(s.Days, d)
		}
	}
	sortDays(s.Days)
}

func sortDays(days []*Day) {
	sort.Slice(days, func(i, j int) bool {
		a, b := days[i], days[j]
		if a.Date != b.Date {
			return a.Date < b.Date
		}
		return a.Subject < b.Subject
	})
}

// Sum adds the hour slots of subject that start in [from, to) (Unix ms).
func (s *Snapshot) Sum(subject string, from, to int64) Slot {
	var t Slot
	for _, d := range s.Days {
		if d.Subject != subject || d.End <= from || d.Start >= to {
			continue
		}
		for i, sl := range d.Hours {
			if st := d.Start + int64(i)*hourMS; st >= from && st < to {
				t.Add(sl)
			}
		}
	}
	return t
}

// Report is the document `imon report --json` prints (docs/report.md).
type Report struct {
	Instance  string    `json:"instance"`
	Generated time.Time `json:"generated"`
	Zone      string    `json:"zone"`
	Agent     string    `json:"agent"` // "running" or "stopped"
	From      time.Time `json:"from"`  // start of the window
	To        time.Time `json:"to"`    // end of the window (now)
	// CellUnit is "hour" (windows up to 48 hours) or "day".
	CellUnit  string          `json:"cell_unit"`
	Subjects  []SubjectReport `json:"subjects"`
	Outages   []OutageReport  `json:"outages"`
	Failovers []FailoverRep   `json:"failovers"`
	IPChanges []IPChangeRep   `json:"ip_changes"`
	Latency   *LatencyReport  `json:"latency,omitempty"`
	// HistoryFrom is the time of the oldest event the rollups hold.
	HistoryFrom time.Time `json:"history_from,omitzero"`
}

// SubjectReport is the availability of one subject.
type SubjectReport struct {
	Subject string    `json:"subject"`
	Label   string    `json:"label"`
	Status  string    `json:"status"` // now
	Since   time.Time `json:"since"`  // of the current status (as far as the rollups know)
	// Standby: the active WAN is the standby (SubjectActive).
	Standby bool   `json:"standby,omitempty"`
	Today   Avail  `json:"today"`
	Days7   Avail  `json:"days7"`
	Days30  Avail  `json:"days30"`
	Window  Avail  `json:"window"`
	Cells   []Cell `json:"cells"`
}

// Avail are the figures of a period: seconds of each status and the
// availability in percent, up/(up+down) (null without up or down time).
type Avail struct {
	Percent  *float64 `json:"percent"`
	UpS      float64  `json:"up_s"`
	DownS    float64  `json:"down_s"`
	UnknownS float64  `json:"unknown_s"`
	StandbyS float64  `json:"standby_s,omitempty"`
}

// Cell is one hour or day of the uptime bar.
type Cell struct {
	Start time.Time `json:"start"`
	Avail
}

// OutageReport is an outage of a subject overlapping the window.
type OutageReport struct {
	Subject   string     `json:"subject"`
	Start     time.Time  `json:"start"`
	End       *time.Time `json:"end"` // null while it lasts
	DurationS float64    `json:"duration_s"`
	Reason    string     `json:"reason,omitempty"`
	Addping   []Addping  `json:"addping,omitempty"`
}

// FailoverRep is a switch of the active WAN in the window.
type FailoverRep struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason,omitempty"`
	// StandbyS is how long the standby stayed active after a switch to
	// it (up to now while it still is).
	StandbyS float64 `json:"standby_s,omitempty"`
	Ongoing  bool    `json:"ongoing,omitempty"`
}

// IPChangeRep is a change of the external address in the window.
type IPChangeRep struct {
	At  time.Time `json:"at"`
	New string    `json:"new"`
	Old string    `json:"old"`
	V6  bool      `json:"v6,omitempty"`
}

// LatencyReport summarises the ping rounds of the window.
type LatencyReport struct {
	Target   string  `json:"target"`
	Rounds   int     `json:"rounds"`
	LossPct  float64 `json:"loss_pct"`
	MeanMs   float64 `json:"mean_ms"`
	P50Ms    float64 `json:"p50_ms"`
	P95Ms    float64 `json:"p95_ms"`
	JitterMs float64 `json:"jitter_ms"`
	MaxMs    float64 `json:"max_ms"`
	// Series has one point per cell (hour or day) with rounds.
	Series []LatencyPoint `json:"series"`
}

// LatencyPoint is one cell of the latency chart.
type LatencyPoint struct {
	Start    time.Time `json:"start"`
	Rounds   int       `json:"rounds"`
	LossPct  float64   `json:"loss_pct"`
	MeanMs   float64   `json:"mean_ms"`
	JitterMs float64   `json:"jitter_ms"`
	MaxMs    float64   `json:"max_ms"`
}

// ReportOptions select what a report covers.
type ReportOptions struct {
	Instance string
	From     time.Time // start of the window
	// Subjects limits the report (nil = all with data).
	Subjects []string
}

// AvailSubjects are the subjects with an availability, in report order.
var AvailSubjects = []string{SubjectInternet, SubjectActive, SubjectPrimary, SubjectStandby}

// SubjectsOfMonitor maps `imon report --monitor` to subjects.
func SubjectsOfMonitor(m string) ([]string, error) {
	switch m {
	case "updown":
		return []string{SubjectInternet}, nil
	case "failover":
		return []string{SubjectActive, SubjectPrimary, SubjectStandby}, nil
	case "ping":
		return []string{SubjectPing}, nil
	case "ddns":
		return []string{SubjectIP}, nil
	}
	return nil, fmt.Errorf("--monitor %q: want updown, failover, ping or ddns", m)
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func availOf(s Slot) Avail {
	a := Avail{UpS: round(float64(s.Up)/1000, 3), DownS: round(float64(s.Down)/1000, 3),
		UnknownS: round(float64(s.Unknown)/1000, 3), StandbyS: round(float64(s.Standby)/1000, 3)}
	if v := s.Availability(); v >= 0 {
		pct := round(v*100, 3)
		a.Percent = &pct
	}
	return a
}

func ms2t(ms int64, loc *time.Location) time.Time { return time.UnixMilli(ms).In(loc) }

// BuildReport makes the report of a finalized snapshot.
func BuildReport(s *Snapshot, loc *time.Location, opt ReportOptions) *Report {
	now := ms2t(s.Now, loc)
	from := opt.From.In(loc)
	r := &Report{Instance: opt.Instance, Generated: now, Zone: s.Zone, Agent: "stopped",
		From: from, To: now, CellUnit: "day",
		Subjects: []SubjectReport{}, Outages: []OutageReport{}, Failovers: []FailoverRep{}, IPChanges: []IPChangeRep{}}
	if s.Alive {
		r.Agent = "running"
	}
	if s.State.FirstMS > 0 {
		r.HistoryFrom = ms2t(s.State.FirstMS, loc)
	}
	want := map[string]bool{}
	for _, n := range opt.Subjects {
		want[n] = true
	}
	all := len(want) == 0
	present := map[string]bool{}
	for _, d := range s.Days {
		present[d.Subject] = true
	}
	for n := range s.State.Subjects {
		present[n] = true
	}
	fromMS, nowMS := from.UnixMilli(), now.UnixMilli()
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, loc)
	// cells: hours for short windows (aligned to the hour), else days.
	var cells []time.Time
	if now.Sub(from) <= 48*time.Hour {
		r.CellUnit = "hour"
		c := from.Truncate(time.Hour)
		for ; c.Before(now); c = c.Add(time.Hour) {
			cells = append(cells, c)
		}
	} else {
		fy, fm, fd := from.Date()
		for c := time.Date(fy, fm, fd, 0, 0, 0, 0, loc); c.Before(now); c = time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, loc) {
			cells = append(cells, c)
		}
	}
	if len(cells) > 0 {
		fromMS = cells[0].UnixMilli()
	}
	cellEnd := func(i int) int64 {
		if i+1 < len(cells) {
			return cells[i+1].UnixMilli()
		}
		return nowMS + 1
	}
	for _, n := range AvailSubjects {
		if !present[n] || !(all || want[n]) {
			continue
		}
		sr := SubjectReport{Subject: n, Label: labelOf(s, n), Status: Unknown,
			Today:  availOf(s.Sum(n, midnight.UnixMilli(), nowMS+1)),
			Days7:  availOf(s.Sum(n, midnight.AddDate(0, 0, -6).UnixMilli(), nowMS+1)),
			Days30: availOf(s.Sum(n, midnight.AddDate(0, 0, -29).UnixMilli(), nowMS+1)),
			Window: availOf(s.Sum(n, fromMS, nowMS+1)),
			Cells:  []Cell{},
		}
		if st := s.State.Subjects[n]; st != nil {
			sr.Status, sr.Standby = st.Status, st.Standby
			sr.Since = ms2t(st.Changed, loc)
		}
		for i, c := range cells {
			sr.Cells = append(sr.Cells, Cell{Start: c, Avail: availOf(s.Sum(n, c.UnixMilli(), cellEnd(i)))})
		}
		r.Subjects = append(r.Subjects, sr)
	}
	for _, d := range s.Days {
		if !(all || want[d.Subject]) {
			continue
		}
		for _, o := range d.Outages {
			end := o.End
			if end == 0 {
				end = nowMS
			}
			if end < fromMS {
				continue
			}
			or := OutageReport{Subject: d.Subject, Start: ms2t(o.Start, loc), DurationS: round(float64(end-o.Start)/1000, 3),
				Reason: o.Reason, Addping: o.Addping}
			if o.End != 0 {
				e := ms2t(o.End, loc)
				or.End = &e
			}
			r.Outages = append(r.Outages, or)
		}
		for _, f := range d.Failovers {
			fr := FailoverRep{At: ms2t(f.At, loc), From: orNone(f.From), To: orNone(f.To), Reason: f.Reason,
				StandbyS: round(float64(f.StandbyMS)/1000, 3)}
			if act := s.State.Subjects[SubjectActive]; act != nil && act.Failover != nil && act.Failover.Date == d.Date && act.Failover.At == f.At {
				fr.Ongoing = true
				fr.StandbyS = round(float64(nowMS-f.At)/1000, 3)
			}
			if f.At+int64(fr.StandbyS*1000) < fromMS {
				continue
			}
			r.Failovers = append(r.Failovers, fr)
		}
		for _, c := range d.IPChanges {
			if c.At >= fromMS {
				r.IPChanges = append(r.IPChanges, IPChangeRep{At: ms2t(c.At, loc), New: c.New, Old: c.Old, V6: c.V6})
			}
		}
	}
	sort.SliceStable(r.Outages, func(i, j int) bool { return r.Outages[i].Start.Before(r.Outages[j].Start) })
	if present[SubjectPing] && (all || want[SubjectPing]) {
		r.Latency = latencyOf(s, cells, cellEnd, fromMS, nowMS)
	}
	return r
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func labelOf(s *Snapshot, n string) string {
	if l := s.State.Labels[n]; l != "" {
		return l
	}
	switch n {
	case SubjectInternet:
		return "internet"
	case SubjectActive:
		return "active WAN"
	}
	return n
}

func latencyOf(s *Snapshot, cells []time.Time, cellEnd func(int) int64, fromMS, nowMS int64) *LatencyReport {
	l := &LatencyReport{Target: s.State.Labels[SubjectPing], Series: []LatencyPoint{}}
	tot := s.Sum(SubjectPing, fromMS, nowMS+1)
	l.Rounds = tot.Rounds
	if tot.Rounds > 0 {
		l.LossPct = round(tot.LossSum/float64(tot.Rounds)*100, 2)
	}
	if tot.Alive > 0 {
		l.MeanMs = round(tot.RTTSum/float64(tot.Alive), 3)
		l.JitterMs = round(tot.JitSum/float64(tot.Alive), 3)
	}
	l.MaxMs = round(tot.RTTMaxMs, 3)
	hist := make([]uint32, HistBuckets)
	for _, d := range s.Days {
		if d.Subject == SubjectPing && d.End > fromMS && d.Start <= nowMS {
			for i, c := range d.Hist {
				hist[i] += c
			}
		}
	}
	l.P50Ms = round(Quantile(hist, 0.5), 3)
	l.P95Ms = round(Quantile(hist, 0.95), 3)
	for i, c := range cells {
		sl := s.Sum(SubjectPing, c.UnixMilli(), cellEnd(i))
		if sl.Rounds == 0 {
			continue
		}
		pt := LatencyPoint{Start: c, Rounds: sl.Rounds, LossPct: round(sl.LossSum/float64(sl.Rounds)*100, 2), MaxMs: round(sl.RTTMaxMs, 3)}
		if sl.Alive > 0 {
			pt.MeanMs = round(sl.RTTSum/float64(sl.Alive), 3)
			pt.JitterMs = round(sl.JitSum/float64(sl.Alive), 3)
		}
		l.Series = append(l.Series, pt)
	}
	return l
}
