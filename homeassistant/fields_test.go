package homeassistant_test

import (
	"reflect"
	"strings"
	"testing"

	"imon/agent/monitor/ddns"
	"imon/agent/monitor/failover"
	"imon/agent/monitor/ping"
	"imon/agent/monitor/updown"
	"imon/homeassistant"
)

// jsonFields returns the JSON names of a struct type's fields.
func jsonFields(v any) map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// TestFieldsMatchMonitors: the state fields the discovery templates read
// exist in the monitors' State structs.
func TestFieldsMatchMonitors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		st     any
		fields []string
	}{
		{"updown.State", updown.State{}, []string{homeassistant.UpdownStatus, homeassistant.UpdownSince, homeassistant.UpdownOutages,
			homeassistant.UpdownLastOutageStart, homeassistant.UpdownLastOutageDurationS}},
		{"ping.State", ping.State{}, []string{homeassistant.PingMinMS, homeassistant.PingAvgMS, homeassistant.PingMaxMS,
			homeassistant.PingJitterMS, homeassistant.PingLoss}},
		{"ddns.State", ddns.State{}, []string{homeassistant.DDNSIP, homeassistant.DDNSIP6, homeassistant.DDNSChangedAt, homeassistant.DDNSCGNAT, homeassistant.DDNSPrevious}},
		{"failover.Snapshot", failover.Snapshot{}, []string{homeassistant.FailoverActive, homeassistant.FailoverMode, homeassistant.FailoverWANs, homeassistant.FailoverBothDown}},
		{"failover.WANSnapshot", failover.WANSnapshot{}, []string{homeassistant.FailoverWANRole, homeassistant.FailoverWANStatus}},
		{"homeassistant.AgentState", homeassistant.AgentState{}, []string{homeassistant.AgentVersion, homeassistant.AgentJournalBytes,
			homeassistant.AgentBacklog, homeassistant.AgentLastError}},
	} {
		have := jsonFields(tc.st)
		for _, f := range tc.fields {
			if !have[f] {
				t.Errorf("%s has no JSON field %q that discovery reads", tc.name, f)
			}
		}
	}
}
