package config

// keySpec describes one key of a section: its name in the file and the
// field it fills. The field's type picks the decoding: *bool, *string,
// *int, *int64, *uint32, *time.Duration (seconds, int or float),
// *netip.Addr (an IP literal) or *[]string (a list of strings, or with
// commaList also a comma-separated string).
type keySpec struct {
	name      string
	field     func(c *Config) any
	commaList bool
}

// sectionSpec is one section of the file.
type sectionSpec struct {
	name    string
	keys    []keySpec
	monitor bool // has "enable" and the probe keys; Dump prints only "enable" when off
}

func probeKeys(probe func(c *Config) *Probe) []keySpec {
	return []keySpec{
		{name: "enable", field: func(c *Config) any { return &probe(c).Enable }},
		{name: "interval", field: func(c *Config) any { return &probe(c).Interval }},
		{name: "pingcount", field: func(c *Config) any { return &probe(c).PingCount }},
		{name: "pingwait", field: func(c *Config) any { return &probe(c).PingWait }},
	}
}

func wanKeys(prefix string, wan func(c *Config) *WAN) []keySpec {
	return []keySpec{
		{name: prefix + "-if", field: func(c *Config) any { return &wan(c).If }},
		{name: prefix + "-name", field: func(c *Config) any { return &wan(c).Name }},
		{name: prefix + "-gw", field: func(c *Config) any { return &wan(c).GW }},
		{name: prefix + "-ping", field: func(c *Config) any { return &wan(c).Ping }},
		{name: prefix + "-postping", field: func(c *Config) any { return &wan(c).PostPing }},
	}
}

func concat(lists ...[]keySpec) []keySpec {
	var all []keySpec
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// Section names.
const (
	SectionGlobal        = "global"
	SectionDDNS          = "ddns"
	SectionUpdown        = "updown"
	SectionFailover      = "failover"
	SectionPing          = "ping"
	SectionJournal       = "journal"
	SectionMQTT          = "mqtt"
	SectionHomeAssistant = "homeassistant"
)

// schema is every section and key of the file, in the order the original
// imon-configure wrote them, then the imon extensions.
var schema = []sectionSpec{
	{name: SectionGlobal, keys: []keySpec{
		{name: "action", field: func(c *Config) any { return &c.Global.Action }},
		{name: "datefmt", field: func(c *Config) any { return &c.Global.DateFmt }},
		{name: "instance", field: func(c *Config) any { return &c.Global.Instance }},
		{name: "note", field: func(c *Config) any { return &c.Global.Note }},
		{name: "imon-configure-version", field: func(c *Config) any { return &c.Global.ConfigureVersion }},
		{name: "imon-configure-created", field: func(c *Config) any { return &c.Global.ConfigureCreated }},
		{name: "debug", field: func(c *Config) any { return &c.Global.Debug }},
		{name: "action-timeout", field: func(c *Config) any { return &c.Global.ActionTimeout }},
		{name: "action-max-age", field: func(c *Config) any { return &c.Global.ActionMaxAge }},
	}},
	{name: SectionDDNS, monitor: true, keys: concat(
		probeKeys(func(c *Config) *Probe { return &c.DDNS.Probe }),
		[]keySpec{
			{name: "providers", field: func(c *Config) any { return &c.DDNS.Providers }},
			{name: "quorum", field: func(c *Config) any { return &c.DDNS.Quorum }},
			{name: "timeout", field: func(c *Config) any { return &c.DDNS.Timeout }},
			{name: "allow-private", field: func(c *Config) any { return &c.DDNS.AllowPrivate }},
			{name: "interface", field: func(c *Config) any { return &c.DDNS.Interface }},
		})},
	{name: SectionUpdown, monitor: true, keys: concat(
		probeKeys(func(c *Config) *Probe { return &c.Updown.Probe }),
		[]keySpec{
			{name: "monitorip", field: func(c *Config) any { return &c.Updown.MonitorIP }},
			{name: "addping", field: func(c *Config) any { return &c.Updown.AddPing }, commaList: true},
			{name: "dnsserver", field: func(c *Config) any { return &c.Updown.DNSServer }},
			{name: "dnslookup", field: func(c *Config) any { return &c.Updown.DNSLookup }},
			{name: "down-interval", field: func(c *Config) any { return &c.Updown.DownInterval }},
		})},
	{name: SectionFailover, monitor: true, keys: concat(
		probeKeys(func(c *Config) *Probe { return &c.Failover.Probe }),
		[]keySpec{
			{name: "prefer-primary", field: func(c *Config) any { return &c.Failover.PreferPrimary }},
			{name: "metric", field: func(c *Config) any { return &c.Failover.Metric }},
		},
		wanKeys("primary", func(c *Config) *WAN { return &c.Failover.Primary }),
		wanKeys("standby", func(c *Config) *WAN { return &c.Failover.Standby }),
		[]keySpec{
			{name: "down-after", field: func(c *Config) any { return &c.Failover.DownAfter }},
			{name: "up-after", field: func(c *Config) any { return &c.Failover.UpAfter }},
			{name: "failback-hold", field: func(c *Config) any { return &c.Failover.HoldTime }},
			{name: "failback-hold-max", field: func(c *Config) any { return &c.Failover.HoldMax }},
			{name: "probe-interval", field: func(c *Config) any { return &c.Failover.ProbeInterval }},
			{name: "flush-conntrack", field: func(c *Config) any { return &c.Failover.FlushConntrack }},
			{name: "table-base", field: func(c *Config) any { return &c.Failover.TableBase }},
			{name: "rule-priority", field: func(c *Config) any { return &c.Failover.RulePriority }},
			{name: "fwmark-base", field: func(c *Config) any { return &c.Failover.FwmarkBase }},
			{name: "route-protocol", field: func(c *Config) any { return &c.Failover.RouteProtocol }},
		})},
	{name: SectionPing, monitor: true, keys: concat(
		probeKeys(func(c *Config) *Probe { return &c.Ping.Probe }),
		[]keySpec{
			{name: "monitorip", field: func(c *Config) any { return &c.Ping.MonitorIP }},
		})},
	{name: SectionJournal, keys: []keySpec{
		{name: "path", field: func(c *Config) any { return &c.Journal.Path }},
		{name: "socket", field: func(c *Config) any { return &c.Journal.Socket }},
		{name: "max-age", field: func(c *Config) any { return &c.Journal.MaxAge }},
		{name: "max-bytes", field: func(c *Config) any { return &c.Journal.MaxBytes }},
		{name: "history-days", field: func(c *Config) any { return &c.Journal.HistoryDays }},
	}},
	{name: SectionMQTT, keys: []keySpec{
		{name: "enable", field: func(c *Config) any { return &c.MQTT.Enable }},
		{name: "server", field: func(c *Config) any { return &c.MQTT.Server }},
		{name: "username", field: func(c *Config) any { return &c.MQTT.Username }},
		{name: "password-file", field: func(c *Config) any { return &c.MQTT.PasswordFile }},
		{name: "ca-file", field: func(c *Config) any { return &c.MQTT.CAFile }},
		{name: "client-id", field: func(c *Config) any { return &c.MQTT.ClientID }},
		{name: "topic-prefix", field: func(c *Config) any { return &c.MQTT.TopicPrefix }},
		{name: "node-id", field: func(c *Config) any { return &c.MQTT.NodeID }},
		{name: "commands", field: func(c *Config) any { return &c.MQTT.Commands }},
		{name: "keepalive", field: func(c *Config) any { return &c.MQTT.KeepAlive }},
	}},
	{name: SectionHomeAssistant, keys: []keySpec{
		{name: "enable", field: func(c *Config) any { return &c.HomeAssistant.Enable }},
		{name: "discovery-prefix", field: func(c *Config) any { return &c.HomeAssistant.DiscoveryPrefix }},
	}},
}

// Keys returns every key of section in file order, or nil for an unknown
// section. Sections returns the section names. Both serve tools such as
// `imon configure` and documentation tests.
func Keys(section string) []string {
	for _, s := range schema {
		if s.name == section {
			names := make([]string, len(s.keys))
			for i, k := range s.keys {
				names[i] = k.name
			}
			return names
		}
	}
	return nil
}

// Sections returns the section names in file order.
func Sections() []string {
	names := make([]string, len(schema))
	for i, s := range schema {
		names[i] = s.name
	}
	return names
}
