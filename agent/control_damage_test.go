package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"imon/agent"
	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
)

// damagedJournal writes n events to a journal at path, closes it, and
// overwrites a leaf page in the middle of the file with junk.
func damagedJournal(t *testing.T, path string, n int) {
	t.Helper()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 500 {
		evs := make([]event.Event, 500)
		for k := range evs {
			evs[k] = event.New(event.MonitorPing, event.KindPingResult, "Ping 192.0.2.1: alive", map[string]int{"i": i + k})
		}
		if _, err := j.Append(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	nettest.DamageLeaf(t, path)
}

// TestControlStreamsPastDamage (issue 10.6): `imon journal` through the
// agent's socket on a journal with a damaged page. The agent sends one
// {"damaged": ...} line naming the range, then the events after it, and
// ends the stream; every line is whole JSON. Before, the stream stopped
// at the damage mid-line and the agent retried forever.
func TestControlStreamsPastDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j.db")
	const n = 3000
	damagedJournal(t, path, n)
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	c := &agent.Control{Path: filepath.Join(dir, "s.sock"), J: j, Status: func() any { return nil }}
	ln, err := c.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()

	conn, err := agent.Dial(ctx, c.Path, agent.Request{Cmd: "journal"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	sc := bufio.NewScanner(conn)
	var events int
	var last uint64
	var damaged *agent.DamageMsg
	for sc.Scan() {
		var probe struct {
			Damaged *agent.DamageMsg `json:"damaged"`
		}
		var line event.Event
		if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
			t.Fatalf("a bad line %q: %v", sc.Text(), err)
		}
		if probe.Damaged == nil {
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("a bad line %q: %v", sc.Text(), err)
			}
		}
		if probe.Damaged != nil {
			if damaged != nil {
				t.Fatalf("two damaged lines: %+v, %+v", damaged, probe.Damaged)
			}
			damaged = probe.Damaged
			if damaged.FirstSeq != last+1 {
				t.Errorf("damaged from %d after event %d", damaged.FirstSeq, last)
			}
			last = damaged.LastSeq
			continue
		}
		if line.Seq != last+1 {
			t.Fatalf("event %d after %d", line.Seq, last)
		}
		last = line.Seq
		events++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("stream: %v (a hang ends with the read deadline)", err)
	}
	if damaged == nil || last != n {
		t.Fatalf("stream ended at %d (want %d), damaged %+v", last, n, damaged)
	}
	t.Logf("%d events, damaged %d..%d", events, damaged.FirstSeq, damaged.LastSeq)
}
