package journal_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"imon/event"
	"imon/journal"
)

// TestMergeFallback: the events of a fallback journal are copied to the
// end of the configured one with their times, a journal-merged event
// follows, the latest state comes from the copies, a consumer that had
// delivered all of the configured journal skips the copies it delivered on
// the fallback, one that was behind keeps its cursor, and a second merge
// of the same file copies nothing; events added to the fallback later are
// copied by the next merge, and only they.
func TestMergeFallback(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

	main, err := journal.Open(filepath.Join(dir, "main.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	mustAppend(t, main,
		event.New("agent", "agent-start", "start", nil),
		event.New("updown", "updown-online", "up", nil).WithState(map[string]any{"up": true}),
		event.New("agent", "agent-stop", "stop", nil))
	main.SetCursor("log", 3)     // delivered everything
	main.SetCursor("mqtt", 2)    // behind
	main.SetCursor("history", 3) // not carried

	fbPath := filepath.Join(dir, "fallback.db")
	fb, err := journal.Open(fbPath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fevs []event.Event
	for i, k := range []string{"agent-start", "journal-fallback", "failover-standby", "ping-result", "agent-stop"} {
		ev := event.New("failover", k, k, map[string]any{"i": i})
		ev.Time = t0.Add(time.Duration(i) * time.Second)
		if k == "failover-standby" {
			ev = ev.WithState(map[string]any{"active": "standby"})
		}
		fevs = append(fevs, ev)
	}
	mustAppend(t, fb, fevs...)
	for name, seq := range map[string]uint64{"log": 3, "mqtt": 5, "action": 5, "history": 5} {
		if err := fb.SyncCursor(ctx, name, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := fb.Close(); err != nil {
		t.Fatal(err)
	}

	carry := []string{"log", "mqtt", "action"}
	res, err := main.Merge(ctx, fbPath, carry)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 5 || res.Already || !res.From.Equal(t0) || !res.To.Equal(t0.Add(4*time.Second)) {
		t.Errorf("merge result %+v, want 5 events from %v to %v", res, t0, t0.Add(4*time.Second))
	}
	evs := mustRead(t, main, 4, 0)
	if len(evs) != 6 {
		t.Fatalf("after the merge: %d events after the 3 of the journal, want 5 copies and journal-merged: %v", len(evs), kinds(evs))
	}
	for i, ev := range evs[:5] {
		if ev.Seq != uint64(4+i) || ev.Kind != fevs[i].Kind || !ev.Time.Equal(fevs[i].Time) || string(ev.Data) != string(fevs[i].Data) {
			t.Errorf("copy %d: seq %d %s at %v data %s, want seq %d %s at %v data %s",
				i, ev.Seq, ev.Kind, ev.Time, ev.Data, 4+i, fevs[i].Kind, fevs[i].Time, fevs[i].Data)
		}
	}
	merged := evs[5]
	var data struct {
		Fallback string `json:"fallback"`
		Events   int    `json:"events"`
	}
	if err := json.Unmarshal(merged.Data, &data); err != nil || merged.Kind != event.KindJournalMerged || merged.Monitor != "agent" ||
		data.Fallback != fbPath || data.Events != 5 {
		t.Errorf("last event %s/%s %s (%v), want agent/journal-merged of %s with 5 events", merged.Monitor, merged.Kind, merged.Data, err, fbPath)
	}
	if ev, ok := main.Latest("failover"); !ok || ev.Seq != 6 {
		t.Errorf("latest failover state at seq %d (%v), want the copy at 6", ev.Seq, ok)
	}
	wantCursors := map[string]uint64{"log": 6, "mqtt": 2, "action": 0, "history": 3}
	for name, want := range wantCursors {
		if got := main.Cursor(name); got != want {
			t.Errorf("cursor %q = %d, want %d", name, got, want)
		}
	}

	again, err := main.Merge(ctx, fbPath, carry)
	if err != nil || !again.Already || again.Events != 0 || main.LastSeq() != 9 {
		t.Errorf("second merge: %+v, %v, last seq %d; want already merged, nothing copied, last seq 9", again, err, main.LastSeq())
	}

	// A later degraded run adds to the same fallback: only that is copied.
	fb, err = journal.Open(fbPath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, fb, event.New("failover", "failover-primary", "back", nil), event.New("agent", "agent-stop", "stop", nil))
	if err := fb.Close(); err != nil {
		t.Fatal(err)
	}
	more, err := main.Merge(ctx, fbPath, carry)
	if err != nil || more.Already || more.Events != 2 {
		t.Fatalf("merge of the grown fallback: %+v, %v; want 2 events copied", more, err)
	}
	if got := kinds(mustRead(t, main, 10, 0)); len(got) != 3 || got[0] != "failover-primary" || got[2] != event.KindJournalMerged {
		t.Errorf("after the second merge: %v, want failover-primary, agent-stop, journal-merged", got)
	}

	// Everything is durable: cursors and progress survive a reopen.
	if err := main.Close(); err != nil {
		t.Fatal(err)
	}
	main, err = journal.Open(filepath.Join(dir, "main.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := main.Cursor("log"); got != 6 {
		t.Errorf("cursor log after reopen = %d, want 6", got)
	}
	if res, err := main.Merge(ctx, fbPath, carry); err != nil || !res.Already {
		t.Errorf("merge after reopen: %+v, %v; want already merged", res, err)
	}
}

// TestMergeEmptyOrLocked: an empty fallback has nothing to copy, one held
// by a running agent is an error that names it, and nothing is copied.
func TestMergeEmptyOrLocked(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	main, err := journal.Open(filepath.Join(dir, "main.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	empty := filepath.Join(dir, "empty.db")
	e, err := journal.Open(empty, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if res, err := main.Merge(ctx, empty, nil); err != nil || res.Events != 0 || main.LastSeq() != 0 {
		t.Errorf("merge of an empty fallback: %+v, %v, last seq %d", res, err, main.LastSeq())
	}
	busy := filepath.Join(dir, "busy.db")
	b, err := journal.Open(busy, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustAppend(t, b, event.New("agent", "agent-start", "start", nil))
	_, err = main.Merge(ctx, busy, nil)
	if err == nil || !errors.Is(err, journal.ErrLocked) {
		t.Errorf("merge of a fallback in use: %v, want ErrLocked", err)
	}
	if main.LastSeq() != 0 {
		t.Errorf("a failed merge journaled %d events", main.LastSeq())
	}
}
