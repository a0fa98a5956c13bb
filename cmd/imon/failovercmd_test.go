package main

import (
	"strings"
	"testing"

	"imon/agent/command"
	"imon/agent/monitor/failover"
	"imon/event"
)

func failoverEv(seq uint64, kind string, data any, snap failover.Snapshot) event.Event {
	ev := event.New(event.MonitorFailover, kind, "msg "+kind, data)
	ev.Seq = seq
	ev.State = event.MustJSON(snap)
	return ev
}

func snapshot(active string, primary, standby failover.Status, reason string) failover.Snapshot {
	return failover.Snapshot{Active: active, WANs: []failover.WANSnapshot{
		{Role: "primary", Status: primary, Reason: reason}, {Role: "standby", Status: standby}}}
}

// TestFailoverJudge: `imon failover` succeeds only when the route is where
// the command asked, and says why not otherwise (it used to print
// "journaled" and exit 0 whatever happened).
func TestFailoverJudge(t *testing.T) {
	mode := func(cmd uint64, m string) map[string]any {
		return map[string]any{"mode": m, "source": "cli", "command": cmd}
	}
	for _, tc := range []struct {
		name string
		mode command.Mode
		evs  []event.Event
		ok   bool
		want string // in the message or error; "" = not done
	}{
		{"primary down", command.ModePrimary, []event.Event{
			failoverEv(11, failover.KindMode, mode(10, "primary"), snapshot("standby", failover.StatusDown, failover.StatusUp, "no reply from 192.0.2.1")),
		}, false, "primary network is down: no reply from 192.0.2.1: the default route stays via standby"},
		{"already there", command.ModeStandby, []event.Event{
			failoverEv(11, failover.KindMode, mode(10, "standby"), snapshot("standby", failover.StatusUp, failover.StatusUp, "")),
		}, true, "default route via standby"},
		{"other command's mode event ignored, then switch", command.ModePrimary, []event.Event{
			failoverEv(11, failover.KindMode, mode(9, "standby"), snapshot("standby", failover.StatusUp, failover.StatusUp, "")),
			failoverEv(12, failover.KindMode, mode(10, "primary"), snapshot("standby", failover.StatusUp, failover.StatusUp, "")),
			failoverEv(13, event.KindFailoverPrimary, nil, snapshot("primary", failover.StatusUp, failover.StatusUp, "")),
		}, true, "default route via primary"},
		{"switch failed", command.ModePrimary, []event.Event{
			failoverEv(12, failover.KindMode, mode(10, "primary"), snapshot("standby", failover.StatusUp, failover.StatusUp, "")),
			failoverEv(13, failover.KindError, nil, snapshot("standby", failover.StatusUp, failover.StatusUp, "")),
		}, false, "switching to the primary network failed"},
		{"auto", command.ModeAuto, []event.Event{
			failoverEv(12, failover.KindMode, mode(10, "auto"), snapshot("primary", failover.StatusUp, failover.StatusUp, "")),
		}, true, "mode auto"},
		{"not applied yet", command.ModePrimary, []event.Event{
			failoverEv(12, event.KindFailoverWANUp, nil, snapshot("standby", failover.StatusUp, failover.StatusUp, "")),
		}, false, ""},
	} {
		j := failoverJudge{seq: 10, mode: tc.mode}
		var done bool
		var msg string
		var err error
		for _, ev := range tc.evs {
			if done, msg, err = j.add(ev); done {
				break
			}
		}
		switch {
		case tc.want == "":
			if done {
				t.Errorf("%s: done (%q, %v), want still waiting", tc.name, msg, err)
			}
		case !done:
			t.Errorf("%s: not done", tc.name)
		case tc.ok && (err != nil || !strings.Contains(msg, tc.want)):
			t.Errorf("%s: %q, %v; want success with %q", tc.name, msg, err, tc.want)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %q, %v; want an error with %q", tc.name, msg, err, tc.want)
		}
	}
}
