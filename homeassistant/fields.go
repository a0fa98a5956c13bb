package homeassistant

// The field names of the monitors' State JSON (event.Event.State, published
// verbatim as BASE/<monitor>/state) that the discovery templates read. The
// mapping from a monitor's state to Home Assistant lives in discovery
// (value_template), so this is the one place that must follow the monitors'
// State structs: agent/monitor/updown.State, agent/monitor/ping.State,
// agent/monitor/ddns.State and agent/monitor/failover.Snapshot;
// TestFieldsMatchMonitors checks that they do.
const (
	// updown.State
	UpdownStatus              = "status"                 // "up", "down" or "unknown"
	UpdownSince               = "since"                  // RFC 3339 UTC; when the current status began
	UpdownOutages             = "outages"                // count of outages declared so far
	UpdownLastOutageStart     = "last_outage_start"      // RFC 3339 UTC; omitted before the first outage
	UpdownLastOutageDurationS = "last_outage_duration_s" // seconds; omitted until the outage ends

	// ping State (milliseconds; loss is a fraction 0..1, as in the
	// ping-result action argument)
	PingMinMS    = "min_ms"
	PingAvgMS    = "avg_ms"
	PingMaxMS    = "max_ms"
	PingJitterMS = "jitter_ms"
	PingLoss     = "loss"

	// ddns.State
	DDNSIP        = "ip"         // "" while unknown
	DDNSIP6       = "ip6"        // omitted without IPv6 providers
	DDNSChangedAt = "changed_at" // RFC 3339 UTC; when IP was confirmed
	DDNSPrevious  = "previous"   // the address before the last change; omitted before the first change
	DDNSCGNAT     = "cgnat"      // bool

	// failover.Snapshot
	FailoverActive    = "active"   // "primary", "standby" or ""
	FailoverMode      = "mode"     // "auto", "primary" or "standby"
	FailoverBothDown  = "bothdown" // bool
	FailoverWANs      = "wans"     // list of WANSnapshot
	FailoverWANRole   = "role"     // "primary" or "standby"
	FailoverWANStatus = "status"   // "up", "down" or "unknown"

	// AgentState (BASE/agent/state, owned by this package)
	AgentVersion      = "version"
	AgentJournalBytes = "journal_bytes"
	AgentBacklog      = "backlog"
	AgentLastError    = "last_error"
	AgentProblem      = "problem"  // bool: the agent is degraded
	AgentProblems     = "problems" // list of strings: why
)
