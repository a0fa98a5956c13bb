package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/testbed"
)

// The crash tests SIGKILL the real agent at random moments, restart it, and
// check what a user relies on: the journal stays gap-free and is never
// found corrupt, the action script gets every action event, in order, and
// is not run again for what it already got beyond the event in flight, and
// (on the failover testbed) the host never has two default routes or none,
// and after a restart the route follows the WAN that works.
//
// Kills: 10 in the default run, 50 with IMON_FULL=1 (make test-faults).

func fltKills() int { return fltPick(10, 50) }

// fltRand returns a generator seeded from the clock; the seed is logged so
// that a failing sequence of kill moments can be looked into.
func fltRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("IMON_CRASH_SEED"); s != "" { // replay a logged sequence
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("IMON_CRASH_SEED %q: %v", s, err)
		}
		seed = n
	}
	t.Logf("random seed %d (IMON_CRASH_SEED replays it)", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

// fltNoCorrupt fails if a journal was ever moved aside in dir, or the
// journal reports a recovery.
func fltNoCorrupt(t *testing.T, dir string, evs []event.Event) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(m) > 0 {
		t.Errorf("journal moved aside as corrupt after a kill: %v", m)
	}
	if n := fltCount(evs, event.KindJournalRecovered); n > 0 {
		t.Errorf("%d journal-recovered events after kills", n)
	}
}

// TestCrashEventBurst kills the agent at random moments while the ping
// monitor journals a result every 100 ms and the action script runs for
// each one.
func TestCrashEventBurst(t *testing.T) {
	fltRequire(t)
	ns := harness.NewNS(t, "crash")
	dir := fltDir(t)
	script, calls, _, _ := fltScript(t, dir)
	cfg := writeFltConfig(t, dir, "crashburst", fmt.Sprintf(`"action": %q`, script),
		`"ping": {"enable": true, "interval": 0.1, "pingcount": 1, "pingwait": 0.5, "monitorip": "127.0.0.1"}`)
	kills := fltKills()
	t.Logf("%d kills (IMON_FULL=1 for 50)", kills)
	rng := fltRand(t)
	start := time.Now()
	for i := range kills {
		a := fltStart(t, ns.Name, cfg)
		// A random moment in the first 1.5 s: opening the journal,
		// journaling agent-start, the first results, the action backlog.
		d := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
		select {
		case <-a.done:
			t.Fatalf("kill %d: agent exited by itself: %v\n%s", i, a.err, a.Output())
		case <-time.After(d):
		}
		a.Kill()
		// A kill in the first milliseconds can come before the agent has
		// created its journal (seed 1796594807687823554: 2.7 ms): nothing
		// to check then.
		if _, err := os.Stat(filepath.Join(dir, "crashburst.db")); errors.Is(err, fs.ErrNotExist) {
			t.Logf("kill %d after %v: before the journal existed", i, d)
			continue
		}
		// The journal the next run starts from: gap-free, not corrupt.
		evs := fltJournal(t, cfg)
		fltGapFree(t, evs)
		fltNoCorrupt(t, dir, evs)
	}
	t.Logf("%d kills in %v", kills, time.Since(start).Round(time.Millisecond))

	// A last run catches up: the action backlog and the in-flight event.
	a := fltStart(t, ns.Name, cfg)
	fltWaitUntil(t, 20*time.Second, "the last agent to run and the action script to catch up", func() bool {
		st, ok := fltGetStatus(t, cfg)
		if !ok || st.Agent != "running" {
			return false
		}
		c := fltCalls(t, calls)
		return len(c) > 0 && c[len(c)-1].Seq+5 >= st.Journal.LastSeq
	})
	if err := a.Stop(); err != nil {
		t.Errorf("agent stop: %v", err)
	}
	evs := fltJournal(t, cfg)
	fltGapFree(t, evs)
	fltNoCorrupt(t, dir, evs)
	starts, results := fltCount(evs, event.KindAgentStart), fltCount(evs, event.KindPingResult)
	if starts < kills/2 || starts > kills+1 {
		t.Errorf("%d agent-start events for %d runs", starts, kills+1)
	}
	c := fltCalls(t, calls)
	dups := fltDelivery(t, evs, c, kills)
	t.Logf("journal: %d events, %d agent-start, %d ping-result, %d stop; action script: %d runs, %d repeated after a kill",
		len(evs), starts, results, fltCount(evs, event.KindAgentStop), len(c), dups)
}

// TestCrashFailover kills the agent at random moments around failovers on
// the testbed (upstream cut, carrier loss, heal), then restarts it.
func TestCrashFailover(t *testing.T) {
	fltRequire(t)
	b := testbed.New(t)
	dir := fltDir(t)
	script, calls, _, _ := fltScript(t, dir)
	cfg := writeFltConfig(t, dir, "crashfo", fmt.Sprintf(`"action": %q`, script), fltFailoverSection(1, 1, 4))
	routes := fltWatchRoutes(t, b.Host)
	kills := fltKills()
	t.Logf("%d kills (IMON_FULL=1 for 50)", kills)
	rng := fltRand(t)

	a := fltStart(t, b.Host.Name, cfg)
	fltWaitUntil(t, 20*time.Second, "the primary's default route", func() bool { return fltOneVia(routes.Current(), "wan0") })
	faulty := false // the primary's state
	start := time.Now()
	var faults []string
	for i := range kills {
		if faulty {
			b.Heal()
			faults = append(faults, "heal")
		} else if rng.IntN(2) == 0 {
			b.CutUpstream(0)
			faults = append(faults, "cut")
		} else {
			b.CarrierLoss(0)
			faults = append(faults, "carrier")
		}
		faulty = !faulty
		// Kill somewhere in detection, switch or failback hold.
		time.Sleep(time.Duration(rng.Int64N(int64(2500 * time.Millisecond)))) // the random moment itself
		a.Kill()
		if r := routes.Now(); len(r) != 1 {
			t.Errorf("kill %d (%s): default routes after the kill: %q, want exactly one", i, faults[i], r)
		}
		evs := fltJournal(t, cfg)
		fltGapFree(t, evs)
		fltNoCorrupt(t, dir, evs)
		a = fltStart(t, b.Host.Name, cfg)
		want := "wan0"
		if faulty {
			want = "wan1"
		}
		// The restarted agent settles on the WAN that works: a failback
		// waits for the hold (at most 4 s) after up-after good probes.
		deadline := time.Now().Add(20 * time.Second)
		for !fltOneVia(routes.Current(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d (%s): after the restart the default routes are %q, want one via %s", i, faults[i], routes.Current(), want)
			}
			time.Sleep(50 * time.Millisecond) // polling the kernel's routes
		}
	}
	t.Logf("%d kills around %v in %v", kills, faults, time.Since(start).Round(time.Millisecond))
	b.Heal()
	fltWaitUntil(t, 20*time.Second, "failback to the primary", func() bool { return fltOneVia(routes.Current(), "wan0") })
	fltWaitUntil(t, 20*time.Second, "the action script to catch up", func() bool {
		st, ok := fltGetStatus(t, cfg)
		c := fltCalls(t, calls)
		return ok && len(c) > 0 && st.Journal.LastSeq-c[len(c)-1].Seq < 10
	})
	if err := a.Stop(); err != nil {
		t.Errorf("agent stop: %v", err)
	}
	if r := routes.Now(); !fltOneVia(r, "wan0") {
		t.Errorf("after the last stop: default routes %q, want the primary's left in place", r)
	}
	if n := routes.maxSeen.Load(); n > 1 {
		t.Errorf("%d default routes at once seen during the test", n)
	}
	if n := routes.gone.Load(); n > 0 {
		t.Errorf("no default route at %d of %d polls (20 ms apart)", n, routes.polls.Load())
	}
	evs := fltJournal(t, cfg)
	fltGapFree(t, evs)
	fltNoCorrupt(t, dir, evs)
	c := fltCalls(t, calls)
	dups := fltDelivery(t, evs, c, kills)
	switches := fltCount(evs, event.KindFailoverPrimary) + fltCount(evs, event.KindFailoverStandby)
	t.Logf("journal: %d events, %d switches journaled, %d adoptions; kernel: %d default-route changes; action script: %d runs, %d repeated",
		len(evs), switches, fltCount(evs, "failover-adopted"), routes.changes.Load(), len(c), dups)
	if rules := b.Run(b.Host, "ip", "rule"); strings.Count(rules, "proto 201") > 0 {
		t.Errorf("probe rules left after the final clean stop:\n%s", rules)
	}
}

// writeFltConfig writes an instance config with the journal and the
// control socket in dir.
func writeFltConfig(t *testing.T, dir, instance, globalExtra, sections string) string {
	t.Helper()
	if globalExtra != "" {
		globalExtra = ", " + globalExtra
	}
	if sections != "" {
		sections += ",\n"
	}
	cfg := fmt.Sprintf(`{
  "global": {"instance": %q%s},
  %s  "journal": {"path": %q, "socket": %q}
}
`, instance, globalExtra, sections, filepath.Join(dir, instance+".db"), filepath.Join(dir, instance+".sock"))
	return harness.WriteFile(t, dir, "imon-"+instance, cfg, 0o600)
}

// fltFailoverSection is a failover section for the testbed: interval in
// seconds, pingcount 2, pingwait 1, the internet target through each WAN,
// failback hold and its maximum in seconds.
func fltFailoverSection(interval float64, hold, holdMax int) string {
	return fmt.Sprintf(`"failover": {
    "enable": true, "interval": %g, "pingcount": 2, "pingwait": 1,
    "prefer-primary": true, "metric": 201,
    "primary-if": %q, "primary-name": "pnet", "primary-gw": %q, "primary-ping": %q,
    "standby-if": %q, "standby-name": "snet", "standby-gw": %q, "standby-ping": %q,
    "failback-hold": %d, "failback-hold-max": %d
  }`, interval, testbed.WANIf[0], testbed.Gateway[0], testbed.Target,
		testbed.WANIf[1], testbed.Gateway[1], testbed.Target, hold, holdMax)
}
