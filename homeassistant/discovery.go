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
// (BASE/<monitor>/state, the monitor's State JSON as journaled) through
// value_template, so the mapping from imon's state to Home Assistant lives
// here, with the field names in fields.go. Every entity's availability is
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
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

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
	Name              string   `json:"name"`
	UniqueID          string   `json:"unique_id"`
	DefaultEntityID   string   `json:"default_entity_id"`
	StateTopic        string   `json:"state_topic,omitempty"`
	ValueTemplate     string   `json:"value_template,omitempty"`
	CommandTopic      string   `json:"command_topic,omitempty"`
	Options           []string `json:"options,omitempty"`
	DeviceClass       string   `json:"device_class,omitempty"`
	UnitOfMeasurement string   `json:"unit_of_measurement,omitempty"`
	StateClass        string   `json:"state_class,omitempty"`
	Precision         *int     `json:"suggested_display_precision,omitempty"`
	PayloadOn         string   `json:"payload_on,omitempty"`
	PayloadOff        string   `json:"payload_off,omitempty"`
	EntityCategory    string   `json:"entity_category,omitempty"`
	EnabledByDefault  *bool    `json:"enabled_by_default,omitempty"`
	Icon              string   `json:"icon,omitempty"`
	QoS               int      `json:"qos,omitempty"`
	AvailabilityTopic string   `json:"availability_topic,omitempty"`
	Device            Device   `json:"device"`
	Origin            Origin   `json:"origin"`
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
	deviceClass, unit, stateClass string
	precision                     int // -1: none
	category                      string
	disabled                      bool
	options                       []string
	icon                          string
	command                       bool // select on BASE/failover/set
	statusSensor                  bool // reads BASE/status itself, no availability
}

// Templates. get() yields None (→ unknown in Home Assistant) for a missing
// field, so an older or partial state never breaks the template.
var (
	tplUpdownInternet = fmt.Sprintf(`{{ {'up': 'ON', 'down': 'OFF'}.get(value_json.get('%s')) }}`, UpdownStatus)
	// A ping with 100 % loss has no RTT: None, never a fake 0 in the
	// statistics.
	tplPing = func(field string) string {
		return fmt.Sprintf(`{%% set v = value_json.get('%s') %%}{{ v if v is number and value_json.get('%s', 0) < 1 else None }}`, field, PingLoss)
	}
	tplPingLoss  = fmt.Sprintf(`{%% set v = value_json.get('%s') %%}{{ (v * 100) | round(1) if v is number else None }}`, PingLoss)
	tplField     = func(field string) string { return fmt.Sprintf(`{{ value_json.get('%s') }}`, field) }
	tplNonEmpty  = func(field string) string { return fmt.Sprintf(`{{ value_json.get('%s') or None }}`, field) }
	tplBool      = func(field string) string { return fmt.Sprintf(`{{ 'ON' if value_json.get('%s') else 'OFF' }}`, field) }
	tplActiveWAN = fmt.Sprintf(`{{ value_json.get('%s') or 'none' }}`, FailoverActive)
	tplWAN       = func(role string) string {
		return fmt.Sprintf(`{%% set w = value_json.get('%s', []) | selectattr('%s', 'eq', '%s') | list %%}{{ {'up': 'ON', 'down': 'OFF'}.get(w[0].%s) if w else None }}`,
			FailoverWANs, FailoverWANRole, role, FailoverWANStatus)
	}
	tplLastError = fmt.Sprintf(`{{ value_json.get('%s') or 'none' }}`, AgentLastError)
)

// Failover modes, the options of the select and the payloads of
// BASE/failover/set.
var FailoverModes = []string{"auto", "primary", "standby"}

var defs = []def{
	{monitor: "updown", key: "internet", component: "binary_sensor", name: "Internet", template: tplUpdownInternet, deviceClass: "connectivity", precision: -1},
	{monitor: "updown", key: "status_since", component: "sensor", name: "Internet status since", template: tplField(UpdownSince), deviceClass: "timestamp", precision: -1, category: "diagnostic"},
	{monitor: "updown", key: "last_outage_start", component: "sensor", name: "Last outage start", template: tplField(UpdownLastOutageStart), deviceClass: "timestamp", precision: -1},
	{monitor: "updown", key: "last_outage_duration", component: "sensor", name: "Last outage duration", template: tplField(UpdownLastOutageDurationS), deviceClass: "duration", unit: "s", precision: 0},
	{monitor: "updown", key: "outages", component: "sensor", name: "Outages", template: tplField(UpdownOutages), stateClass: "total_increasing", precision: 0, icon: "mdi:lan-disconnect"},

	{monitor: "ping", key: "latency", component: "sensor", name: "Latency", template: tplPing(PingAvgMS), deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1},
	{monitor: "ping", key: "latency_min", component: "sensor", name: "Latency min", template: tplPing(PingMinMS), deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1, category: "diagnostic", disabled: true},
	{monitor: "ping", key: "latency_max", component: "sensor", name: "Latency max", template: tplPing(PingMaxMS), deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1, category: "diagnostic", disabled: true},
	{monitor: "ping", key: "jitter", component: "sensor", name: "Jitter", template: tplPing(PingJitterMS), deviceClass: "duration", unit: "ms", stateClass: "measurement", precision: 1},
	{monitor: "ping", key: "packet_loss", component: "sensor", name: "Packet loss", template: tplPingLoss, unit: "%", stateClass: "measurement", precision: 0, icon: "mdi:lan-pending"},

	{monitor: "ddns", key: "external_ip", component: "sensor", name: "External IP", template: tplNonEmpty(DDNSIP), precision: -1, icon: "mdi:ip-network"},
	{monitor: "ddns", key: "external_ipv6", component: "sensor", name: "External IPv6", template: tplNonEmpty(DDNSIP6), precision: -1, icon: "mdi:ip-network", disabled: true},
	{monitor: "ddns", key: "external_ip_changed", component: "sensor", name: "External IP changed", template: tplField(DDNSChangedAt), deviceClass: "timestamp", precision: -1},
	{monitor: "ddns", key: "cgnat", component: "binary_sensor", name: "Behind carrier-grade NAT", template: tplBool(DDNSCGNAT), deviceClass: "problem", precision: -1, category: "diagnostic"},

	{monitor: "failover", key: "active_wan", component: "sensor", name: "Active WAN", template: tplActiveWAN, deviceClass: "enum", options: []string{"primary", "standby", "none"}, precision: -1, icon: "mdi:wan"},
	{monitor: "failover", key: "primary_wan", component: "binary_sensor", name: "Primary WAN", template: tplWAN("primary"), deviceClass: "connectivity", precision: -1},
	{monitor: "failover", key: "standby_wan", component: "binary_sensor", name: "Standby WAN", template: tplWAN("standby"), deviceClass: "connectivity", precision: -1},
	{monitor: "failover", key: "mode", component: "select", name: "Failover mode", template: tplField(FailoverMode), options: FailoverModes, precision: -1, category: "config", icon: "mdi:swap-horizontal", command: true},

	{monitor: MonitorAgent, key: "status", component: "binary_sensor", name: "Agent", deviceClass: "connectivity", precision: -1, category: "diagnostic", statusSensor: true},
	{monitor: MonitorAgent, key: "version", component: "sensor", name: "Agent version", template: tplField(AgentVersion), precision: -1, category: "diagnostic", icon: "mdi:information-outline"},
	{monitor: MonitorAgent, key: "journal_size", component: "sensor", name: "Journal size", template: tplField(AgentJournalBytes), deviceClass: "data_size", unit: "B", stateClass: "measurement", precision: 0, category: "diagnostic"},
	{monitor: MonitorAgent, key: "backlog", component: "sensor", name: "Unpublished events", template: tplField(AgentBacklog), stateClass: "measurement", precision: 0, category: "diagnostic", icon: "mdi:tray-full"},
	{monitor: MonitorAgent, key: "last_error", component: "sensor", name: "Last error", template: tplLastError, precision: -1, category: "diagnostic", icon: "mdi:alert-circle-outline"},
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
	out := make([]Entity, 0, len(defs))
	for _, d := range defs {
		e := Entity{Monitor: d.monitor, Key: d.key, Component: d.component}
		uid := "imon_" + c.NodeID + "_" + e.ObjectID()
		p := Payload{
			Name:              d.name,
			UniqueID:          uid,
			DefaultEntityID:   d.component + "." + entityID(uid),
			StateTopic:        c.StateTopic(d.monitor),
			ValueTemplate:     d.template,
			Options:           d.options,
			DeviceClass:       d.deviceClass,
			UnitOfMeasurement: d.unit,
			StateClass:        d.stateClass,
			EntityCategory:    d.category,
			Icon:              d.icon,
			AvailabilityTopic: c.StatusTopic(),
			Device:            dev,
			Origin:            org,
		}
		if d.precision >= 0 {
			p.Precision = &d.precision
		}
		if d.disabled {
			f := false
			p.EnabledByDefault = &f
		}
		if d.command {
			p.CommandTopic = c.CommandTopic()
			p.QoS = 1
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
	return true
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
