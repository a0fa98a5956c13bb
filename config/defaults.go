package config

import "time"

// Every default value of the configuration, in one place. Defaults that are
// derived from other settings (the failover probe interval, the updown
// down-interval, the journal paths, the MQTT node and client ids) are
// computed from these by [Parse]; their rules are documented next to the
// constants they use.

// Global defaults.
const (
	// DefaultInstance is the instance name when neither the file nor its
	// name (/etc/default/imon-NAME) gives one.
	DefaultInstance = "main"
	// DefaultDateFmt is the strftime format of --nosyslog log lines, as in
	// the original imon.
	DefaultDateFmt = "%Y-%m-%d %H:%M:%S"
	// DefaultActionTimeout is how long the action script may run before it
	// is killed.
	DefaultActionTimeout = 30 * time.Second
	// DefaultActionMaxAge is the age beyond which an event found unhandled at
	// startup is skipped instead of running the action script for it.
	DefaultActionMaxAge = 3600 * time.Second
	// DefaultConfigDir is the directory of the instance configuration files.
	DefaultConfigDir = "/etc/default"
	// ConfigFilePrefix is the file name prefix of an instance configuration
	// file: DefaultConfigDir/imon-INSTANCE.
	ConfigFilePrefix = "imon-"
)

// Defaults of the probe settings every monitor section has.
const (
	// DefaultInterval is the time between two checks of a monitor.
	DefaultInterval = 10 * time.Second
	// DefaultPingCount is the number of echo requests of one check.
	DefaultPingCount = 2
	// DefaultPingWait is how long a check waits for echo replies.
	DefaultPingWait = 1 * time.Second
	// MaxPingCount bounds pingcount.
	MaxPingCount = 100
)

// DDNS defaults. The default provider list is [DefaultDDNSProviders].
const (
	// DefaultDDNSQuorum is the number of independent providers that must
	// report the same address before it is believed.
	DefaultDDNSQuorum = 2
	// DefaultDDNSTimeout bounds one provider query.
	DefaultDDNSTimeout = 2 * time.Second
	// DefaultDNSPort is the port of a dns:// provider without one.
	DefaultDNSPort = 53
)

// Updown defaults.
const (
	// MaxDefaultDownInterval caps the default down-interval: while the
	// monitored address is down it is rechecked every
	// min(interval, MaxDefaultDownInterval), as the original rechecked every
	// second.
	MaxDefaultDownInterval = 1 * time.Second
)

// Failover defaults. The failover engineer may tune these.
const (
	// DefaultMetric is the metric of the default routes imon installs.
	DefaultMetric = 201
	// DefaultDownAfter is the number of consecutive unanswered probes that
	// mark a WAN down. The first must have waited the full pingwait, the
	// later ones count once the probe engine has read the replies without
	// finding theirs (at least 4 smoothed RTTs after the send; the engine
	// reads again half a tick after a loss), so with interval 1 a dead WAN
	// is seen about one pingwait and 100 ms after its first lost probe,
	// while 10 % random loss makes six
	// in a row (p = 1e-6 per probe) vanishingly rare: no switch in hours of
	// such loss.
	DefaultDownAfter = 6
	// DefaultUpAfter is the number of consecutive good probes that mark a
	// WAN up again.
	DefaultUpAfter = 5
	// DefaultHoldTime is how long the preferred WAN must stay up before
	// imon fails back to it.
	DefaultHoldTime = 30 * time.Second
	// DefaultHoldMax caps the failback hold, which doubles after each flap.
	DefaultHoldMax = 600 * time.Second
	// ProbeIntervalDivisor sets the default probe interval of one WAN to
	// interval/(pingcount*ProbeIntervalDivisor): with interval 1 and
	// pingcount 2, ten probes a second per WAN (about 1 KB/s each way).
	ProbeIntervalDivisor = 5
	// MinDefaultProbeInterval and the interval bound the default probe
	// interval.
	MinDefaultProbeInterval = 50 * time.Millisecond
	// DefaultFlushConntrack deletes the conntrack entries NAT'd to a failed
	// WAN on a switch, so that connections re-establish at once.
	DefaultFlushConntrack = true
	// DefaultTableBase is the routing table of the primary WAN; the
	// standby's is DefaultTableBase+1.
	DefaultTableBase = 201
	// DefaultRulePriority is the first ip-rule priority imon uses.
	DefaultRulePriority = 10100
	// DefaultFwmarkBase is the fwmark of the primary's probes (0x1c9); the
	// standby's is DefaultFwmarkBase+1.
	DefaultFwmarkBase = 457
	// DefaultRouteProtocol is the route protocol number (`proto 201`) an
	// instance tags its routes and rules with; a second failover instance
	// on the same router needs another (CheckInstances).
	DefaultRouteProtocol = 201
)

// Journal defaults. The paths contain the instance name.
const (
	// DefaultJournalDir holds the journal of each instance: DIR/INSTANCE.db.
	DefaultJournalDir = "/var/lib/imon"
	// DefaultSocketDir holds the control socket of each instance:
	// DIR/INSTANCE.sock.
	DefaultSocketDir = "/run/imon"
	// DefaultJournalMaxAge is how long journal events are kept.
	DefaultJournalMaxAge = 30 * 24 * time.Hour
	// DefaultJournalMaxBytes bounds the journal file size (64 MiB): small
	// enough for an SD card.
	DefaultJournalMaxBytes = 64 << 20
	// DefaultHistoryDays is how many days of rollups (imon report) are
	// kept; MaxHistoryDays bounds it (about 10 years, a few MiB).
	DefaultHistoryDays = 365
	MaxHistoryDays     = 3660
	// MinJournalMaxBytes is the smallest accepted max-bytes (1 MiB).
	MinJournalMaxBytes = 1 << 20
)

// MQTT and Home Assistant defaults. The default node id is
// "<hostname>-<machine tag>-<instance>" reduced to [a-zA-Z0-9_-] (other
// characters become '_'; see DefaultNodeID); the default client id is
// DefaultClientIDPrefix+node id.
const (
	DefaultTopicPrefix     = "imon"
	DefaultClientIDPrefix  = "imon-"
	DefaultMQTTCommands    = true
	DefaultKeepAlive       = 30 * time.Second
	DefaultDiscoveryPrefix = "homeassistant"
)

// DefaultDDNSProviders is the default external-IP provider list: DNS
// operators asked directly (no HTTP), then HTTP services as a fallback.
var DefaultDDNSProviders = []string{
	"dns://1.1.1.1/whoami.cloudflare?type=TXT&class=CH",
	"dns://216.239.32.10/o-o.myaddr.l.google.com?type=TXT",
	"dns://208.67.222.222/myip.opendns.com?type=A",
	"https://api.ipify.org",
	"https://ifconfig.me/ip",
	"https://icanhazip.com",
}
