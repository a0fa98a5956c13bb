package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
	"imon/mqtt/mqtttest"
)

// TestFaultBrokerRestarts runs the real binary (ping monitor at 100 ms with
// an action script, MQTT to a real mosquitto) while the broker is killed and
// restarted 10 times in a row, each time down for a while (2 s; 5 min for
// one of them with IMON_FULL=1): the action script keeps being called
// during the outages, and afterwards the subscribers have seen every
// journaled seq, each subscriber in increasing order.
func TestFaultBrokerRestarts(t *testing.T) {
	nettest.NeedRoot(t, "network namespaces")
	mqtttest.Require(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	// The agent reaches the broker through a proxy that refuses it while a
	// new subscriber is put in place after each restart (mosquitto runs
	// without persistence: what is published before a subscriber exists is
	// gone for it).
	p := mqtttest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(b.Port))
	action, calls := harness.RecordingAction(t, dir)
	const inst = "brokerfault"
	cfg := harness.WriteFile(t, dir, "imon-"+inst, fmt.Sprintf(`{
  "global": {"instance": %q, "action": %q},
  "ping": {"enable": true, "interval": 0.1, "pingcount": 1, "pingwait": 0.5, "monitorip": "127.0.0.1"},
  "mqtt": {"enable": true, "server": %q, "node-id": %q},
  "journal": {"path": %q, "socket": %q}
}`, inst, action, p.URL(), inst, filepath.Join(dir, inst+".db"), filepath.Join(dir, inst+".sock")), 0o644)
	topic := "imon/" + inst + "/event"

	seen := map[uint64]int{}
	var last uint64 // highest seq seen by the current subscriber
	take := func(m mqtttest.Msg) {
		if m.Topic != topic {
			return
		}
		var ev event.Event
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("bad event payload %q: %v", m.Payload, err)
		}
		if ev.Seq <= last {
			t.Errorf("subscriber got seq %d after %d: out of order", ev.Seq, last)
		}
		last = ev.Seq
		seen[ev.Seq]++
	}
	// drain takes what sub received for d.
	drain := func(sub *mqtttest.Sub, d time.Duration) {
		end := time.NewTimer(d)
		defer end.Stop()
		for {
			select {
			case m := <-sub.C:
				take(m)
			case <-end.C:
				return
			}
		}
	}

	sub := b.Subscribe(t, topic)
	harness.Start(t, "", cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))

	restarts, down := 10, 2*time.Second
	long := -1
	if os.Getenv("IMON_FULL") == "1" {
		long = 5 // the sixth outage lasts 5 minutes
	}
	callsBefore := len(harness.ActionCalls(t, calls))
	for i := range restarts {
		drain(sub, 500*time.Millisecond)
		p.SetRefuse(true)
		b.Stop()
		d := down
		if i == long {
			d = 5 * time.Minute
		}
		drain(sub, d) // the outage: whatever the dead subscriber still had
		b.Restart()
		sub = b.Subscribe(t, topic)
		last = 0
		p.SetRefuse(false)
	}
	if got := len(harness.ActionCalls(t, calls)) - callsBefore; got < restarts*int(down/time.Second) {
		t.Errorf("the action script ran %d times during %d broker outages of %s: it must not depend on the broker", got, restarts, down)
	}

	// Every seq journaled up to now must reach the last subscriber or an
	// earlier one.
	target := lastSeq(t, cfg)
	if target < uint64(restarts)*10 {
		t.Fatalf("only %d events journaled: the ping monitor should have produced many more", target)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && last < target {
		drain(sub, 200*time.Millisecond)
	}
	var missing []string
	for s := uint64(1); s <= target; s++ {
		if seen[s] == 0 {
			missing = append(missing, strconv.FormatUint(s, 10))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d journaled events never reached a subscriber: %s", len(missing), target, strings.Join(missing[:min(len(missing), 40)], " "))
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d broker restarts: %d events, all delivered, %d duplicates (unacknowledged window resent)", restarts, target, dups)
}

// lastSeq is the seq of the newest event `imon journal --json` prints.
func lastSeq(t *testing.T, cfg string) uint64 {
	t.Helper()
	out, err := harness.Command(t, "", "journal", "--config", cfg, "--json").Output()
	if err != nil {
		t.Fatalf("imon journal: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var ev event.Event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil {
		t.Fatalf("imon journal: bad last line %q: %v", lines[len(lines)-1], err)
	}
	return ev.Seq
}
