package event

// Monitors and agent components that produce events.
const (
	MonitorUpdown   = "updown"
	MonitorPing     = "ping"
	MonitorDDNS     = "ddns"
	MonitorFailover = "failover"
	MonitorAgent    = "agent"
	MonitorMQTT     = "mqtt"
	MonitorAction   = "action"
)

// Action-script commands (docs/action.md). An event of one of these kinds
// is handed to the action script as `ACTION INSTANCE SYSLOGFLAG KIND ARGS...`.
const (
	KindUpdownOnline     = "updown-online"     // args: IP D:H:M:S
	KindUpdownOffline    = "updown-offline"    // args: IP
	KindDDNSIPUpdate     = "ddns-ip-update"    // args: NEWIP OLDIP
	KindDDNSIP6Update    = "ddns-ip6-update"   // args: NEWIP6 OLDIP6 (imon extension)
	KindDDNSNoUpdate     = "ddns-no-update"    // no args
	KindFailoverInitial  = "failover-initial"  // args: NETINFO online|offline
	KindFailoverPrimary  = "failover-primary"  // args: NETINFO
	KindFailoverStandby  = "failover-standby"  // args: NETINFO
	KindFailoverBothDown = "failover-bothdown" // args: PRIMARYINFO STANDBYINFO
	KindFailoverPostping = "failover-postping" // args: NETINFO online|offline
	KindFailoverWANUp    = "failover-wan-up"   // args: NETINFO (imon extension)
	KindFailoverWANDown  = "failover-wan-down" // args: NETINFO (imon extension)
	KindPingResult       = "ping-result"       // args: IP:ALIVE:MINRTT:AVGRTT:MAXRTT:LOSS:JITTER
)

// Agent and infrastructure kinds (never passed to the action script).
const (
	KindAgentStart       = "agent-start"
	KindAgentStop        = "agent-stop"
	KindMonitorError     = "monitor-error"      // a monitor returned an error or panicked; restarted with backoff
	KindJournalRecovered = "journal-recovered"  // a corrupt journal was moved aside (at startup, or while running: data {"path","aside","reason","continues_at"})
	KindClockJump        = "clock-jump"         // the wall clock jumped against the monotonic clock, or the last event is in the future: data {"jump_s","expected","now","reason"}
	KindJournalDamaged   = "journal-damaged"    // a range of events could not be read (damaged pages): data {"first_seq","last_seq","count","error"}
	KindFailoverCommand  = "failover-command"   // manual failover request (CLI or MQTT), data {"mode": "primary|standby|auto", "source": "..."}
	KindCommandRejected  = "command-rejected"   // a malformed or impossible command, data {"source","reason","payload"}
	KindCommandThrottled = "command-throttled"  // failover commands dropped over the command budget in one window, data {"dropped","sources","from","to","window_s"}
	KindMQTTEventTrimmed = "mqtt-event-trimmed" // an event over the broker's Maximum Packet Size was published trimmed (monitor "mqtt"), data {"seq","size","limit","trimmed","published"}
	KindActionSkipped    = "action-skipped"     // action events not run: too old when their turn came (data seq, kind, age_s; or a summary seq..last_seq, count), or deleted by journal retention / on damaged pages before the runner took them (data {"seq","last_seq","count","reason":"retention"|"damaged"})
	KindActionFailed     = "action-failed"      // the action script failed, timed out or could not start

	// The journal could not be written (read-only or full file system, a
	// deleted or damaged file, a hung write): events are logged and queued
	// in memory, routing and monitoring go on. Level error, data {error,
	// queue_max}; journaled when the journal accepts writes again, at its
	// original place and time.
	KindJournalUnwritable = "journal-unwritable"
	// The journal was written again for the settle time after an outage:
	// data {since, until, queued, dropped, error}.
	KindJournalWritable = "journal-writable"
	// The in-memory queue dropped events (its oldest) while the journal
	// could not be written: one event for all the drops before the journal
	// accepted writes again, with data {dropped,
	// kinds: {kind: count}, first, last, queue_max}, journaled in place of
	// the dropped events.
	KindEventsDropped = "events-dropped"
	// The configured journal could not be opened at start (missing
	// directory on a read-only disk, read-only file system, unusable
	// file): the agent runs on the fallback journal, data {path, fallback,
	// error}. Level error.
	KindJournalFallback = "journal-fallback"
	// At start, the events of a fallback journal (a degraded start before)
	// were copied to the end of the configured journal: data {fallback,
	// events, damaged, from, to}. Level warn when damaged ranges could not
	// be read.
	KindJournalMerged = "journal-merged"
)

var actionKinds = map[string]bool{
	KindUpdownOnline: true, KindUpdownOffline: true,
	KindDDNSIPUpdate: true, KindDDNSIP6Update: true, KindDDNSNoUpdate: true,
	KindFailoverInitial: true, KindFailoverPrimary: true, KindFailoverStandby: true,
	KindFailoverBothDown: true, KindFailoverPostping: true,
	KindFailoverWANUp: true, KindFailoverWANDown: true,
	KindPingResult: true,
}

// IsAction reports whether events of kind are handed to the action script.
func IsAction(kind string) bool { return actionKinds[kind] }

// ActionKinds lists the action-script commands in a stable order.
func ActionKinds() []string {
	return []string{
		KindUpdownOnline, KindUpdownOffline,
		KindDDNSIPUpdate, KindDDNSIP6Update, KindDDNSNoUpdate,
		KindFailoverInitial, KindFailoverPrimary, KindFailoverStandby,
		KindFailoverBothDown, KindFailoverPostping, KindFailoverWANUp, KindFailoverWANDown,
		KindPingResult,
	}
}
