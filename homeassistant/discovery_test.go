package homeassistant_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"imon/homeassistant"
	"imon/internal/nettest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// GoldenConfig is the instance the golden files describe; the outbox tests
// use it too.
var goldenConfig = homeassistant.Config{
	DiscoveryPrefix: "homeassistant",
	TopicPrefix:     "imon",
	NodeID:          "pi-main",
	Instance:        "main",
	Version:         "1.2.3",
	Monitors:        []string{"updown", "ping", "ddns", "failover"},
	Commands:        true,
	WANNames:        [2]string{"Fibre", "LTE"},
	CGNATChecked:    true,
	IPv6:            true,
}

// goldenName is the file of an entity's discovery config.
func goldenName(e homeassistant.Entity) string {
	return filepath.Join("testdata", e.Component+"."+e.ObjectID()+".json")
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestGolden compares every discovery config with testdata/*.json
// (go test -update rewrites them).
func TestGolden(t *testing.T) {
	msgs := homeassistant.Discovery(goldenConfig)
	ents := homeassistant.Entities(goldenConfig)
	if len(msgs) != len(ents) {
		t.Fatalf("%d messages for %d entities", len(msgs), len(ents))
	}
	want := map[string]bool{}
	for i, e := range ents {
		m := msgs[i]
		if m.Topic != goldenConfig.Topic(e) {
			t.Fatalf("message %d topic %s, want %s", i, m.Topic, goldenConfig.Topic(e))
		}
		name := goldenName(e)
		want[filepath.Base(name)] = true
		got := indent(t, m.Payload)
		if *update {
			if err := os.WriteFile(name, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		exp, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, exp) {
			t.Errorf("%s differs from %s:\n%s", e.ObjectID(), name, got)
		}
	}
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("stale golden file %s", f)
		}
	}
}

// TestIDsAndTopics: discovery topics match Home Assistant's TOPIC_MATCHER,
// unique ids are unique within an instance and between two instances on
// one broker, default_entity_id is valid and matches the component.
func TestIDsAndTopics(t *testing.T) {
	topicRE := regexp.MustCompile(`^homeassistant/(sensor|binary_sensor|select)/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$`)
	entityRE := regexp.MustCompile(`^(sensor|binary_sensor|select)\.[a-z0-9_]+$`)
	other := goldenConfig
	other.NodeID = "pi-backup"
	seen := map[string]string{}
	topics := map[string]bool{}
	for _, c := range []homeassistant.Config{goldenConfig, other} {
		for _, e := range homeassistant.Entities(c) {
			tp := c.Topic(e)
			if !topicRE.MatchString(tp) {
				t.Errorf("topic %q is not a valid discovery topic", tp)
			}
			if topics[tp] {
				t.Errorf("topic %q used twice", tp)
			}
			topics[tp] = true
			uid := e.Payload.UniqueID
			if prev, dup := seen[uid]; dup {
				t.Errorf("unique_id %q of %s already used by %s", uid, tp, prev)
			}
			seen[uid] = tp
			if !strings.HasPrefix(uid, "imon_"+c.NodeID+"_") {
				t.Errorf("unique_id %q not derived from the node id", uid)
			}
			if !entityRE.MatchString(e.Payload.DefaultEntityID) || !strings.HasPrefix(e.Payload.DefaultEntityID, e.Component+".") {
				t.Errorf("default_entity_id %q invalid for %s", e.Payload.DefaultEntityID, e.Component)
			}
		}
	}
	// Stable: the same config gives the same ids on every run.
	a, b := homeassistant.Discovery(goldenConfig), homeassistant.Discovery(goldenConfig)
	for i := range a {
		if a[i].Topic != b[i].Topic || !bytes.Equal(a[i].Payload, b[i].Payload) {
			t.Fatalf("discovery is not deterministic at %s", a[i].Topic)
		}
	}
}

func TestNodeIDSanitizedInTopics(t *testing.T) {
	c := goldenConfig
	c.NodeID = "pi.home main"
	for _, e := range homeassistant.Entities(c) {
		if tp := c.Topic(e); strings.Contains(tp, ".") || strings.Contains(tp, " ") {
			t.Fatalf("topic %q keeps characters Home Assistant rejects", tp)
		}
		if id := e.Payload.DefaultEntityID; strings.ContainsAny(id[strings.Index(id, ".")+1:], ". -") {
			t.Fatalf("default_entity_id %q", id)
		}
	}
}

// TestDisabledMonitorsRemoved: entities of monitors that are not enabled
// get an empty (removing) payload; the agent's stay; without commands the
// failover select is removed.
func TestDisabledMonitorsRemoved(t *testing.T) {
	c := goldenConfig
	c.Monitors = []string{"updown", "failover"}
	c.Commands = false
	ents := homeassistant.Entities(c)
	for i, m := range homeassistant.Discovery(c) {
		e := ents[i]
		wantPublished := e.Monitor == "updown" || e.Monitor == "agent" || (e.Monitor == "failover" && e.Component != "select")
		if got := len(m.Payload) > 0; got != wantPublished {
			t.Errorf("%s (%s): published=%v, want %v", e.ObjectID(), m.Topic, got, wantPublished)
		}
	}
}

// Tables from Home Assistant's sensor/const.py and binary_sensor (facts
// file §10-11), for the device classes imon could use.
var (
	deviceClassUnits = map[string][]string{
		"duration":  {"d", "h", "min", "s", "ms", "μs"},
		"data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"},
		"data_rate": {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s", "kB/s", "MB/s", "GB/s", "KiB/s", "MiB/s", "GiB/s"},
		"timestamp": nil,
		"enum":      nil,
		"date":      nil,
	}
	deviceClassStateClasses = map[string][]string{
		"duration":  {"measurement", "total", "total_increasing"},
		"data_size": {"measurement", "total", "total_increasing"},
		"data_rate": {"measurement"},
		"timestamp": nil,
		"enum":      nil,
		"date":      nil,
	}
	binaryClasses = strings.Fields(`battery battery_charging carbon_monoxide cold connectivity door garage_door gas
		heat light lock moisture motion moving occupancy opening plug power presence problem running safety smoke
		sound tamper update vibration window`)
	stateClasses = []string{"measurement", "measurement_angle", "total", "total_increasing"}
	deviceKeys   = []string{"identifiers", "connections", "name", "manufacturer", "model", "model_id", "hw_version",
		"sw_version", "serial_number", "suggested_area", "configuration_url", "via_device"}
	originKeys = []string{"name", "sw_version", "support_url"}
	// Keys each component's schema knows (others are dropped silently by
	// Home Assistant: a typo would be lost).
	commonKeys = []string{"name", "unique_id", "default_entity_id", "state_topic", "value_template", "device_class",
		"entity_category", "enabled_by_default", "icon", "availability_topic", "device", "origin", "qos",
		"json_attributes_topic", "json_attributes_template", "expire_after", "force_update"}
	componentKeys = map[string][]string{
		"sensor":        {"unit_of_measurement", "state_class", "suggested_display_precision", "options"},
		"binary_sensor": {"payload_on", "payload_off", "off_delay"},
		"select":        {"command_topic", "command_template", "options", "retain", "optimistic"},
	}
)

// TestValidPerFacts checks every published payload, as sent, against the
// rules of the facts file (../shared/ha-discovery-facts.md).
func TestValidPerFacts(t *testing.T) {
	for _, m := range homeassistant.Discovery(goldenConfig) {
		var p map[string]any
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		component := strings.Split(m.Topic, "/")[1]
		problem := func(format string, args ...any) {
			t.Helper()
			t.Errorf(m.Topic+": "+format, args...)
		}
		for k := range p {
			if !slices.Contains(commonKeys, k) && !slices.Contains(componentKeys[component], k) {
				problem("key %q not in the %s schema", k, component)
			}
		}
		if _, ok := p["object_id"]; ok {
			problem("deprecated object_id")
		}
		dev, _ := p["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) == 0 {
			problem("device without identifiers")
		}
		for k := range dev {
			if !slices.Contains(deviceKeys, k) {
				problem("device key %q not allowed", k)
			}
		}
		if dev["name"] == nil || dev["manufacturer"] == nil || dev["model"] == nil || dev["sw_version"] == nil {
			problem("device block incomplete: %v", dev)
		}
		org, _ := p["origin"].(map[string]any)
		if org["name"] == nil || org["sw_version"] == nil || org["support_url"] == nil {
			problem("origin block incomplete: %v", org)
		}
		for k := range org {
			if !slices.Contains(originKeys, k) {
				problem("origin key %q not allowed", k)
			}
		}
		name, _ := p["name"].(string)
		if name == "" || strings.HasPrefix(strings.ToLower(name), strings.ToLower(dev["name"].(string))) {
			problem("entity name %q empty or repeating the device name", name)
		}
		if uid, _ := p["unique_id"].(string); uid == "" {
			problem("no unique_id")
		}
		dc, _ := p["device_class"].(string)
		unit, hasUnit := p["unit_of_measurement"].(string)
		sc, hasSC := p["state_class"].(string)
		cat, _ := p["entity_category"].(string)
		if cat != "" && cat != "diagnostic" && cat != "config" {
			problem("entity_category %q", cat)
		}
		if cat == "config" && component != "select" {
			problem("entity_category config on a %s is refused", component)
		}
		if hasSC && !slices.Contains(stateClasses, sc) {
			problem("state_class %q", sc)
		}
		if _, ok := p["suggested_display_precision"]; ok && (component != "sensor" || dc == "timestamp" || dc == "enum") {
			problem("suggested_display_precision on a non-numeric entity")
		}
		switch component {
		case "sensor":
			if p["state_topic"] == nil {
				problem("sensor without state_topic")
			}
			if dc != "" {
				units, known := deviceClassUnits[dc]
				if !known {
					problem("device class %q not in the test's table", dc)
				}
				if hasUnit && !slices.Contains(units, unit) {
					problem("unit %q invalid for device class %s", unit, dc)
				}
				if !hasUnit && len(units) > 0 {
					problem("device class %s without a unit", dc)
				}
				if hasSC && !slices.Contains(deviceClassStateClasses[dc], sc) {
					problem("state class %q impossible for device class %s", sc, dc)
				}
			}
			_, hasOptions := p["options"]
			if dc == "enum" && !hasOptions || hasOptions && dc != "enum" {
				problem("options without device_class enum or the reverse")
			}
		case "binary_sensor":
			if p["state_topic"] == nil {
				problem("binary_sensor without state_topic")
			}
			if dc != "" && !slices.Contains(binaryClasses, dc) {
				problem("binary_sensor device class %q", dc)
			}
		case "select":
			ct, _ := p["command_topic"].(string)
			if ct == "" || strings.ContainsAny(ct, "+#") {
				problem("select command_topic %q", ct)
			}
			if opts, _ := p["options"].([]any); len(opts) == 0 {
				problem("select without options")
			}
		}
		for _, k := range []string{"state_topic", "command_topic", "availability_topic"} {
			if s, ok := p[k].(string); ok && (s == "" || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.HasPrefix(s, "$")) {
				problem("%s %q", k, s)
			}
		}
		if tpl, _ := p["value_template"].(string); strings.Count(tpl, "{{") != strings.Count(tpl, "}}") || strings.Count(tpl, "{%") != strings.Count(tpl, "%}") {
			problem("unbalanced template %q", tpl)
		}
		if at, _ := p["availability_topic"].(string); at == "homeassistant/status" {
			problem("availability bound to Home Assistant's own status")
		}
	}
}

// TestAgentStateJSON: the last error is cut to a length Home Assistant
// accepts, on a rune boundary.
func TestAgentStateJSON(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6e6+123, time.FixedZone("x", 3600))
	size := int64(4096)
	s := homeassistant.AgentState{Version: "1.2.3", Instance: "main", JournalBytes: &size, LastSeq: 42, Backlog: 7,
		LastError: strings.Repeat("é", 300), LastErrorAt: &at}
	var back map[string]any
	if err := json.Unmarshal(s.JSON(), &back); err != nil {
		t.Fatal(err)
	}
	le := back["last_error"].(string)
	if len(le) > homeassistant.MaxErrorLen || !strings.HasSuffix(le, "…") || strings.ContainsRune(le, '\uFFFD') {
		t.Errorf("last_error %d bytes %q", len(le), le)
	}
	if back["last_error_at"] != "2025-01-02T02:04:05.006Z" || back["journal_bytes"] != 4096.0 || back["backlog"] != 7.0 {
		t.Errorf("agent state %v", back)
	}
	empty := homeassistant.AgentState{Version: "v"}.JSON()
	if string(empty) != `{"version":"v","instance":"","last_seq":0,"backlog":0,"problem":false}` {
		t.Errorf("empty agent state %s", empty)
	}
}

// renderCase is a template rendered against a payload, and the text Home
// Assistant would get.
type renderCase struct{ name, template, payload, want string }

// render renders every case with Jinja2's immutable sandbox (what Home
// Assistant uses) and reports the mismatches.
func render(t *testing.T, cases []renderCase) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil || exec.Command("python3", "-c", "import jinja2").Run() != nil {
		nettest.Unavailable(t, "python3 with jinja2 is needed to render the templates")
	}
	var in bytes.Buffer
	for _, c := range cases {
		b, _ := json.Marshal(map[string]string{"template": c.template, "payload": c.payload})
		in.Write(append(b, '\n'))
	}
	cmd := exec.Command("python3", "testdata/render.py")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render.py: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for ; sc.Scan(); n++ {
		var r struct{ Out, Error string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		c := cases[n]
		if r.Error == "" && strings.HasPrefix(c.want, "{") && jsonEqual(r.Out, c.want) {
			continue
		}
		if r.Error != "" || r.Out != c.want {
			t.Errorf("%s with %s: got %q (error %q), want %q", c.name, c.payload, r.Out, r.Error, c.want)
		}
	}
	if n != len(cases) {
		t.Fatalf("%d results for %d cases", n, len(cases))
	}
}

// entityByID returns the entity of c with object id id.
func entityByID(t *testing.T, c homeassistant.Config, id string) homeassistant.Entity {
	t.Helper()
	for _, e := range homeassistant.Entities(c) {
		if e.ObjectID() == id {
			return e
		}
	}
	t.Fatalf("no entity %s", id)
	return homeassistant.Entity{}
}

// TestTemplatesRender renders every value template against sample states,
// including partial ones, and checks the state Home Assistant would get.
func TestTemplatesRender(t *testing.T) {
	tpl := map[string]string{}
	for _, e := range homeassistant.Entities(goldenConfig) {
		tpl[e.ObjectID()] = e.Payload.ValueTemplate
	}
	updown := `{"target":"192.0.2.1","status":"up","up":true,"since":"2025-01-02T03:04:05.000Z","outages":3,"last_outage_start":"2025-01-01T00:00:00.000Z","last_outage_duration_s":12.5}`
	updownFirst := `{"target":"192.0.2.1","status":"unknown","up":false,"outages":0}`
	updownDown := `{"status":"down","up":false,"since":"2025-01-02T03:04:05.000Z","outages":4,"last_outage_start":"2025-01-02T03:04:05.000Z"}`
	minute := `{"start":"2025-01-02T03:04:00.000Z","rounds":6,"sent":30,"recv":27,"min_ms":10.1,"avg_ms":12.34,"max_ms":15,"jitter_ms":1.2,"loss":0.1}`
	minuteDead := `{"start":"2025-01-02T03:04:00.000Z","rounds":6,"sent":30,"recv":0,"min_ms":null,"avg_ms":null,"max_ms":null,"jitter_ms":null,"loss":1}`
	ddns := `{"ip":"203.0.113.5","changed_at":"2025-01-02T03:04:05.000Z","previous":"203.0.113.4","agreed":["a","b"],"cgnat":false,"providers":[]}`
	ddnsFirst := `{"ip":"203.0.113.5","changed_at":"2025-01-02T03:04:05.000Z","agreed":["a","b"],"cgnat":false,"providers":[]}`
	ddnsUnknown := `{"ip":"","agreed":null,"cgnat":true,"providers":[]}`
	failover := `{"active":"standby","mode":"primary","bothdown":false,"wans":[{"role":"primary","status":"down","up":false},{"role":"standby","status":"up","up":true}]}`
	failoverStart := `{"active":"","mode":"auto","bothdown":false,"wans":[{"role":"primary","status":"unknown"}]}`
	failoverChoosing := `{"active":"","mode":"auto","bothdown":false,"wans":[{"role":"primary","status":"up"},{"role":"standby","status":"unknown"}]}`
	failoverBoth := `{"active":"","mode":"standby","bothdown":true,"wans":[{"role":"primary","status":"down"},{"role":"standby","status":"down"}]}`
	agent := `{"version":"1.2.3","instance":"main","journal_bytes":4096,"last_seq":9,"backlog":2}`

	cases := []struct{ entity, payload, want string }{
		{"updown_internet", updown, "ON"},
		{"updown_internet", updownDown, "OFF"},
		{"updown_internet", updownFirst, "None"},
		{"updown_status_since", updown, "2025-01-02T03:04:05.000Z"},
		{"updown_status_since", updownFirst, "None"},
		{"updown_last_outage_start", updown, "2025-01-01T00:00:00.000Z"},
		{"updown_last_outage_start", updownFirst, "None"},
		{"updown_last_outage_duration", updown, "12.5"},
		{"updown_last_outage_duration", updownDown, "None"},
		{"updown_outages", updown, "3"},
		{"updown_outages", updownFirst, "0"},
		{"ping_latency", minute, "12.34"},
		{"ping_latency", minuteDead, "None"},
		{"ping_latency_min", minute, "10.1"},
		{"ping_latency_min", minuteDead, "None"},
		{"ping_latency_max", minute, "15"},
		{"ping_jitter", minute, "1.2"},
		{"ping_jitter", minuteDead, "None"},
		{"ping_packet_loss", minute, "10.0"},
		{"ping_packet_loss", minuteDead, "100"},
		{"ping_packet_loss", `{}`, "None"},
		{"ddns_external_ip", ddns, "203.0.113.5"},
		{"ddns_external_ip", ddnsUnknown, "None"},
		{"ddns_external_ipv6", ddns, "None"},
		{"ddns_external_ipv6", `{"ip6":"2001:db8::1"}`, "2001:db8::1"},
		{"ddns_external_ip_changed", ddns, "2025-01-02T03:04:05.000Z"},
		// The first address learnt is not a change (issue 13).
		{"ddns_external_ip_changed", ddnsFirst, "None"},
		{"ddns_external_ip_changed", ddnsUnknown, "None"},
		{"ddns_cgnat", ddns, "OFF"},
		{"ddns_cgnat", ddnsUnknown, "ON"},
		{"ddns_cgnat", `{}`, "None"},
		{"failover_active_wan", failover, "LTE"},
		// Starting, or a WAN up but the route not chosen yet: unknown, never
		// "No WAN" (issue 13).
		{"failover_active_wan", failoverStart, "None"},
		{"failover_active_wan", failoverChoosing, "None"},
		{"failover_active_wan", failoverBoth, "No WAN"},
		{"failover_primary_wan", failover, "OFF"},
		{"failover_primary_wan", failoverStart, "None"},
		{"failover_standby_wan", failover, "ON"},
		{"failover_standby_wan", failoverStart, "None"},
		{"failover_mode", failover, "Pin Fibre"},
		{"failover_mode", failoverStart, "Automatic"},
		{"failover_mode", failoverBoth, "Pin LTE"},
		{"agent_version", agent, "1.2.3"},
		{"agent_journal_size", agent, "4096"},
		{"agent_journal_size", `{"version":"x"}`, "None"},
		{"agent_backlog", agent, "2"},
		{"agent_last_error", agent, "none"},
		{"agent_last_error", `{"last_error":"broker refused"}`, "broker refused"},
		{"agent_problem", `{"version":"1.2.3","problem":false}`, "OFF"},
		{"agent_problem", `{"problem":true,"problems":["journal not writable"]}`, "ON"},
	}
	cases = append(cases, availabilityCases...)
	var rc []renderCase
	for _, c := range cases {
		tp, ok := tpl[c.entity]
		if !ok {
			t.Fatalf("no entity %s", c.entity)
		}
		rc = append(rc, renderCase{c.entity, tp, c.payload, c.want})
	}
	render(t, rc)
	// Every entity with a template is covered.
	for name, tp := range tpl {
		if tp != "" && !slices.ContainsFunc(cases, func(c struct{ entity, payload, want string }) bool { return c.entity == name }) {
			t.Errorf("template of %s not rendered by the test", name)
		}
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}
