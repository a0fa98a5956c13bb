package config

import (
	"net/netip"
	"time"
)

// Config is one imon instance's configuration, decoded, defaulted and
// validated. Durations are time.Duration; lists are slices; an empty string
// in the file means "not set" and gives the zero value here.
type Config struct {
	// Path is the file the config was loaded from ("" when built in code).
	Path          string
	Global        Global
	DDNS          DDNS
	Updown        Updown
	Failover      Failover
	Ping          Ping
	Journal       Journal
	MQTT          MQTT
	HomeAssistant HomeAssistant

	// set holds "section.key" of every key the file gave a (non-empty)
	// value, so that defaults derived from other settings (the instance
	// name, the interval) can be recomputed; nil for a Config built in code.
	set       map[string]bool
	pos       map[string]position // where each "section.key" is in the file
	hostname  string              // the machine's name, for the default MQTT node id
	machineID string              // /etc/machine-id, for the default MQTT node id
}

// Global is the "global" section.
type Global struct {
	Action           string        // "action": action script path, "" = none
	DateFmt          string        // "datefmt": strftime format for --nosyslog output; default "%Y-%m-%d %H:%M:%S"
	Instance         string        // "instance": default "main"
	Note             string        // "note"
	ConfigureVersion string        // "imon-configure-version"
	ConfigureCreated string        // "imon-configure-created"
	Debug            bool          // "debug"
	ActionTimeout    time.Duration // "action-timeout" seconds; default 30s
	ActionMaxAge     time.Duration // "action-max-age" seconds; default 3600s: older events at startup are skipped, not run
}

// Probe holds the per-monitor probe settings the original had in every section.
type Probe struct {
	Enable    bool          // "enable"
	Interval  time.Duration // "interval" seconds (int or float); default 10s
	PingCount int           // "pingcount" (int or float); default 2
	PingWait  time.Duration // "pingwait" seconds (int or float); default 1s
}

// DDNS is the "ddns" section.
type DDNS struct {
	Probe
	Providers    []string      // "providers": dns://SERVER[:PORT]/NAME?type=A|AAAA|TXT&class=IN|CH or http(s) URLs; default DefaultDDNSProviders
	Quorum       int           // "quorum": independent operators that must agree; default 2
	Timeout      time.Duration // "timeout" seconds per provider query; default 2s
	AllowPrivate bool          // "allow-private": accept non-public answers (labs, test beds); default false
	Interface    string        // "interface": WAN interface checked for a CGNAT address; "" = none
}

// Updown is the "updown" section.
type Updown struct {
	Probe
	MonitorIP    string        // "monitorip": IP or host name; required when enabled
	AddPing      []string      // "addping": comma-separated string in the file
	DNSServer    string        // "dnsserver": IP[:port] or name; "" = no DNS check
	DNSLookup    string        // "dnslookup": name to look up on DNSServer
	DownInterval time.Duration // "down-interval" seconds between rechecks while down; default min(interval, 1s)
}

// Failover is the "failover" section.
type Failover struct {
	Probe
	PreferPrimary bool // "prefer-primary"
	Metric        int  // "metric"; default 201
	Primary       WAN  // "primary-*"
	Standby       WAN  // "standby-*"
	// Anti-flap and speed settings (imon extensions).
	DownAfter      int           // "down-after": consecutive lost probes that mark a WAN down; default 5
	UpAfter        int           // "up-after": consecutive good probes that mark a WAN up; default 5
	HoldTime       time.Duration // "failback-hold" seconds the preferred WAN must stay up before failback; default 30s
	HoldMax        time.Duration // "failback-hold-max" seconds, cap of the hold that doubles after each flap; default 600s
	ProbeInterval  time.Duration // "probe-interval" seconds between probes of one WAN; default interval/(pingcount*5), clamped to [0.05s, interval]
	FlushConntrack bool          // "flush-conntrack": delete conntrack entries NAT'd to the failed WAN on a switch; default true
	TableBase      int           // "table-base": routing table of the primary (standby = +1); default 201
	RulePriority   int           // "rule-priority": first ip-rule priority imon uses; default 10100
	FwmarkBase     uint32        // "fwmark-base": fwmark of the primary's probes (standby = +1); default 0x1c9 (457)
	RouteProtocol  int           // "route-protocol": protocol number tagging this instance's routes and rules; default 201
}

// WAN is one failover link.
type WAN struct {
	If       string     // "*-if": interface name
	Name     string     // "*-name": user's name for the network
	GW       netip.Addr // "*-gw": gateway IP
	Ping     string     // "*-ping": probe target, "" = the gateway
	PostPing string     // "*-postping": checked after a switch to this WAN, "" = none
}

// Ping is the "ping" section.
type Ping struct {
	Probe
	MonitorIP string // "monitorip": IP or host name; required when enabled
}

// Journal is the "journal" section (imon extension).
type Journal struct {
	Path     string        // "path"; default /var/lib/imon/INSTANCE.db
	Socket   string        // "socket": agent control socket; default /run/imon/INSTANCE.sock
	MaxAge   time.Duration // "max-age" seconds; default 30 days (2592000)
	MaxBytes int64         // "max-bytes"; default 64 MiB
	// HistoryDays is "history-days": days of rollups kept for imon report
	// and the availability sensors; default 365, 1..3660.
	HistoryDays int
}

// MQTT is the "mqtt" section (imon extension).
type MQTT struct {
	Enable       bool          // "enable"
	Server       string        // "server": mqtt://host:1883 or mqtts://host:8883 (also tcp://, ssl://, tls://, unix:///path)
	Username     string        // "username"
	PasswordFile string        // "password-file": file whose first line is the password
	CAFile       string        // "ca-file": PEM CA bundle for mqtts
	ClientID     string        // "client-id"; default imon-NODEID
	TopicPrefix  string        // "topic-prefix"; default "imon"
	NodeID       string        // "node-id"; default <hostname>-<machine tag>-<instance> reduced to [a-zA-Z0-9_-]
	Commands     bool          // "commands": accept BASE/failover/set; default true
	KeepAlive    time.Duration // "keepalive" seconds; default 30s
}

// HomeAssistant is the "homeassistant" section (imon extension).
type HomeAssistant struct {
	Enable          bool   // "enable"
	DiscoveryPrefix string // "discovery-prefix"; default "homeassistant"
}
