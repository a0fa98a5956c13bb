package homeassistant

import "fmt"

// MonitorAvailability names BASE/availability/state: the availability
// figures computed from the rollups (docs/mqtt.md, docs/report.md).
const MonitorAvailability = "availability"

// AvailabilitySubjects are the keys of the availability state, with the
// monitor that feeds each and the name shown in Home Assistant.
var AvailabilitySubjects = []struct{ Key, Monitor, Name string }{
	{"internet", "updown", "Internet"},
	{"primary", "failover", "Primary WAN"},
	{"standby", "failover", "Standby WAN"},
}

// AvailabilityWindows are the windows of the availability percentages,
// the suffixes of their fields (internet_24h, primary_7d, ...).
var AvailabilityWindows = []string{"24h", "7d", "30d"}

// AvailabilityDowntimeSuffix ends the fields of the down time since local
// midnight (internet_downtime_today_s).
const AvailabilityDowntimeSuffix = "_downtime_today_s"

// availabilityDefs are the availability sensors: per subject, the three
// percentages and the down time today. Their monitor is the one that feeds
// the subject (so they go when it is disabled); their state topic is
// BASE/availability/state. Values change at most once a minute and carry
// no attributes, so that the recorder keeps few rows.
func availabilityDefs() []def {
	var out []def
	for _, s := range AvailabilitySubjects {
		for _, w := range AvailabilityWindows {
			field := s.Key + "_" + w
			out = append(out, def{monitor: s.Monitor, key: "availability_" + field, component: "sensor",
				name: fmt.Sprintf("%s availability %s", s.Name, w), template: tplField(field), reads: []string{field},
				unit: "%", stateClass: "measurement", precision: 2, icon: "mdi:percent-circle-outline",
				stateTopic: MonitorAvailability})
		}
		field := s.Key + AvailabilityDowntimeSuffix
		out = append(out, def{monitor: s.Monitor, key: "downtime_today_" + s.Key, component: "sensor",
			name: s.Name + " downtime today", template: tplField(field), reads: []string{field}, deviceClass: "duration", unit: "s",
			stateClass: "measurement", precision: 0, icon: "mdi:timer-alert-outline", stateTopic: MonitorAvailability})
	}
	return out
}
