package history

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"imon/event"
	"imon/journal"
)

const hourMS = int64(time.Hour / time.Millisecond)

// State is the projector's position and the open periods: everything that
// is not yet in a Day. It is stored with the days, in the same
// transaction, so that the rollups continue exactly after a restart.
type State struct {
	// Seq is the last journal event applied.
	Seq uint64 `json:"seq"`
	// LastMS is the time of the last event applied (Unix ms).
	LastMS int64 `json:"last_ms"`
	// FirstMS is the time of the first event applied.
	FirstMS int64 `json:"first_ms"`
	// Running is true between an agent-start and the next agent-stop (or
	// when the first event applied was not an agent-start).
	Running bool `json:"running"`
	// Subjects are the tracked subjects' open periods.
	Subjects map[string]*Subject `json:"subjects"`
	// Labels describe subjects for people (WAN names and interfaces, the
	// ping target).
	Labels map[string]string `json:"labels,omitempty"`
}

// Subject is the open period of one subject.
type Subject struct {
	Status  string `json:"status"`   // Up, Down or Unknown
	Standby bool   `json:"standby"`  // SubjectActive: on the standby WAN
	Since   int64  `json:"since_ms"` // start of the period not yet in the days
	// Changed is when Status (or Standby) last changed.
	Changed int64 `json:"changed_ms"`
	// Resume is the status the monitor restores at the next agent start
	// (the status before the agent stopped).
	Resume        string `json:"resume,omitempty"`
	ResumeStandby bool   `json:"resume_standby,omitempty"`
	// Outage is the open outage (Down), Failover the open switch to the
	// standby (SubjectActive on the standby).
	Outage   *Ref `json:"outage,omitempty"`
	Failover *Ref `json:"failover,omitempty"`
}

// Ref points at an element of a Day's list: the day's date and the index
// (-1 when the list was full). At is the element's start time.
type Ref struct {
	Date  string `json:"date"`
	Index int    `json:"index"`
	At    int64  `json:"at_ms"`
}

type dayKey struct{ subject, date string }

// Projector folds journal events into daily rollups. It is pure (no I/O, no
// clock): events in, days out. Days it does not hold are asked from Load
// (the store) before they are changed; Dirty lists the changed ones.
type Projector struct {
	loc   *time.Location
	st    State
	days  map[dayKey]*Day
	dirty map[dayKey]bool
	// Load returns a stored day or nil (then a new one is made).
	Load func(subject, date string) *Day

	// cache of the local day last looked up
	cDate        string
	cStart, cEnd int64
	pingDay      *Day // the ping day last changed (dirty while set)
}

// NewProjector returns a projector for days of loc continuing from st (the
// zero State for a fresh start).
func NewProjector(loc *time.Location, st State) *Projector {
	if st.Subjects == nil {
		st.Subjects = map[string]*Subject{}
	}
	if st.Labels == nil {
		st.Labels = map[string]string{}
	}
	return &Projector{loc: loc, st: st, days: map[dayKey]*Day{}, dirty: map[dayKey]bool{}}
}

// State returns the projector's state (shared: do not modify).
func (p *Projector) State() *State { return &p.st }

// Seq is the last event applied.
func (p *Projector) Seq() uint64 { return p.st.Seq }

// Dirty returns the days changed since the last ClearDirty.
func (p *Projector) Dirty() []*Day {
	out := make([]*Day, 0, len(p.dirty))
	for k := range p.dirty {
		out = append(out, p.days[k])
	}
	return out
}

// DirtyCount is the number of changed days.
func (p *Projector) DirtyCount() int { return len(p.dirty) }

// ClearDirty forgets the changed set and drops the days that started
// before keepFrom (Unix ms) from memory: they are in the store.
func (p *Projector) ClearDirty(keepFrom int64) {
	clear(p.dirty)
	p.pingDay = nil
	for k, d := range p.days {
		if d.End <= keepFrom {
			delete(p.days, k)
		}
	}
}

// Days returns the days held in memory.
func (p *Projector) Days() []*Day {
	out := make([]*Day, 0, len(p.days))
	for _, d := range p.days {
		out = append(out, d)
	}
	return out
}

// Put gives the projector a day (from the store) to hold.
func (p *Projector) Put(d *Day) { p.days[dayKey{d.Subject, d.Date}] = d }

func (p *Projector) localDay(ms int64) (string, int64, int64) {
	if ms >= p.cStart && ms < p.cEnd {
		return p.cDate, p.cStart, p.cEnd
	}
	p.cDate, p.cStart, p.cEnd = dayOf(ms, p.loc)
	return p.cDate, p.cStart, p.cEnd
}

// day returns the day of subject containing ms, marked dirty.
func (p *Projector) day(subject string, ms int64) *Day {
	date, start, end := p.localDay(ms)
	k := dayKey{subject, date}
	d := p.days[k]
	if d == nil {
		if p.Load != nil {
			d = p.Load(subject, date)
		}
		if d == nil {
			n := int((end - start + hourMS - 1) / hourMS)
			d = &Day{Date: date, Subject: subject, Start: start, End: end, Hours: make([]Slot, n)}
			if subject == SubjectPing {
				d.Hist = make([]uint32, HistBuckets)
			}
		}
		p.days[k] = d
	}
	p.dirty[k] = true
	return d
}

// dayAt returns the day with the given date (loaded or made).
func (p *Projector) dayAt(subject, date string) *Day {
	k := dayKey{subject, date}
	if d := p.days[k]; d != nil {
		p.dirty[k] = true
		return d
	}
	t, err := time.ParseInLocation("2006-01-02", date, p.loc)
	if err != nil {
		return nil
	}
	return p.day(subject, t.UnixMilli())
}

// account adds the subject's current status from its Since to `to`.
func (p *Projector) account(name string, s *Subject, to int64) {
	from := s.Since
	for from < to {
		d := p.day(name, from)
		i := int((from - d.Start) / hourMS)
		end := min(to, d.Start+int64(i+1)*hourMS, d.End)
		sl := &d.Hours[i]
		n := end - from
		switch s.Status {
		case Up:
			sl.Up += n
			if s.Standby {
				sl.Standby += n
			}
		case Down:
			sl.Down += n
		default:
			sl.Unknown += n
		}
		from = end
	}
	if to > s.Since {
		s.Since = to
	}
}

// subject returns the named subject, created unknown at t.
func (p *Projector) subject(name string, t int64) *Subject {
	s := p.st.Subjects[name]
	if s == nil {
		s = &Subject{Status: Unknown, Since: t, Changed: t}
		p.st.Subjects[name] = s
	}
	return s
}

// set moves subject name to status (and standby) at time at (clamped to
// the period not yet accounted).
func (p *Projector) set(name string, status string, standby bool, at int64) *Subject {
	s := p.subject(name, at)
	if s.Status == status && s.Standby == standby {
		return s
	}
	at = max(at, s.Since)
	p.account(name, s, at)
	if s.Status == Down && s.Outage != nil {
		p.endOutage(name, s, at)
	}
	if s.Standby && s.Failover != nil && !(status == Up && standby) {
		if d := p.dayAt(name, s.Failover.Date); d != nil && s.Failover.Index >= 0 && s.Failover.Index < len(d.Failovers) {
			d.Failovers[s.Failover.Index].StandbyMS = at - s.Failover.At
		}
		s.Failover = nil
	}
	s.Status, s.Standby, s.Changed = status, standby, at
	return s
}

func (p *Projector) startOutage(name string, s *Subject, at int64, o Outage) {
	d := p.day(name, at)
	d.OutageCount++
	ref := &Ref{Date: d.Date, Index: -1, At: at}
	if len(d.Outages) < MaxOutagesPerDay {
		o.Start = at
		ref.Index = len(d.Outages)
		d.Outages = append(d.Outages, o)
	}
	s.Outage = ref
}

func (p *Projector) endOutage(name string, s *Subject, at int64) {
	r := s.Outage
	s.Outage = nil
	if r.Index < 0 {
		return
	}
	if d := p.dayAt(name, r.Date); d != nil && r.Index < len(d.Outages) {
		d.Outages[r.Index].End = at
	}
}

// subjectsOf lists the subjects a monitor feeds.
func subjectsOf(monitor string) []string {
	switch monitor {
	case event.MonitorUpdown:
		return []string{SubjectInternet}
	case event.MonitorFailover:
		return []string{SubjectPrimary, SubjectStandby, SubjectActive}
	}
	return nil
}

// Apply folds one event in. Events must come in journal order; an event at
// or before Seq is ignored (a replay after a restart).
func (p *Projector) Apply(ev *event.Event) {
	t, first, ok := p.begin(ev.Seq, ev.Time.UnixMilli())
	if !ok {
		return
	}
	switch ev.Kind {
	case event.KindAgentStart:
		p.agentStart(ev, t, first)
	case event.KindAgentStop:
		p.agentStop(t)
	case event.KindPingResult:
		if len(ev.Args) > 0 {
			p.ping(ev.Args[0], t)
		}
	case event.KindDDNSIPUpdate, event.KindDDNSIP6Update:
		p.ipChange(ev, t)
	}
	if !p.st.Running && ev.Kind != event.KindAgentStop && ev.Kind != event.KindAgentStart {
		// The journal begins (after retention) with the agent running.
		p.st.Running = true
	}
	if len(ev.State) > 0 {
		switch ev.Monitor {
		case event.MonitorUpdown:
			p.updown(ev, t)
		case event.MonitorFailover:
			p.failover(ev, t)
		}
	}
	p.st.Seq = ev.Seq
	p.st.LastMS = t
}

// begin starts applying the event seq at ms: its time (never before the
// last event's), whether it is the first event applied, and false when it
// was applied already.
func (p *Projector) begin(seq uint64, ms int64) (t int64, first, ok bool) {
	if seq != 0 && seq <= p.st.Seq {
		return 0, false, false
	}
	t = max(ms, p.st.LastMS)
	first = p.st.FirstMS == 0
	if first {
		p.st.FirstMS = t
	}
	return t, first, true
}

// ApplyRecord is Apply for a record the journal lends ([journal.Journal.Scan]),
// with the same result: the few kinds whose JSON the rollups read are
// decoded into an event, a ping-result is folded in from its action
// argument without a copy, and the other records only move the position.
// It keeps nothing of r. The error is a record that does not decode.
func (p *Projector) ApplyRecord(r *journal.Record) error {
	if recordNeedsEvent(r) {
		ev, err := r.Event()
		if err != nil {
			return err
		}
		p.Apply(&ev)
		return nil
	}
	t, _, ok := p.begin(r.Seq, r.TimeMS)
	if !ok {
		return nil
	}
	if string(r.Kind) == event.KindPingResult {
		if a := r.Arg(0); len(a) > 0 {
			p.ping(unsafe.String(&a[0], len(a)), t)
		}
	}
	// Not an agent-start or agent-stop (see recordNeedsEvent).
	p.st.Running = true
	p.st.Seq = r.Seq
	p.st.LastMS = t
	return nil
}

// recordNeedsEvent reports whether Apply reads more of the record than its
// kind and action arguments: its Data, State or the IP change's arguments.
func recordNeedsEvent(r *journal.Record) bool {
	switch string(r.Kind) {
	case event.KindAgentStart, event.KindAgentStop, event.KindDDNSIPUpdate, event.KindDDNSIP6Update:
		return true
	}
	if len(r.State) == 0 {
		return false
	}
	m := string(r.Monitor)
	return m == event.MonitorUpdown || m == event.MonitorFailover
}

func (p *Projector) agentStart(ev *event.Event, t int64, first bool) {
	if p.st.Running && !first {
		// No agent-stop before this start: the agent died. What happened
		// since its last event is unknown.
		for name, s := range p.st.Subjects {
			p.account(name, s, p.st.LastMS)
			resume, standby := s.Status, s.Standby
			p.stopSubject(name, s, p.st.LastMS)
			s.Resume, s.ResumeStandby = resume, standby
		}
	}
	var data struct {
		Monitors []string `json:"monitors"`
	}
	_ = json.Unmarshal(ev.Data, &data)
	enabled := map[string]bool{}
	for _, m := range data.Monitors {
		for _, n := range subjectsOf(m) {
			enabled[n] = true
		}
	}
	for name, s := range p.st.Subjects {
		p.account(name, s, t)
		if data.Monitors != nil && !enabled[name] {
			s.Resume, s.ResumeStandby = "", false
			continue
		}
		if s.Resume != "" {
			p.set(name, s.Resume, s.ResumeStandby, t)
		}
		s.Resume, s.ResumeStandby = "", false
	}
	for name := range enabled {
		p.subject(name, t)
	}
	p.st.Running = true
}

// stopSubject makes s unknown at t without closing its outage or standby
// period: the monitor restores them at the next start.
func (p *Projector) stopSubject(name string, s *Subject, t int64) {
	p.account(name, s, t)
	if s.Status != Unknown || s.Standby {
		s.Changed = t
	}
	s.Status, s.Standby = Unknown, false
}

func (p *Projector) agentStop(t int64) {
	for name, s := range p.st.Subjects {
		if s.Status == Unknown && s.Resume != "" {
			p.account(name, s, t)
			continue
		}
		s.Resume, s.ResumeStandby = s.Status, s.Standby
		p.stopSubject(name, s, t)
	}
	p.st.Running = false
}

func (p *Projector) updown(ev *event.Event, t int64) {
	var st struct {
		Status string    `json:"status"`
		Since  time.Time `json:"since"`
		Target string    `json:"target"`
	}
	if json.Unmarshal(ev.State, &st) != nil {
		return
	}
	if st.Target != "" {
		p.st.Labels[SubjectInternet] = "internet (" + st.Target + ")"
	}
	status := normStatus(st.Status)
	s := p.subject(SubjectInternet, t)
	if s.Status == status {
		return
	}
	at := t
	if status == Down && !st.Since.IsZero() {
		at = min(max(st.Since.UnixMilli(), s.Since), t)
	}
	s = p.set(SubjectInternet, status, false, at)
	if status == Down {
		var data struct {
			Addping []Addping `json:"addping"`
		}
		_ = json.Unmarshal(ev.Data, &data)
		p.startOutage(SubjectInternet, s, s.Since, Outage{Addping: data.Addping})
	}
}

func normStatus(s string) string {
	switch s {
	case Up, Down:
		return s
	}
	return Unknown
}

func (p *Projector) failover(ev *event.Event, t int64) {
	var snap struct {
		Active   string `json:"active"`
		BothDown bool   `json:"both_down"`
		WANs     []struct {
			Role   string `json:"role"`
			Name   string `json:"name"`
			Ifname string `json:"ifname"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"wans"`
	}
	if json.Unmarshal(ev.State, &snap) != nil {
		return
	}
	for _, w := range snap.WANs {
		name := "wan:" + w.Role
		if name != SubjectPrimary && name != SubjectStandby {
			continue
		}
		label := w.Role
		if w.Name != "" {
			label += " " + w.Name
		}
		if w.Ifname != "" {
			label += " (" + w.Ifname + ")"
		}
		p.st.Labels[name] = label
		status := normStatus(w.Status)
		s := p.subject(name, t)
		if s.Status != status {
			s = p.set(name, status, false, t)
			if status == Down {
				p.startOutage(name, s, t, Outage{Reason: w.Reason})
			}
		}
	}
	status, standby := Unknown, false
	switch {
	case snap.Active == "primary":
		status = Up
	case snap.Active == "standby":
		status, standby = Up, true
	case snap.BothDown:
		status = Down
	}
	s := p.set(SubjectActive, status, standby, t)
	if status == Down && s.Outage == nil {
		p.startOutage(SubjectActive, s, t, Outage{Reason: "both WANs down"})
	}
	if ev.Kind == event.KindFailoverPrimary || ev.Kind == event.KindFailoverStandby {
		var data struct {
			From   string `json:"from"`
			To     string `json:"to"`
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(ev.Data, &data)
		d := p.day(SubjectActive, t)
		d.FailoverCount++
		idx := -1
		if len(d.Failovers) < MaxFailoversPerDay {
			idx = len(d.Failovers)
			d.Failovers = append(d.Failovers, Failover{At: t, From: data.From, To: data.To, Reason: data.Reason})
		}
		if standby && data.To == "standby" {
			s.Failover = &Ref{Date: d.Date, Index: idx, At: t}
		}
	}
}

// ping folds in a ping-result from its action argument
// IP:ALIVE:MINRTT:AVGRTT:MAXRTT:LOSS:JITTER (no JSON: this is the busy kind).
// a may be lent (see ApplyRecord): what is kept of it is copied.
func (p *Projector) ping(a string, t int64) {
	var f [6]string
	end := len(a)
	for i, k := 5, len(a)-1; i >= 0; k-- {
		if k < 0 {
			return
		}
		if a[k] == ':' {
			f[i], end = a[k+1:end], k
			i--
		}
	}
	if target := a[:end]; p.st.Labels[SubjectPing] != target {
		p.st.Labels[SubjectPing] = strings.Clone(target)
	}
	alive := f[0] == "True"
	avg, ok1 := parseDecimal(f[2])
	mx, ok2 := parseDecimal(f[3])
	loss, ok3 := parseDecimal(f[4])
	jit, ok4 := parseDecimal(f[5])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return
	}
	d := p.pingDay
	if d == nil || t < d.Start || t >= d.End {
		d = p.day(SubjectPing, t)
		p.pingDay = d
	}
	sl := &d.Hours[int((t-d.Start)/hourMS)]
	sl.Rounds++
	sl.LossSum += loss
	if alive {
		sl.Alive++
		sl.RTTSum += avg
		sl.JitSum += jit
		sl.RTTMaxMs = max(sl.RTTMaxMs, mx)
		d.Hist[HistBucket(avg)]++
	}
}

func (p *Projector) ipChange(ev *event.Event, t int64) {
	if len(ev.Args) < 2 || ev.Args[1] == "" || ev.Args[0] == ev.Args[1] {
		return // the first address seen is no change
	}
	d := p.day(SubjectIP, t)
	d.IPChangeCount++
	if len(d.IPChanges) < MaxIPChangesPerDay {
		d.IPChanges = append(d.IPChanges, IPChange{At: t, New: ev.Args[0], Old: ev.Args[1], V6: ev.Kind == event.KindDDNSIP6Update})
	}
}

// parseDecimal parses the action argument's numbers ("12.345", "0.0",
// "1"): plain decimals without a sign or exponent quickly, anything else
// with strconv.
func parseDecimal(s string) (float64, bool) {
	// digits as one integer and a power of ten: one division, correctly
	// rounded like strconv (at most 15 digits are exact in a float64)
	var n, scale uint64 = 0, 1
	dot := false
	if len(s) == 0 || len(s) > 15 {
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + uint64(c-'0')
			if dot {
				scale *= 10
			}
		case c == '.' && !dot:
			dot = true
		default:
			v, err := strconv.ParseFloat(s, 64)
			return v, err == nil
		}
	}
	return float64(n) / float64(scale), true
}

// Finish accounts every subject's open period up to now, for a view: when
// alive is false (no agent runs) the statuses hold until the last event
// and the rest is unknown. It changes the projector: use it on a copy.
func (p *Projector) Finish(now int64, alive bool) {
	now = max(now, p.st.LastMS)
	for name, s := range p.st.Subjects {
		if !alive && p.st.Running {
			p.stopSubject(name, s, p.st.LastMS)
		}
		p.account(name, s, now)
	}
}
