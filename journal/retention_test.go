package journal_test

import (
	"context"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"imon/event"
	"imon/journal"
	"imon/journal/journaltest"
)

func TestRetentionByAge(t *testing.T) {
	clock := newClock(t0)
	j := journaltest.Open(t, journal.Options{Now: clock.Now, MaxAge: time.Hour})
	ctx := context.Background()
	batch := func(n int) {
		for i := range n {
			mustAppend(t, j, sampleEvent(i))
		}
	}
	batch(4)                                                                                                       // 1-4 at t0
	mustAppend(t, j, event.New("ddns", "ddns-ip-update", "", nil).WithState(map[string]string{"ip": "192.0.2.9"})) // 5 at t0
	batch(5)                                                                                                       // 6-10 at t0
	clock.Add(30 * time.Minute)
	batch(10) // 11-20 at t0+30m
	clock.Add(20 * time.Minute)
	batch(10) // 21-30 at t0+50m

	if n, err := j.Retain(ctx); err != nil || n != 0 {
		t.Fatalf("Retain with nothing old = %d, %v", n, err)
	}
	clock.Set(t0.Add(70 * time.Minute)) // cutoff t0+10m: 1-10 expire
	if n, err := j.Retain(ctx); err != nil || n != 10 {
		t.Fatalf("Retain = %d, %v, want 10", n, err)
	}
	if j.FirstSeq() != 11 || j.LastSeq() != 30 || j.Stats().Events != 20 {
		t.Errorf("after retention: FirstSeq %d LastSeq %d Events %d, want 11 30 20", j.FirstSeq(), j.LastSeq(), j.Stats().Events)
	}
	if got := seqs(mustRead(t, j, 1, 3)); !reflect.DeepEqual(got, []uint64{11, 12, 13}) {
		t.Errorf("Read(1, 3) after retention = %v, want [11 12 13] (starts at FirstSeq)", got)
	}
	if got, err := j.SeqAt(t0); err != nil || got != 11 {
		t.Errorf("SeqAt(t0) = %d, %v, want 11", got, err)
	}
	if ev, ok := j.Latest("ddns"); !ok || ev.Seq != 5 || string(ev.State) != `{"ip":"192.0.2.9"}` {
		t.Errorf("Latest(ddns) after its event expired = %+v, %v; want seq 5 kept", ev, ok)
	}

	clock.Add(3 * time.Hour) // everything expires
	if n, err := j.Retain(ctx); err != nil || n != 20 {
		t.Fatalf("Retain = %d, %v, want 20", n, err)
	}
	if j.FirstSeq() != 31 || j.LastSeq() != 30 || j.Stats().Events != 0 {
		t.Errorf("all expired: FirstSeq %d LastSeq %d, want 31 30", j.FirstSeq(), j.LastSeq())
	}
	if ev := mustAppend(t, j, sampleEvent(1)); ev[0].Seq != 31 {
		t.Errorf("append after everything expired got seq %d, want 31", ev[0].Seq)
	}
	if _, ok := j.Latest("ddns"); !ok {
		t.Errorf("Latest(ddns) lost")
	}
}

func TestRetentionBySize(t *testing.T) {
	const maxBytes = 256 << 10
	j := journaltest.Open(t, journal.Options{MaxBytes: maxBytes})
	ctx := context.Background()
	mustAppend(t, j, event.New("updown", "updown-online", "", nil).WithState(map[string]bool{"online": true}))
	for b := range 40 {
		evs := make([]event.Event, 100)
		for i := range evs {
			evs[i] = sampleEvent(b*100 + i)
		}
		mustAppend(t, j, evs...)
	}
	before := j.Stats()
	if before.LiveBytes <= maxBytes {
		t.Fatalf("test setup: live bytes %d, want more than %d", before.LiveBytes, maxBytes)
	}
	n, err := j.Retain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := j.Stats()
	t.Logf("before: %+v", before)
	t.Logf("deleted %d, after: %+v", n, after)
	if after.LiveBytes > maxBytes {
		t.Errorf("live bytes %d after retention, want at most %d", after.LiveBytes, maxBytes)
	}
	if after.Events == 0 || after.Events >= before.Events || after.FirstSeq != before.FirstSeq+uint64(n) {
		t.Errorf("retention by size deleted %d: before %+v, after %+v", n, before, after)
	}
	if after.LiveBytes < maxBytes/2 {
		t.Errorf("retention deleted too much: %d live bytes left of %d allowed", after.LiveBytes, maxBytes)
	}
	if _, ok := j.Latest("updown"); !ok {
		t.Errorf("Latest(updown) lost to retention")
	}
}

// TestRetentionRunsByItself checks that the writer expires events without
// any call, in a synctest bubble (its clock is the fake one).
func TestRetentionRunsByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.Open(t, journal.Options{MaxAge: time.Minute})
		mustAppend(t, j, sampleEvent(1), sampleEvent(2))
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if j.FirstSeq() != 1 {
			t.Fatalf("FirstSeq %d after 30s with MaxAge 1m", j.FirstSeq())
		}
		// Passes run once a minute: by 150 s one has seen them expired.
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if j.FirstSeq() != 3 {
			t.Fatalf("FirstSeq %d 150s later with MaxAge 1m, want 3", j.FirstSeq())
		}
	})
}

// TestCursorFlushedByTimer: a SetCursor reaches the file within
// cursorFlushDelay without any append.
func TestCursorFlushedByTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.Open(t)
		synctest.Wait()
		c0 := j.Stats().Commits
		j.SetCursor("mqtt", 5)
		j.SetCursor("mqtt", 6)
		time.Sleep(journal.CursorFlushDelay - 500*time.Millisecond)
		synctest.Wait()
		if c := j.Stats().Commits; c != c0 {
			t.Fatalf("commits %d -> %d: cursor written before its delay", c0, c)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if c := j.Stats().Commits; c != c0+1 {
			t.Fatalf("commits %d -> %d, want one cursor commit", c0, c)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if c := j.Stats().Commits; c != c0+1 {
			t.Fatalf("commits %d -> %d: an idle journal keeps committing", c0, c)
		}
	})
}

// TestCursorRidesNextAppend: an event every few seconds (a ping round) and
// the consumers' cursors behind it cost one commit per event, not two: the
// cursors moved after one event are written with the next event's commit.
func TestCursorRidesNextAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.Open(t)
		synctest.Wait()
		c0 := j.Stats().Commits
		const events = 10
		for i := 1; i <= events; i++ {
			evs := mustAppend(t, j, sampleEvent(i))
			j.SetCursor("log", evs[0].Seq)
			j.SetCursor("mqtt", evs[0].Seq)
			time.Sleep(5 * time.Second)
			synctest.Wait()
		}
		if c := j.Stats().Commits - c0; c != events {
			t.Fatalf("%d events 5 s apart, each followed by cursor moves: %d commits, want %d", events, c, events)
		}
		time.Sleep(journal.CursorFlushDelay)
		synctest.Wait()
		if c := j.Stats().Commits - c0; c != events+1 {
			t.Fatalf("after the last event: %d commits, want %d (the last cursors flushed by the timer)", c, events+1)
		}
	})
}
