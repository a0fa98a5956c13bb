package homeassistant_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"imon/homeassistant"
)

// availabilityCases render the availability sensors' templates (in
// TestTemplatesRender): a figure, and null or a missing field (no data,
// monitor not enabled) as None, which Home Assistant shows as unknown.
var availabilityCases = func() []struct{ entity, payload, want string } {
	full := `{"internet_24h":99.95,"internet_7d":99.9,"internet_30d":100,"internet_downtime_today_s":43,` +
		`"primary_24h":null,"primary_7d":98.5,"primary_30d":99.25,"primary_downtime_today_s":0,` +
		`"standby_24h":100,"standby_7d":100,"standby_30d":100,"standby_downtime_today_s":0}`
	var out []struct{ entity, payload, want string }
	var vals map[string]any
	_ = json.Unmarshal([]byte(full), &vals)
	for _, s := range homeassistant.AvailabilitySubjects {
		for _, w := range homeassistant.AvailabilityWindows {
			want := "None"
			if v := vals[s.Key+"_"+w]; v != nil {
				b, _ := json.Marshal(v)
				want = string(b)
				if !strings.Contains(want, ".") {
					want = strings.TrimSuffix(want, ".0")
				}
			}
			e := s.Monitor + "_availability_" + s.Key + "_" + w
			out = append(out, struct{ entity, payload, want string }{e, full, want},
				struct{ entity, payload, want string }{e, `{}`, "None"})
		}
		b, _ := json.Marshal(vals[s.Key+homeassistant.AvailabilityDowntimeSuffix])
		e := s.Monitor + "_downtime_today_" + s.Key
		out = append(out, struct{ entity, payload, want string }{e, full, string(b)},
			struct{ entity, payload, want string }{e, `{}`, "None"})
	}
	return out
}()

// TestAvailabilityEntities: the availability sensors read
// BASE/availability/state, are measurements in % (down time: a duration in
// s), carry no attributes, and go with the monitor that feeds them.
func TestAvailabilityEntities(t *testing.T) {
	c := homeassistant.Config{DiscoveryPrefix: "homeassistant", TopicPrefix: "imon", NodeID: "n", Monitors: []string{"updown"}}
	var seen int
	for _, e := range homeassistant.Entities(c) {
		if !strings.Contains(e.Key, "availability_") && !strings.Contains(e.Key, "downtime_today_") {
			continue
		}
		seen++
		p := e.Payload
		if p.StateTopic != "imon/n/availability/state" {
			t.Errorf("%s: state topic %s", e.ObjectID(), p.StateTopic)
		}
		if p.StateClass != "measurement" {
			t.Errorf("%s: state class %q", e.ObjectID(), p.StateClass)
		}
		wantUnit := "%"
		if strings.Contains(e.Key, "downtime") {
			wantUnit = "s"
			if p.DeviceClass != "duration" {
				t.Errorf("%s: device class %q", e.ObjectID(), p.DeviceClass)
			}
		}
		if p.UnitOfMeasurement != wantUnit {
			t.Errorf("%s: unit %q, want %q", e.ObjectID(), p.UnitOfMeasurement, wantUnit)
		}
		b, _ := json.Marshal(p)
		if strings.Contains(string(b), "json_attributes") {
			t.Errorf("%s has attributes", e.ObjectID())
		}
		if got, want := c.Published(e), e.Monitor == "updown"; got != want {
			t.Errorf("%s: published %v with only updown enabled", e.ObjectID(), got)
		}
	}
	if want := len(homeassistant.AvailabilitySubjects) * (len(homeassistant.AvailabilityWindows) + 1); seen != want {
		t.Errorf("%d availability entities, want %d", seen, want)
	}
	if !slices.Contains(homeassistant.AvailabilityWindows, "30d") {
		t.Error("no 30-day window")
	}
}
