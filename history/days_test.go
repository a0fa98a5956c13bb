package history

import (
	"encoding/json"
	"testing"
	"time"

	"imon/event"
)

func ev(seq uint64, t time.Time, monitor, kind string, data, state any) event.Event {
	e := event.New(monitor, kind, "", data)
	if state != nil {
		e = e.WithState(state)
	}
	e.Seq, e.Time = seq, t.UTC()
	return e
}

func updownState(status string, since time.Time) map[string]any {
	return map[string]any{"target": "192.0.2.1", "status": status, "since": since.UTC()}
}

// TestLocalDaysAcrossDST: days are local days: the spring day of the
// change has 23 hours, the autumn one 25, and a subject up throughout
// them has exactly that much up time, hour slots in local hours.
func TestLocalDaysAcrossDST(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	for _, c := range []struct {
		date  string
		hours int
	}{{"2026-03-29", 23}, {"2026-10-25", 25}, {"2026-06-01", 24}} {
		day, _ := time.ParseInLocation("2006-01-02", c.date, loc)
		start := day.Add(-2 * time.Hour)
		evs := []event.Event{
			ev(1, start, event.MonitorAgent, event.KindAgentStart, map[string]any{"monitors": []string{"updown"}}, nil),
			ev(2, start, event.MonitorUpdown, "updown-status", nil, updownState(Up, start)),
			ev(3, day.AddDate(0, 0, 1).Add(time.Hour), event.MonitorAgent, event.KindAgentStop, nil, nil),
		}
		p := project(loc, evs)
		var d *Day
		for _, x := range p.Days() {
			if x.Subject == SubjectInternet && x.Date == c.date {
				d = x
			}
		}
		if d == nil {
			t.Fatalf("%s: no day", c.date)
		}
		if len(d.Hours) != c.hours {
			t.Errorf("%s: %d hour slots, want %d", c.date, len(d.Hours), c.hours)
		}
		if tot := d.Total(); tot.Up != int64(c.hours)*hourMS || tot.Down+tot.Unknown != 0 {
			t.Errorf("%s: %+v, want %d hours up", c.date, tot, c.hours)
		}
		if d.End-d.Start != int64(c.hours)*hourMS {
			t.Errorf("%s: the day lasts %d ms", c.date, d.End-d.Start)
		}
	}
}

// TestTimeZoneDecidesTheDay: the same events fall on other days in
// another zone: an outage at 23:30 UTC is on the next day in Tokyo.
func TestTimeZoneDecidesTheDay(t *testing.T) {
	t0 := time.Date(2026, 5, 10, 20, 0, 0, 0, time.UTC)
	down := time.Date(2026, 5, 10, 23, 30, 0, 0, time.UTC)
	evs := []event.Event{
		ev(1, t0, event.MonitorAgent, event.KindAgentStart, map[string]any{"monitors": []string{"updown"}}, nil),
		ev(2, t0, event.MonitorUpdown, "updown-status", nil, updownState(Up, t0)),
		ev(3, down, event.MonitorUpdown, event.KindUpdownOffline, nil, updownState(Down, down)),
		ev(4, down.Add(10*time.Minute), event.MonitorUpdown, event.KindUpdownOnline, nil, updownState(Up, down.Add(10*time.Minute))),
	}
	for zone, date := range map[string]string{"UTC": "2026-05-10", "Asia/Tokyo": "2026-05-11", "America/Los_Angeles": "2026-05-10"} {
		p := project(mustLoc(t, zone), evs)
		for _, d := range p.Days() {
			if d.Subject == SubjectInternet && len(d.Outages) > 0 && d.Date != date {
				t.Errorf("%s: the outage is on %s, want %s", zone, d.Date, date)
			}
		}
	}
}

// TestAgentDownIsUnknown: while the agent is stopped, and after a crash
// from its last event to the next start, the time is unknown, not up; a
// restored status resumes at the start.
func TestAgentDownIsUnknown(t *testing.T) {
	loc := time.UTC
	t0 := time.Date(2026, 5, 10, 0, 0, 0, 0, loc)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	start := map[string]any{"monitors": []string{"updown"}}
	evs := []event.Event{
		ev(1, at(0), event.MonitorAgent, event.KindAgentStart, start, nil),
		ev(2, at(0), event.MonitorUpdown, "updown-status", nil, updownState(Up, at(0))),
		ev(3, at(10), event.MonitorAgent, event.KindAgentStop, nil, nil), // clean stop: 10 min unknown
		ev(4, at(20), event.MonitorAgent, event.KindAgentStart, start, nil),
		ev(5, at(30), event.MonitorPing, event.KindPingResult, nil, nil),    // last sign of life
		ev(6, at(50), event.MonitorAgent, event.KindAgentStart, start, nil), // crash: 20 min unknown
	}
	evs[4].Args = []string{"192.0.2.1:True:1.000:1.000:1.000:0.0:0.100"}
	p := project(loc, evs)
	p.Finish(at(60).UnixMilli(), true)
	var tot Slot
	for _, d := range p.Days() {
		if d.Subject == SubjectInternet {
			tot.Add(d.Total())
		}
	}
	if tot.Unknown != 30*60000 || tot.Up != 30*60000 || tot.Down != 0 {
		t.Errorf("up %d s, unknown %d s, down %d s; want 1800, 1800, 0", tot.Up/1000, tot.Unknown/1000, tot.Down/1000)
	}
	// without an agent running, the rest up to now is unknown too
	q := project(loc, evs)
	q.Finish(at(70).UnixMilli(), false)
	tot = Slot{}
	for _, d := range q.Days() {
		if d.Subject == SubjectInternet {
			tot.Add(d.Total())
		}
	}
	if tot.Unknown != 50*60000 {
		t.Errorf("no agent: unknown %d s, want 3000", tot.Unknown/1000)
	}
}

// TestAvailabilityPayload: the sensors' payload has the percentages of the
// subjects the rollups know, null without data, and today's down time.
func TestAvailabilityPayload(t *testing.T) {
	loc := time.UTC
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, loc)
	t0 := now.Add(-2 * time.Hour)
	down := now.Add(-30 * time.Minute)
	evs := []event.Event{
		ev(1, t0, event.MonitorAgent, event.KindAgentStart, map[string]any{"monitors": []string{"updown"}}, nil),
		ev(2, t0, event.MonitorUpdown, "updown-status", nil, updownState(Up, t0)),
		ev(3, down, event.MonitorUpdown, event.KindUpdownOffline, nil, updownState(Down, down)),
		ev(4, down.Add(6*time.Minute), event.MonitorUpdown, event.KindUpdownOnline, nil, updownState(Up, down)),
	}
	p := project(loc, evs)
	snap, err := snapshotOf(nil, p, 0, now.UnixMilli(), true)
	if err != nil {
		t.Fatal(err)
	}
	snap.Finalize(loc)
	b, err := availabilityPayload(snap, now)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"internet_24h": 95.0, "internet_7d": 95.0, "internet_30d": 95.0, "internet_downtime_today_s": 360.0}
	if len(got) != len(want) {
		t.Fatalf("payload %s, want the internet's figures only", b)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (payload %s)", k, got[k], v, b)
		}
	}
}
