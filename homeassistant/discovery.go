// Package homeassistant turns an imon instance's configuration into Home
// Assistant MQTT discovery messages, and its diagnostics into the
// BASE/agent/state payload. It is pure: no I/O, no clock.
//
// # Design
//
// Each instance is one Home Assistant device (identifiers imon_<node-id>).
// Its entities use single-component discovery, one retained config message
// per entity on <discovery-prefix>/<component>/<node-id>/<object-id>/config,
// each carrying the full device and origin blocks: it works with every Home
// Assistant since 2023.9 (origin), and removing the entities of a disabled
// monitor is one empty retained message per entity (device-based discovery,
// HA ≥ 2024.12, would need a two-step component removal instead).
//
// The entities read the monitors' retained state topics
// (BASE/<monitor>/state, the monitor's State JSON as journaled; the ping
// entities BASE/ping/minute, the minute's statistics, so that the recorder
// writes at most a row a minute for them) through value_template and
// json_attributes_template, so the mapping from imon's state to Home
// Assistant lives here, with the field names in fields.go. No entity is
// created disabled: Home Assistant keeps a disabled entity when its config
// is cleared, so it would outlive its monitor. Every entity's availability is
// BASE/status (retained online/offline, offline as MQTT last will), except
// the "Agent" connectivity sensor, which reads BASE/status itself and so
// shows Disconnected, not unavailable, when the agent is gone.
//
// Unique ids are imon_<node-id>_<monitor>_<key>: stable across restarts,
// renames of the entities in Home Assistant and software versions; distinct
// between instances (the node id defaults to <hostname>-<instance>).
package homeassistant

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"imon/agent/command"
	"imon/config"
)

// Device and origin identity.
const (
	Manufacturer = "imon"
	Model        = "Internet connection monitor"
	OriginName   = "imon"
	SupportURL   = "https://github.com/gitbls/imon"
)

// Config is what discovery needs to know about an instance.
type Config struct {
	// DiscoveryPrefix is Home Assistant's discovery prefix ("homeassistant").
	DiscoveryPrefix string
	// TopicPrefix and NodeID make BASE = TopicPrefix/NodeID.
	TopicPrefix string
	NodeID      string
	// Instance is the imon instance name.
	Instance string
	// Version is imon's version (device sw_version, origin sw_version).
	Version string
	// Monitors lists the enabled monitors ("updown", "ping", "ddns",
	// "failover"); the entities of the others are removed.
	Monitors []string
	// Commands is true when BASE/failover/set is accepted (mqtt.commands):
	// only then is the failover mode select published.
	Commands bool

	// From the monitors' sections (WithSections):
	// WANNames are failover primary-name and standby-name: the labels of
	// Active WAN and of the mode select ("Primary"/"Standby" when unset).
	WANNames [2]string
	// CGNATChecked is true when ddns.interface is set: only then is
	// "Behind carrier-grade NAT" known (unknown otherwise, never OK).
	CGNATChecked bool
	// IPv6 is true when a ddns provider reports IPv6: only then is the
	// External IPv6 sensor published.
	IPv6 bool
}

// WithSections returns c completed from the monitors' sections of cfg:
// the WAN names, whether the CGNAT check runs, whether IPv6 is looked up.
func (c Config) WithSections(cfg *config.Config) Config {
	if cfg == nil {
		return c
	}
	c.WANNames = [2]string{cfg.Failover.Primary.Name, cfg.Failover.Standby.Name}
	c.CGNATChecked = cfg.DDNS.Interface != ""
	c.IPv6 = false
	providers := cfg.DDNS.Providers
	if len(providers) == 0 {
		providers = config.DefaultDDNSProviders
	}
	for _, raw := range providers {
		if p, err := config.ParseProvider(raw); err == nil && ipv6Provider(p) {
			c.IPv6 = true
		}
	}
	return c
}

// ipv6Provider is the rule of extip.Spec.Family (which discovery must not
// import: it links the probe engine): an AAAA query reports IPv6, an A
// query IPv4, anything else the family of its server's address literal.
// TestIPv6Published checks that they agree.
func ipv6Provider(p config.Provider) bool {
	if p.Scheme == "dns" && (p.Type == "A" || p.Type == "AAAA") {
		return p.Type == "AAAA"
	}
	a, err := netip.ParseAddr(strings.Trim(p.Server, "[]"))
	return err == nil && a.Is6() && !a.Is4In6()
}

// FromConfig builds a Config from imon's configuration sections.
func FromConfig(m config.MQTT, ha config.HomeAssistant, enabled []string, instance, version string) Config {
	return Config{
		DiscoveryPrefix: ha.DiscoveryPrefix,
		TopicPrefix:     m.TopicPrefix,
		NodeID:          m.NodeID,
		Instance:        instance,
		Version:         version,
		Monitors:        enabled,
		Commands:        m.Commands,
	}
}

// Base is the instance's MQTT base topic, TopicPrefix/NodeID.
func (c Config) Base() string { return c.TopicPrefix + "/" + c.NodeID }

// StatusTopic is BASE/status: retained "online"/"offline".
func (c Config) StatusTopic() string { return c.Base() + "/status" }

// StateTopic is BASE/<monitor>/state: the monitor's retained state.
func (c Config) StateTopic(monitor string) string { return c.Base() + "/" + monitor + "/state" }

// CommandTopic is BASE/failover/set.
func (c Config) CommandTopic() string { return c.Base() + "/failover/set" }

// PingMinuteTopic is BASE/ping/minute: the retained per-minute ping
// statistics (PingMinute) that Home Assistant's ping entities read.
func (c Config) PingMinuteTopic() string { return c.Base() + "/ping/minute" }

// BirthTopic is Home Assistant's status topic, <prefix>/status.
func (c Config) BirthTopic() string { return c.DiscoveryPrefix + "/status" }

func (c Config) enabled(monitor string) bool {
	return monitor == MonitorAgent || slices.Contains(c.Monitors, monitor)
}

// MonitorAgent names the agent's own diagnostic entities and its state
// topic BASE/agent/state.
const MonitorAgent = "agent"

// Entity is one Home Assistant entity of the device.
type Entity struct {
	// Monitor is the monitor whose state the entity shows ("agent" for the
	// diagnostics).
	Monitor string
	// Key is unique within the monitor ("internet", "latency").
	Key string
	// Component is the Home Assistant platform: sensor, binary_sensor,
	// select.
	Component string
	// Payload is the discovery config.
	Payload Payload
	// Reads are the fields of the state topic the entity's state and
	// attributes depend on (the recorder budget counts their changes).
	Reads []string
	// published tells whether the entity is published for a config
	// (nil: whenever its monitor is enabled).
	published func(Config) bool
}

// ObjectID is the entity's discovery object id, <monitor>_<key>.
func (e Entity) ObjectID() string { return e.Monitor + "_" + e.Key }

// Message is a retained MQTT message to publish. An empty Payload removes
// the discovery config.
type Message struct {
	Topic   string
	Payload []byte
}

// Payload is a single-component discovery config. Field names are Home
// Assistant's full keys (no abbreviations); empty fields are omitted.
type Payload struct {
	Name               string   `json:"name"`
	UniqueID           string   `json:"unique_id"`
	DefaultEntityID    string   `json:"default_entity_id"`
	StateTopic         string   `json:"state_topic,omitempty"`
	ValueTemplate      string   `json:"value_template,omitempty"`
	CommandTopic       string   `json:"command_topic,omitempty"`
	CommandTemplate    string   `json:"command_template,omitempty"`
	Options            []string `json:"options,omitempty"`
	DeviceClass        string   `json:"device_class,omitempty"`
	UnitOfMeasurement  string   `json:"unit_of_measurement,omitempty"`
	StateClass         string   `json:"state_class,omitempty"`
	Precision          *int     `json:"suggested_display_precision,omitempty"`
	PayloadOn          string   `json:"payload_on,omitempty"`
	PayloadOff         string   `json:"payload_off,omitempty"`
	EntityCategory     string   `json:"entity_category,omitempty"`
	EnabledByDefault   *bool    `json:"enabled_by_default,omitempty"`
	Icon               string   `json:"icon,omitempty"`
	QoS                int      `json:"qos,omitempty"`
	AvailabilityTopic  string   `json:"availability_topic,omitempty"`
	AttributesTopic    string   `json:"json_attributes_topic,omitempty"`
	AttributesTemplate string   `json:"json_attributes_template,omitempty"`
	Device             Device   `json:"device"`
	Origin             Origin   `json:"origin"`
}

// Device is the discovery device block.
type Device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

// Origin is the discovery origin block.
type Origin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw_version,omitempty"`
	SupportURL string `json:"support_url"`
}

// def is one row of the entity table.
type def struct {
	monitor, key, component, name string
	template                      string
	attrs                         string // json_attributes_template ("" = none)
	reads                         []string
	deviceClass, unit, stateClass string
	precision                     int // -1: none
	category                      string
	options                       []string
	icon                          string
	command                       string // select: command_template on BASE/failover/set
	statusSensor                  bool   // reads BASE/status itself, no availability
	minute                        bool   // reads BASE/ping/minute instead of the monitor's state
	published                     func(Config) bool
	stateTopic                    string // BASE/stateTopic/state instead of the monitor's
}

// Templates. get() yields None (→ unknown in Home Assistant) for a missing
// field, so an older or partial state never breaks the template.
var (
	tplUpdownInternet = fmt.Sprintf(`{{ {'up': 'ON', 'down': 'OFF'}.get(value_json.get('%s')) }}`, UpdownStatus)
	// BASE/ping/minute: null when no reply arrived in the minute (None,
	// never a fake 0 in the statistics).
	tplMinute = func(field string) string {
		return fmt.Sprintf(`{%% set v = value_json.get('%s') %%}{{ v if v is number else None }}`, field)
	}
	tplPingLoss = fmt.Sprintf(`{%% set v = value_json.get('%s') %%}{{ (v * 100) | round(1) if v is number else None }}`, PingLoss)
	tplField    = func(field string) string { return fmt.Sprintf(`{{ value_json.get('%s') }}`, field) }
	tplNonEmpty = func(field string) string { return fmt.Sprintf(`{{ value_json.get('%s') or None }}`, field) }
	tplBool     = func(field string) string {
		return fmt.Sprintf(`{%% set v = value_json.get('%s') %%}{{ None if v is not boolean else ('ON' if v else 'OFF') }}`, field)
	}
	// The change time only after a change: the first address learnt is
	// not one.
	tplChanged = fmt.Sprintf(`{{ value_json.get('%s') if value_json.get('%s') else None }}`, DDNSChangedAt, DDNSPrevious)
	tplWAN     = func(role string) string {
		return fmt.Sprintf(`{%% set w = value_json.get('%s', []) | selectattr('%s', 'eq', '%s') | list %%}{{ {'up': 'ON', 'down': 'OFF'}.get(w[0].%s) if w else None }}`,
			FailoverWANs, FailoverWANRole, role, FailoverWANStatus)
	}
	tplWANAttrs = func(role string) string {
		return fmt.Sprintf(`{%% set w = value_json.get('%s', []) | selectattr('%s', 'eq', '%s') | list %%}{%% set w = w[0] if w else {} %%}{{ ({'name': w.get('name'), 'interface': w.get('ifname'), 'ip': w.get('ip'), 'gateway': w.get('gw'), 'target': w.get('target'), 'rtt_ms': w.get('rtt_ms'), 'loss_percent': (w.get('loss') * 100) | round(1) if w.get('loss') is number else None, 'carrier': w.get('carrier'), 'reason': w.get('reason'), 'switches': w.get('switches')} if w else {}) | tojson }}`,
			FailoverWANs, FailoverWANRole, role)
	}
	tplLastError     = fmt.Sprintf(`{{ value_json.get('%s') or 'none' }}`, AgentLastError)
	tplInternetAttrs = `{{ {'target': value_json.get('target'), 'address': value_json.get('addr')} | tojson }}`
	tplIPAttrs       = `{"previous": {{ value_json.get('previous') | tojson }}, "changed_at": {{ value_json.get('changed_at') | tojson }}, "consensus": {{ value_json.get('consensus') | tojson }}, "agreed": {{ value_json.get('agreed') | tojson }}, "providers": { {%- for p in value_json.get('providers') or [] %}{{ p.name | tojson }}: {{ p.status | tojson }}{{ ', ' if not loop.last }}{% endfor -%} } }`
	tplCGNATAttrs    = `{{ {'interface_address': value_json.get('cgnat_address')} | tojson }}`
)

// Failover modes, the payloads of BASE/failover/set (the select shows
// them with ModeLabels).
var FailoverModes = command.ModeNames()

// Labels Home Assistant shows for the failover states.
const (
	LabelAuto  = "Automatic"
	LabelNoWAN = "No WAN"
)

// WANLabel is the label of WAN i (0 primary, 1 standby) in Home
// Assistant: the configured name, or "Primary"/"Standby" when it is unset,
// unusable in a template, or the same as the other WAN's.
func (c Config) WANLabel(i int) string {
	def := [2]string{"Primary", "Standby"}
	clean := func(s string) string {
		s = labelUnsafe.ReplaceAllString(s, "")
		s = strings.Join(strings.Fields(s), " ")
		if len(s) > 40 || s == "" || strings.EqualFold(s, "none") || s == LabelAuto || s == LabelNoWAN {
			return ""
		}
		return s
	}
	a, b := clean(c.WANNames[0]), clean(c.WANNames[1])
	if a == "" || b == "" || strings.EqualFold(a, b) {
		return def[i]
	}
	return [2]string{a, b}[i]
}

// ModeLabels are the options of the mode select, in FailoverModes order:
// "Automatic", then pinning the primary and the standby ("Pin <label>").
func (c Config) ModeLabels() []string {
	return []string{LabelAuto, "Pin " + c.WANLabel(0), "Pin " + c.WANLabel(1)}
}

// labelUnsafe are the characters kept out of labels: template syntax,
// quotes and controls (the labels are written into Jinja templates).
var labelUnsafe = regexp.MustCompile(`[{}%'"\\\x00-\x1f\x7f]`)

// jinjaMap renders a Jinja dict literal from pairs (already safe strings).
func jinjaMap(pairs ...string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("'" + pairs[i] + "': '" + pairs[i+1] + "'")
	}
	b.WriteString("}")
	return b.String()
}

// defs is the entity table for c.
func defs(c Config) []def {
	p, sb := c.WANLabel(0), c.WANLabel(1)
	ml := c.ModeLabels()
	tplActiveWAN := fmt.Sprintf(`{%% set a = value_json.get('%s') %%}{%% if a %%}{{ %s.get(a) }}{%% elif value_json.get('%s') %%}%s{%% else %%}{{ None }}{%% endif %%}`,
		FailoverActive, jinjaMap("primary", p, "standby", sb), FailoverBothDown, LabelNoWAN)
	tplActiveAttrs := fmt.Sprintf(`{{ {'mode': value_json.get('%s'), 'active_since': value_json.get('active_since'), 'hold_remaining_s': value_json.get('hold_remaining_s'), 'primary': '%s', 'standby': '%s'} | tojson }}`,
		FailoverMode, p, sb)
	tplMode := fmt.Sprintf(`{{ %s.get(value_json.get('%s')) }}`, jinjaMap("auto", ml[0], "primary", ml[1], "standby", ml[2]), FailoverMode)
	cmdMode := fmt.Sprintf(`{{ %s.get(value, value) }}`, jinjaMap(ml[0], "auto", ml[1], "primary", ml[2], "standby"))
	tplCGNAT := tplBool(DDNSCGNAT)
	if !c.CGNATChecked {
		tplCGNAT = `{{ None }}` // no ddns.interface: nothing is checked
	}
	ipv6 := func(c Config) bool { return c.IPv6 }
	return []def{
		{monitor: "updown", key: "internet", component: "binary_sensor", name: "Internet", template: tplUpdownInternet, attrs: tplInternetAttrs, reads: []string{UpdownStatus, "target", "addr"}, deviceClass: "connectivity", precision: -1},
		{monitor: "updown", key: "status_since", component: "sensor", name: "Internet status since", template: tplField(UpdownSince), reads: []string{UpdownSince}, deviceClass: "timestamp", precision: -1, category: "diagnostic"},
		{monitor: "updown", key: "last_outage_start", component: "sensor", name: "Last outage start", template: tplField(UpdownLastOutageStart), reads: []string{UpdownLastOutageStart}, deviceClass: "timestamp", precision: -1},
		{monitor: "updown", key: "last_outage_duration", component: "sensor", name: "Last outage duration", template: tplField(UpdownLastOutageDurationS), reads: []string{UpdownLastOutageDurationS}, deviceClass: "duration", unit: "s", precision: 0},
		{monitor: "updown", key: "outages", component: "sensor", name: "Outages", template: tplField(UpdownOutages), reads: []string{UpdownOutages}, stateClass: "total_increasing", precision: 0, icon: "mdi:lan-disconnect"},

		{monitor: "ping", key: "latency", component: "sensor", name: "Latency", minute: true, template: tplMinute(PingAvgMS), reads: []string{PingAvgMS}, deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1},
		{monitor: "ping", key: "latency_min", component: "sensor", name: "Latency min", minute: true, template: tplMinute(PingMinMS), reads: []string{PingMinMS}, deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1, category: "diagnostic"},
		{monitor: "ping", key: "latency_max", component: "sensor", name: "Latency max", minute: true, template: tplMinute(PingMaxMS), reads: []string{PingMaxMS}, deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1, category: "diagnostic"},
		{monitor: "ping", key: "jitter", component: "sensor", name: "Jitter", minute: true, template: tplMinute(PingJitterMS), reads: []string{PingJitterMS}, deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1},
		{monitor: "ping", key: "packet_loss", component: "sensor", name: "Packet loss", minute: true, template: tplPingLoss, reads: []string{PingLoss}, unit: "%", stateClass: "measurement", precision: 0, icon: "mdi:lan-pending"},

		{monitor: "ddns", key: "external_ip", component: "sensor", name: "External IP", template: tplNonEmpty(DDNSIP), attrs: tplIPAttrs, reads: []string{DDNSIP, DDNSPrevious, DDNSChangedAt, "consensus", "agreed", "providers"}, precision: -1, icon: "mdi:ip-network"},
		{monitor: "ddns", key: "external_ipv6", component: "sensor", name: "External IPv6", template: tplNonEmpty(DDNSIP6), reads: []string{DDNSIP6}, precision: -1, icon: "mdi:ip-network", published: ipv6},
		{monitor: "ddns", key: "external_ip_changed", component: "sensor", name: "External IP changed", template: tplChanged, reads: []string{DDNSChangedAt, DDNSPrevious}, deviceClass: "timestamp", precision: -1},
		{monitor: "ddns", key: "cgnat", component: "binary_sensor", name: "Behind carrier-grade NAT", template: tplCGNAT, attrs: tplCGNATAttrs, reads: []string{DDNSCGNAT, "cgnat_address"}, deviceClass: "problem", precision: -1, category: "diagnostic"},

		{monitor: "failover", key: "active_wan", component: "sensor", name: "Active WAN", template: tplActiveWAN, attrs: tplActiveAttrs, reads: []string{FailoverActive, FailoverBothDown, FailoverMode, "active_since", "hold_remaining_s"}, deviceClass: "enum", options: []string{p, sb, LabelNoWAN}, precision: -1, icon: "mdi:wan"},
		{monitor: "failover", key: "primary_wan", component: "binary_sensor", name: "Primary WAN", template: tplWAN("primary"), attrs: tplWANAttrs("primary"), reads: []string{FailoverWANs}, deviceClass: "connectivity", precision: -1},
		{monitor: "failover", key: "standby_wan", component: "binary_sensor", name: "Standby WAN", template: tplWAN("standby"), attrs: tplWANAttrs("standby"), reads: []string{FailoverWANs}, deviceClass: "connectivity", precision: -1},
		{monitor: "failover", key: "mode", component: "select", name: "Failover mode", template: tplMode, reads: []string{FailoverMode}, options: ml, precision: -1, category: "config", icon: "mdi:swap-horizontal", command: cmdMode},

		{monitor: MonitorAgent, key: "status", component: "binary_sensor", name: "Agent", deviceClass: "connectivity", precision: -1, category: "diagnostic", statusSensor: true},
		{monitor: MonitorAgent, key: "version", component: "sensor", name: "Agent version", template: tplField(AgentVersion), reads: []string{AgentVersion}, precision: -1, category: "diagnostic", icon: "mdi:information-outline"},
		{monitor: MonitorAgent, key: "journal_size", component: "sensor", name: "Journal size", template: tplField(AgentJournalBytes), reads: []string{AgentJournalBytes}, deviceClass: "data_size", unit: "B", stateClass: "measurement", precision: 0, category: "diagnostic"},
		{monitor: MonitorAgent, key: "backlog", component: "sensor", name: "Unpublished events", template: tplField(AgentBacklog), reads: []string{AgentBacklog}, stateClass: "measurement", precision: 0, category: "diagnostic", icon: "mdi:tray-full"},
		{monitor: MonitorAgent, key: "problem", component: "binary_sensor", name: "Agent problem", template: tplBool(AgentProblem), reads: []string{AgentProblem}, deviceClass: "problem", precision: -1, category: "diagnostic"},
		{monitor: MonitorAgent, key: "last_error", component: "sensor", name: "Last error", template: tplLastError, reads: []string{AgentLastError}, precision: -1, category: "diagnostic", icon: "mdi:alert-circle-outline"},
	}
}

var idUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// topicID reduces s to the characters Home Assistant accepts in a
// discovery node or object id.
func topicID(s string) string { return idUnsafe.ReplaceAllString(s, "_") }

// entityID reduces s to an entity id's object part ([a-z0-9_]).
func entityID(s string) string {
	return strings.ReplaceAll(strings.ToLower(topicID(s)), "-", "_")
}

// Entities returns every entity imon defines for the instance, whether its
// monitor is enabled or not, in a stable order.
func Entities(c Config) []Entity {
	dev := Device{
		Identifiers:  []string{"imon_" + c.NodeID},
		Name:         "imon " + c.NodeID,
		Manufacturer: Manufacturer,
		Model:        Model,
		SWVersion:    c.Version,
	}
	org := Origin{Name: OriginName, SWVersion: c.Version, SupportURL: SupportURL}
	table := append(defs(c), availabilityDefs()...)
	out := make([]Entity, 0, len(table))
	for _, d := range table {
		e := Entity{Monitor: d.monitor, Key: d.key, Component: d.component, Reads: d.reads, published: d.published}
		uid := "imon_" + c.NodeID + "_" + e.ObjectID()
		p := Payload{
			Name:              d.name,
			UniqueID:          uid,
			DefaultEntityID:   d.component + "." + entityID(uid),
			StateTopic:        c.StateTopic(cmp.Or(d.stateTopic, d.monitor)),
			ValueTemplate:     d.template,
			Options:           d.options,
			DeviceClass:       d.deviceClass,
			UnitOfMeasurement: d.unit,
			StateClass:        d.stateClass,
			EntityCategory:    d.category,
			Icon:              d.icon,
			AvailabilityTopic: c.StatusTopic(),
			QoS:               1, // the states are published at QoS 1
			Device:            dev,
			Origin:            org,
		}
		if d.precision >= 0 {
			p.Precision = &d.precision
		}
		if d.minute {
			p.StateTopic = c.PingMinuteTopic()
		}
		if d.attrs != "" {
			p.AttributesTopic, p.AttributesTemplate = p.StateTopic, d.attrs
		}
		if d.command != "" {
			p.CommandTopic, p.CommandTemplate = c.CommandTopic(), d.command
		}
		if d.statusSensor {
			p.StateTopic, p.ValueTemplate, p.AvailabilityTopic = c.StatusTopic(), "", ""
			p.PayloadOn, p.PayloadOff = "online", "offline"
		}
		e.Payload = p
		out = append(out, e)
	}
	return out
}

// Topic is the entity's discovery config topic.
func (c Config) Topic(e Entity) string {
	return c.DiscoveryPrefix + "/" + e.Component + "/" + topicID(c.NodeID) + "/" + topicID(e.ObjectID()) + "/config"
}

// Published reports whether the entity is published for c: its monitor is
// enabled, and for the failover mode select, commands are accepted.
func (c Config) Published(e Entity) bool {
	if !c.enabled(e.Monitor) {
		return false
	}
	if e.Payload.CommandTopic != "" && !c.Commands {
		return false
	}
	return e.published == nil || e.published(c)
}

// Discovery returns the retained discovery messages for c: the config of
// every published entity, and an empty payload (removal) for every other
// entity imon defines, so that disabling a monitor removes its entities.
func Discovery(c Config) []Message {
	var out []Message
	for _, e := range Entities(c) {
		m := Message{Topic: c.Topic(e)}
		if c.Published(e) {
			m.Payload = marshal(e.Payload)
		}
		out = append(out, m)
	}
	return out
}

// marshal is json.Marshal without HTML escaping, so that templates keep
// their "<" readable.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("homeassistant: marshal %T: %v", v, err)) // plain structs: cannot fail
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
