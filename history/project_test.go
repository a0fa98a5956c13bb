package history

import (
	"math"
	"strconv"
	"testing"
	"time"
	_ "time/tzdata"

	"imon/event"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func project(loc *time.Location, evs []event.Event) *Projector {
	p := NewProjector(loc, State{})
	for i := range evs {
		p.Apply(&evs[i])
	}
	return p
}

// TestProjectorMatchesModel: the seconds up/down/unknown (and on standby)
// of a random event stream, per local day and hour, equal those of the
// generator's own timeline, across agent stops, crashes and DST changes.
func TestProjectorMatchesModel(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"} {
		loc := mustLoc(t, zone)
		for seed := uint64(1); seed <= 8; seed++ {
			// spans the spring DST change of the northern zones
			g := newGen(seed, time.Date(2026, 3, 6, 22, 30, 0, 0, loc))
			g.run(3000)
			p := project(loc, g.evs)
			end := p.State().LastMS
			p.Finish(end, true)
			want := g.expected(loc, end)
			got := map[string]map[string][]Slot{}
			for _, d := range p.Days() {
				if d.Subject == SubjectPing || d.Subject == SubjectIP {
					continue
				}
				if got[d.Subject] == nil {
					got[d.Subject] = map[string][]Slot{}
				}
				hs := make([]Slot, len(d.Hours))
				for i, s := range d.Hours {
					hs[i] = Slot{Up: s.Up, Down: s.Down, Unknown: s.Unknown, Standby: s.Standby}
				}
				got[d.Subject][d.Date] = hs
			}
			for subj, days := range want {
				for date, hours := range days {
					gh := got[subj][date]
					if len(gh) != len(hours) {
						t.Fatalf("%s seed %d: %s %s: %d hours, want %d", zone, seed, subj, date, len(gh), len(hours))
					}
					for h := range hours {
						if gh[h] != hours[h] {
							t.Fatalf("%s seed %d: %s %s hour %d: got %+v, want %+v", zone, seed, subj, date, h, gh[h], hours[h])
						}
					}
				}
				if len(got[subj]) != len(days) {
					t.Fatalf("%s seed %d: %s: %d days, want %d", zone, seed, subj, len(got[subj]), len(days))
				}
			}
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, s := range []string{"0", "0.0", "12.345", "1.0", "0.333", "99999.999", "1e3", "-1.5", "1.2.3", "", "abc", "123456789012345678.5"} {
		want, werr := strconv.ParseFloat(s, 64)
		got, ok := parseDecimal(s)
		if ok != (werr == nil) || (ok && math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want))) {
			t.Errorf("parseDecimal(%q) = %v, %v; want %v, %v", s, got, ok, want, werr == nil)
		}
	}
}
