// Package sdnotify tells systemd about the agent's life cycle through the
// sd_notify(3) protocol, for imon@.service (Type=notify, WatchdogSec=):
// READY=1 once the journal is open and the monitors run, WATCHDOG=1 while
// every monitor's loop answers the agent's liveness requests (a journal
// that cannot be written does not stop it: degraded but routing),
// STOPPING=1 when shutdown begins (RELOADING=1 for a reload), and STATUS=
// lines for `systemctl status` (starting with DEGRADED while the agent is
// degraded).
//
// It is a thin wrapper over github.com/coreos/go-systemd/v22/daemon. Every
// call is a no-op returning nil when the agent was not started by systemd
// (NOTIFY_SOCKET unset), so the agent calls them unconditionally; the
// variables are left in the environment (the action script gets a fixed
// environment of its own and never sees them).
package sdnotify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notify sends the given state assignments ("READY=1", "STATUS=...") in one
// datagram. It returns nil without sending when NOTIFY_SOCKET is unset.
func Notify(states ...string) error {
	msg := strings.Join(states, "\n")
	if _, err := daemon.SdNotify(false, msg); err != nil {
		return fmt.Errorf("sd_notify %q: %w", msg, err)
	}
	return nil
}

// Ready tells systemd that start-up finished (READY=1).
func Ready() error { return Notify(daemon.SdNotifyReady) }

// Stopping tells systemd that shutdown began (STOPPING=1).
func Stopping() error { return Notify(daemon.SdNotifyStopping) }

// Reloading tells systemd that a reload began (RELOADING=1 with
// MONOTONIC_USEC, as Type=notify-reload wants); READY=1 ends it.
func Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify RELOADING: %w", err)
	}
	return Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(ts.Nano()/1000, 10))
}

// Watchdog resets systemd's watchdog timer (WATCHDOG=1). Call it only while
// the agent is healthy, at least twice per [WatchdogInterval].
func Watchdog() error { return Notify(daemon.SdNotifyWatchdog) }

// Status sets the one-line status shown by `systemctl status`
// (STATUS=msg); newlines in msg are replaced by spaces.
func Status(msg string) error {
	return Notify("STATUS=" + strings.NewReplacer("\r", " ", "\n", " ").Replace(msg))
}

// WatchdogInterval returns the service's watchdog timeout (WatchdogSec=),
// or 0 when systemd expects no watchdog pings from this process.
func WatchdogInterval() (time.Duration, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("read systemd watchdog settings: %w", err)
	}
	return d, nil
}
