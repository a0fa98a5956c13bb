package ping_test

import (
	"fmt"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/monitor"
	"imon/agent/monitor/ping"
	"imon/agent/probe/probetest"
	"imon/internal/nettest"
)

// At boot the default route comes later: rounds that find no route to the
// target are not journaled before the first reply, within
// monitor.PathGrace of the start. Once a reply was seen, or after the
// grace, a round without a route is a lost round as before.
func TestRunNoRouteAtBoot(t *testing.T) {
	noRoute := probetest.Host{SendErr: fmt.Errorf("sendto: %w", syscall.ENETUNREACH)}
	up := probetest.Host{Up: true, RTT: 5 * time.Millisecond}
	rounds := func(j *nettest.Recorder) (alive, dead int) {
		for _, ev := range j.Events() {
			var st ping.State
			if err := ev.DecodeState(&st); err != nil {
				t.Fatal(err)
			}
			if st.Alive {
				alive++
			} else {
				dead++
			}
		}
		return alive, dead
	}

	t.Run("route comes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := probetest.NewNet(1)
			n.Set(target, noRoute)
			j, cancel, done := run(t, cfg(5*time.Second, time.Second, 2), n, probetest.NewResolver(nil))
			time.Sleep(12 * time.Second) // rounds at 0, 5 and 10 s: no route
			if a, d := rounds(j); a+d != 0 {
				t.Errorf("before the route: %d rounds journaled, want none", a+d)
			}
			n.Set(target, up)
			time.Sleep(10 * time.Second) // rounds at 15 and 20 s
			n.Set(target, noRoute)
			time.Sleep(10 * time.Second) // rounds at 25 and 30 s: the route went away
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if a, d := rounds(j); a != 2 || d != 2 {
				t.Errorf("%d alive and %d lost rounds journaled, want 2 and 2 (a route lost after a reply is an outage)", a, d)
			}
		})
	})

	t.Run("never a route", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := probetest.NewNet(1)
			n.Set(target, noRoute)
			j, cancel, done := run(t, cfg(5*time.Second, time.Second, 2), n, probetest.NewResolver(nil))
			time.Sleep(monitor.PathGrace + 12*time.Second)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// Rounds at 0..25 s are in the grace; 30 (at its edge: the round
			// ends after it), 35 and 40 s are lost rounds.
			if a, d := rounds(j); a != 0 || d < 2 || d > 3 {
				t.Errorf("%d alive and %d lost rounds, want 0 and 2-3 (after the grace)", a, d)
			}
		})
	})
}
