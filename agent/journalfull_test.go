package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"imon/agent"
	"imon/event"
	"imon/journal"
	"imon/journal/journaltest"
)

// fullJournal is a real journal whose appends fail with ErrNoSpace while
// full is set, as a commit on a full disk does.
type fullJournal struct {
	*journal.Journal
	full atomic.Bool
}

func (f *fullJournal) Append(ctx context.Context, evs ...event.Event) ([]event.Event, error) {
	if f.full.Load() {
		return nil, fmt.Errorf("journal %s: commit: %w: %w", f.Path(), journal.ErrNoSpace, errors.New("no space left on device"))
	}
	return f.Journal.Append(ctx, evs...)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEmitJournalFull: while the journal has no space, Emit succeeds
// (monitors keep running), the condition is logged once, and the first
// successful append journals one journal-full event per affected monitor
// with the counts and the latest state; a manual command is refused.
func TestEmitJournalFull(t *testing.T) {
	j := &fullJournal{Journal: journaltest.Open(t)}
	var logs syncBuffer
	a := agent.New(agent.Options{Instance: "t", Journal: j, FailoverEnabled: true, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		JournalFullSettle: time.Nanosecond})
	ctx := context.Background()
	emit := func(mon, kind string, state any) event.Event {
		t.Helper()
		ev := event.New(mon, kind, kind, nil)
		if state != nil {
			ev = ev.WithState(state)
		}
		out, err := a.Emit(ctx, ev)
		if err != nil {
			t.Fatalf("Emit %s/%s: %v", mon, kind, err)
		}
		return out
	}
	if ev := emit("ping", event.KindPingResult, nil); ev.Seq != 1 {
		t.Fatalf("first event seq %d", ev.Seq)
	}
	j.full.Store(true)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if ev := emit("ping", event.KindPingResult, nil); ev.Seq != 0 {
				t.Errorf("event journaled while full: seq %d", ev.Seq)
			}
			if i == 49 {
				return
			}
			emit("failover", event.KindFailoverWANDown, map[string]int{"n": i})
		})
	}
	wg.Wait()
	emit("failover", event.KindFailoverStandby, map[string]string{"active": "standby"})
	if _, err := a.FailoverCommand(ctx, []byte("primary"), "cli"); !errors.Is(err, journal.ErrNoSpace) {
		t.Errorf("failover command while full: err %v, want ErrNoSpace", err)
	}
	if n := strings.Count(logs.String(), "journal full"); n != 1 {
		t.Errorf("journal full logged %d times, want once:\n%s", n, logs.String())
	}

	j.full.Store(false)
	if ev := emit("updown", event.KindUpdownOnline, nil); ev.Seq != 2 {
		t.Fatalf("first event after space returned: seq %d, want 2", ev.Seq)
	}
	evs, err := j.Read(3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Monitor != "failover" || evs[1].Monitor != "ping" {
		t.Fatalf("after recovery: %+v, want journal-full of failover and ping", evs)
	}
	var data struct {
		Dropped int            `json:"dropped"`
		Kinds   map[string]int `json:"kinds"`
	}
	for _, ev := range evs {
		if ev.Kind != agent.KindJournalFull || ev.Level != event.LevelWarn {
			t.Errorf("event %d: %s level %q", ev.Seq, ev.Kind, ev.Level)
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"failover": 50, "ping": 50}[ev.Monitor]
		if data.Dropped != want {
			t.Errorf("%s: dropped %d, want %d (%s)", ev.Monitor, data.Dropped, want, ev.Msg)
		}
	}
	if got := string(evs[0].State); got != `{"active":"standby"}` {
		t.Errorf("failover journal-full state %s, want the latest dropped state", got)
	}
	if st, _ := j.Latest("failover"); st.Kind != agent.KindJournalFull {
		t.Errorf("latest failover state from %s, want journal-full", st.Kind)
	}
	if !strings.Contains(logs.String(), "journal writable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	// The episode is closed: the next event is journaled alone.
	if ev := emit("updown", event.KindUpdownOffline, nil); ev.Seq != 5 {
		t.Errorf("next event seq %d, want 5", ev.Seq)
	}
}

// TestEmitJournalFullIntermittent: on a nearly full disk some appends
// succeed between failures; until appends have succeeded for the settle
// time it is one episode: logged once, no report yet, and the events that
// fit are journaled normally.
func TestEmitJournalFullIntermittent(t *testing.T) {
	j := &fullJournal{Journal: journaltest.Open(t)}
	var logs syncBuffer
	a := agent.New(agent.Options{Instance: "t", Journal: j, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		JournalFullSettle: time.Hour})
	ctx := context.Background()
	for i := range 10 {
		j.full.Store(i%2 == 0)
		ev, err := a.Emit(ctx, event.New("ping", event.KindPingResult, "r", nil))
		if err != nil {
			t.Fatal(err)
		}
		if (ev.Seq != 0) == (i%2 == 0) {
			t.Errorf("append %d: seq %d", i, ev.Seq)
		}
	}
	if j.LastSeq() != 5 {
		t.Errorf("journal at seq %d, want the 5 appends that fit", j.LastSeq())
	}
	if n := strings.Count(logs.String(), "journal full"); n != 1 {
		t.Errorf("journal full logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "writable again") {
		t.Errorf("episode ended before the settle time:\n%s", logs.String())
	}
}
