package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imon/agent/outbox"
	"imon/config"
	"imon/event"
	"imon/journal"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// Monitor states as the monitors journal them (shapes of updown.State,
// ddns.State, failover.Snapshot and the ping state).
var states = map[string][]string{
	"updown": {
		`{"target":"192.0.2.1","status":"up","up":true,"since":"2025-01-01T00:00:00.000Z","outages":0}`,
		`{"target":"192.0.2.1","status":"down","up":false,"since":"2025-01-02T03:04:05.000Z","outages":1,"last_outage_start":"2025-01-02T03:04:05.000Z"}`,
	},
	"ping": {
		`{"min_ms":10,"avg_ms":11,"max_ms":12,"jitter_ms":1,"loss":0}`,
		`{"min_ms":10.1,"avg_ms":12.34,"max_ms":15,"jitter_ms":1.2,"loss":0.25}`,
	},
	"ddns": {
		`{"ip":"","agreed":null,"cgnat":false,"providers":[]}`,
		`{"ip":"203.0.113.5","changed_at":"2025-01-02T03:04:05.000Z","agreed":["a","b"],"cgnat":false,"providers":[]}`,
	},
	"failover": {
		`{"active":"primary","mode":"auto","wans":[{"role":"primary","status":"up"},{"role":"standby","status":"up"}]}`,
		`{"active":"standby","mode":"auto","wans":[{"role":"primary","status":"down"},{"role":"standby","status":"up"}]}`,
	},
}

// journalStates journals each monitor's states, interleaved with other
// events, so the latest state is not the latest event.
func journalStates(t *testing.T, j *journal.Journal) {
	t.Helper()
	for i := range 2 {
		for _, m := range allMonitors {
			ev := event.New(m, m+"-test", "state", nil).WithState(json.RawMessage(states[m][i]))
			ev.Instance = instance
			if _, err := j.Append(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			appendEvents(t, j, 3)
		}
	}
}

// waitLive waits for a live (or retained) message on topic.
func waitLive(t *testing.T, sub *mqtttest.Sub, topic string) mqtttest.Msg {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-sub.C:
			if m.Topic == topic {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on %s", topic)
		}
	}
}

const goldenDir = "../../homeassistant/testdata"

// goldenConfigs returns the discovery topics and payloads of the
// homeassistant package's golden files (same instance as these tests).
func goldenConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		component, object, _ := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".json"), ".")
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out["homeassistant/"+component+"/"+nodeID+"/"+object+"/config"] = b
	}
	return out
}

func indentJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestRetainedStateAndDiscovery reads back what a real broker retains: the
// discovery config of every entity (against the golden files), unique ids
// unique, each enabled monitor's latest journaled state, the status and the
// agent state; Home Assistant's birth makes the outbox publish discovery
// again; disabling a monitor removes its entities and its state.
func TestRetainedStateAndDiscovery(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	j := journaltest.Open(t)
	journalStates(t, j)
	ha := config.HomeAssistant{Enable: true, DiscoveryPrefix: "homeassistant"}
	agentSub := b.Subscribe(t, base+"/agent/state")
	r := run(t, mqttConfig(b.URL()), ha, allMonitors, j)
	// The agent state is published last on connect: once it is there, so
	// is the rest.
	waitLive(t, agentSub, base+"/agent/state")

	golden := goldenConfigs(t)
	got := b.Retained(t, "homeassistant/#")
	ids := map[string]string{}
	for topic, payload := range got {
		want, ok := golden[topic]
		if !ok {
			t.Errorf("unexpected retained discovery topic %s", topic)
			continue
		}
		if g := indentJSON(t, payload); !bytes.Equal(g, want) {
			t.Errorf("%s differs from its golden file:\n%s", topic, g)
		}
		var p struct {
			UniqueID string `json:"unique_id"`
		}
		_ = json.Unmarshal(payload, &p)
		if prev, dup := ids[p.UniqueID]; dup {
			t.Errorf("unique_id %s on %s and %s", p.UniqueID, prev, topic)
		}
		ids[p.UniqueID] = topic
	}
	for topic := range golden {
		if _, ok := got[topic]; !ok {
			t.Errorf("discovery %s not retained", topic)
		}
	}

	ret := b.Retained(t, base+"/#")
	for _, m := range allMonitors {
		if g, want := string(ret[base+"/"+m+"/state"]), states[m][1]; g != want {
			t.Errorf("retained %s state %s, want the latest %s", m, g, want)
		}
	}
	if s := string(ret[base+"/status"]); s != "online" {
		t.Errorf("status %q", s)
	}
	var as struct {
		Version  string `json:"version"`
		Instance string `json:"instance"`
	}
	if err := json.Unmarshal(ret[base+"/agent/state"], &as); err != nil || as.Version != version || as.Instance != instance {
		t.Errorf("agent state %s (%v)", ret[base+"/agent/state"], err)
	}

	// A state journaled now is published (the latest, retained).
	newer := `{"target":"192.0.2.1","status":"up","up":true,"since":"2025-01-03T00:00:00.000Z","outages":1}`
	stateSub := b.Subscribe(t, base+"/updown/state")
	waitLive(t, stateSub, base+"/updown/state") // the retained one
	ev := event.New("updown", "updown-online", "up", nil).WithState(json.RawMessage(newer))
	if _, err := j.Append(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if m := waitLive(t, stateSub, base+"/updown/state"); string(m.Payload) != newer {
		t.Errorf("updown state %s, want %s", m.Payload, newer)
	}

	// Home Assistant's birth: discovery is published again.
	live := b.Subscribe(t, "homeassistant/+/+/+/config")
	live.Sync(10 * time.Second) // the retained ones
	live.Publish("homeassistant/status", []byte("online"), false)
	again := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(again) < len(golden) {
		select {
		case m := <-live.C:
			if golden[m.Topic] != nil && len(m.Payload) > 0 {
				again[m.Topic] = true
			}
		case <-deadline:
			t.Fatalf("after the birth message %d of %d discovery configs were published again", len(again), len(golden))
		}
	}

	// Disable ping: its entities and its state disappear.
	r.stop()
	agentSub2 := b.Subscribe(t, base+"/agent/state")
	agentSub2.Sync(10 * time.Second) // skip the retained one
	run(t, mqttConfig(b.URL()), ha, []string{"updown", "ddns", "failover"}, j)
	waitLive(t, agentSub2, base+"/agent/state")
	got = b.Retained(t, "homeassistant/#")
	for topic := range golden {
		_, retained := got[topic]
		if isPing := strings.Contains(topic, "/ping_"); retained == isPing {
			t.Errorf("%s retained=%v after disabling ping", topic, retained)
		}
	}
	if _, ok := b.Retained(t, base+"/#")[base+"/ping/state"]; ok {
		t.Error("the state of the disabled ping monitor is still retained")
	}
}

// TestAgentStateProblem: BASE/agent/state carries the agent's degraded
// state (WithHealth), republished as soon as HealthChanged is called.
func TestAgentStateProblem(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	j := journaltest.Open(t)
	var mu sync.Mutex
	problems := []string(nil)
	health := func() (bool, []string) {
		mu.Lock()
		defer mu.Unlock()
		return len(problems) > 0, problems
	}
	sub := b.Subscribe(t, base+"/agent/state")
	r := run(t, mqttConfig(b.URL()), config.HomeAssistant{}, allMonitors, j, outbox.WithHealth(health))
	type state struct {
		Problem  bool     `json:"problem"`
		Problems []string `json:"problems"`
	}
	read := func(m mqtttest.Msg) state {
		var s state
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			t.Fatalf("agent state %q: %v", m.Payload, err)
		}
		return s
	}
	if s := read(waitLive(t, sub, base+"/agent/state")); s.Problem || len(s.Problems) != 0 {
		t.Fatalf("healthy agent state %+v", s)
	}
	mu.Lock()
	problems = []string{"journal: journal not writable: read-only file system"}
	mu.Unlock()
	r.o.HealthChanged()
	if s := read(waitLive(t, sub, base+"/agent/state")); !s.Problem || len(s.Problems) != 1 || !strings.Contains(s.Problems[0], "read-only") {
		t.Errorf("degraded agent state %+v", s)
	}
}
