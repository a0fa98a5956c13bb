// Package action runs the user's action script for journaled events, the
// contract the original imon established (docs/action.md):
//
//	ACTION INSTANCE SYSLOGFLAG COMMAND ARGS...
//
// # Basics
//
// [Args] and [Env] are pure: they turn an event into the script's argv and
// environment. A [Runner] executes one [Command]; [Exec] is the real one: the
// script is executed directly (never through a shell) in its own process
// group, with a fixed minimal environment, a timeout after which the whole
// process group gets SIGTERM and, after a grace period, SIGKILL, and its
// combined stdout and stderr captured with a bounded tail. [Consumer] follows
// the journal with its own durable cursor ("action") and hands each action
// event to the script, one at a time, in journal order.
//
// # Caveats
//
//   - Delivery is at least once: the cursor is synced only after the script
//     finished, so the event in flight when the agent crashes (or is stopped
//     while the script runs) is handed to the script again on the next start.
//     Scripts should be idempotent (the original's sample is).
//   - An event older than the consumer's MaxAge when its turn comes (after
//     the agent was down, or when a script was first configured) is not run
//     but journaled as action-skipped.
//   - A failing, hanging or missing script is journaled as action-failed and
//     the consumer moves on; it never blocks a monitor, which only appends to
//     the journal.
//   - Before every run [Exec] checks the script and every directory on its
//     path like sshd's StrictModes (internal/safepath): a script another
//     user could replace is refused (Result.Refused), never run. A binary
//     runs from the checked descriptor; a #! script by its path (its
//     interpreter opens it by name, and $0 must stay the path), which the
//     check makes unchangeable by other users.
//   - Background processes the script leaves behind in its process group are
//     killed when they keep its output open past the grace period, and always
//     when the script timed out; so is any other process still holding the
//     output (one that left the group with setsid), found through /proc by
//     the pipe it holds. Those still there after SIGKILL are reported as
//     escaped. A script that wants to leave something running must detach
//     its output (cmd >/dev/null 2>&1 &).
package action

import (
	"encoding/json"
	"strconv"

	"imon/event"
)

// DefaultPath is the fixed PATH of the action script's environment.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Args returns the script's argv for ev: ACTION INSTANCE SYSLOGFLAG COMMAND
// ARGS..., where SYSLOGFLAG is "0" when imon logs to syslog and "1" with
// --nosyslog, COMMAND is ev.Kind and ARGS are ev.Args (docs/action.md). The
// caller hands it only events for which [event.IsAction] is true.
func Args(action, instance string, nosyslog bool, ev event.Event) []string {
	flag := "0"
	if nosyslog {
		flag = "1"
	}
	argv := make([]string, 0, 4+len(ev.Args))
	argv = append(argv, action, instance, flag, ev.Kind)
	return append(argv, ev.Args...)
}

// Env returns the script's complete environment for ev: a fixed PATH
// ([DefaultPath]), HOME (home, or "/" when empty), LANG=C.UTF-8, and
// IMON_EVENT (the event as JSON), IMON_SEQ, IMON_INSTANCE and IMON_MONITOR.
// Nothing else of the agent's environment is passed on.
func Env(instance, home string, ev event.Event) []string {
	if home == "" {
		home = "/"
	}
	js, err := json.Marshal(ev)
	if err != nil { // cannot happen: Event marshals plain fields and valid RawMessages
		js = []byte("{}")
	}
	return []string{
		"PATH=" + DefaultPath,
		"HOME=" + home,
		"LANG=C.UTF-8",
		"IMON_EVENT=" + string(js),
		"IMON_SEQ=" + strconv.FormatUint(ev.Seq, 10),
		"IMON_INSTANCE=" + instance,
		"IMON_MONITOR=" + ev.Monitor,
	}
}
