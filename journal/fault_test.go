package journal_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"imon/event"
	"imon/journal"
	"imon/journal/journaltest"
)

// appendWithin appends evs, failing the test (instead of hanging it) when
// Append does not return within d.
func appendWithin(t *testing.T, j *journal.Journal, d time.Duration, evs ...event.Event) ([]event.Event, error) {
	t.Helper()
	type result struct {
		evs []event.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		out, err := j.Append(context.Background(), evs...)
		ch <- result{out, err}
	}()
	select {
	case r := <-ch:
		return r.evs, r.err
	case <-time.After(d):
		t.Fatalf("Append did not return within %s", d)
		return nil, nil
	}
}

// stateEvent is an event that goes to the latest index.
func stateEvent(ip string) event.Event {
	return event.New("ddns", "ddns-ip-update", "", nil).WithState(map[string]string{"ip": ip})
}

// TestWriterSurvivesPanic: bbolt panics inside a write transaction (fault
// injected), rolling back cleanly. The writer reopens the file, finds it
// intact, and commits the batch again: the caller sees success, and every
// later Append works.
func TestWriterSurvivesPanic(t *testing.T) {
	j := journaltest.Open(t)
	mustAppend(t, j, sampleEvent(1))
	var panics atomic.Int32
	journal.SetTxHook(j, func(*bolt.Tx) {
		if panics.Add(1) == 1 {
			panic("injected fault")
		}
	})
	out, err := appendWithin(t, j, 5*time.Second, sampleEvent(2))
	if err != nil || out[0].Seq != 2 {
		t.Fatalf("Append after an injected panic = %v, %v; want seq 2 committed on the reopened file", out, err)
	}
	for i := range 3 {
		if out, err := appendWithin(t, j, 5*time.Second, sampleEvent(3+i)); err != nil || out[0].Seq != uint64(3+i) {
			t.Fatalf("later Append = %v, %v", out, err)
		}
	}
	if got := kinds(mustRead(t, j, 1, 0)); len(got) != 5 {
		t.Errorf("events %v, want 5 pings and no journal-recovered (the file was intact)", got)
	}
}

// TestWriterSurvivesPanicWithLockHeld: the file is truncated inside a
// write transaction, which then panics; bbolt's rollback faults on the
// missing freelist page and leaves its writer lock held (the hang of
// issue 10.1: every later Append blocked forever). The writer abandons the
// db, moves the empty file aside, and continues in a fresh journal: seqs
// go on, the latest index and cursors are kept, and journal-recovered says
// what happened.
func TestWriterSurvivesPanicWithLockHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j := journaltest.OpenPath(t, path, journal.Options{})
	mustAppend(t, j, stateEvent("192.0.2.1"), sampleEvent(2))
	if err := j.SyncCursor(context.Background(), "action", 2); err != nil {
		t.Fatal(err)
	}
	var panics atomic.Int32
	journal.SetTxHook(j, func(*bolt.Tx) {
		if panics.Add(1) == 1 {
			if err := os.Truncate(path, 0); err != nil {
				t.Error(err)
			}
			panic("injected fault after truncating the file")
		}
	})
	out, err := appendWithin(t, j, 5*time.Second, sampleEvent(3))
	if err != nil {
		t.Fatalf("Append after a panic that left bbolt's lock held: %v", err)
	}
	if out[0].Seq != 4 {
		t.Errorf("seq %d, want 4 (3 is journal-recovered)", out[0].Seq)
	}
	evs := mustRead(t, j, 1, 0)
	if got := kinds(evs); len(got) != 2 || got[0] != event.KindJournalRecovered || got[1] != "ping" {
		t.Fatalf("events in the fresh journal %v, want [journal-recovered ping]", got)
	}
	if !strings.Contains(evs[0].Msg, "moved aside") {
		t.Errorf("journal-recovered message %q does not name the aside file", evs[0].Msg)
	}
	if ev, ok := j.Latest("ddns"); !ok || ev.Seq != 1 {
		t.Errorf("Latest(ddns) = %+v, %v; want seq 1 kept", ev, ok)
	}
	if c := j.Cursor("action"); c != 2 {
		t.Errorf("cursor %d, want 2", c)
	}
	asides, _ := filepath.Glob(path + ".corrupt-*")
	if len(asides) != 1 {
		t.Errorf("aside files %v, want one (the truncated file, kept)", asides)
	}
	if _, err := appendWithin(t, j, 5*time.Second, sampleEvent(5)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// The fresh file continues the journal across a restart.
	j2 := journaltest.OpenPath(t, path, journal.Options{})
	if j2.LastSeq() != 5 || j2.FirstSeq() != 3 || j2.Cursor("action") != 2 {
		t.Errorf("reopened: first %d last %d cursor %d, want 3 5 2", j2.FirstSeq(), j2.LastSeq(), j2.Cursor("action"))
	}
	if _, ok := j2.Latest("ddns"); !ok {
		t.Errorf("Latest(ddns) lost across the restart")
	}
}

// TestFileChangedWhileOpen: the journal file is truncated, deleted or
// replaced under a running journal. The next commit notices, reopens (a
// fresh journal that continues the seqs), and journals journal-recovered.
func TestFileChangedWhileOpen(t *testing.T) {
	for name, change := range map[string]func(path string) error{
		"truncated": func(path string) error { return os.Truncate(path, 0) },
		"deleted":   os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.db")
			j := journaltest.OpenPath(t, path, journal.Options{})
			mustAppend(t, j, sampleEvent(1), sampleEvent(2))
			if err := change(path); err != nil {
				t.Fatal(err)
			}
			out, err := appendWithin(t, j, 5*time.Second, sampleEvent(3))
			if err != nil || out[0].Seq != 4 {
				t.Fatalf("Append = %v, %v; want seq 4", out, err)
			}
			evs := mustRead(t, j, 1, 0)
			if got := kinds(evs); len(got) != 2 || got[0] != event.KindJournalRecovered {
				t.Fatalf("events %v, want [journal-recovered ping]", got)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("no journal at the path after the reopen: %v", err)
			}
		})
	}
}

// TestAppendNeverWaitsForever: a writer stuck inside a transaction (a disk
// that does not answer) makes Append return ErrUnavailable within
// WriteTimeout, also with a context that never ends; once the writer has
// been stuck longer than that, Append fails at once; when the disk
// answers again, appends work.
func TestAppendNeverWaitsForever(t *testing.T) {
	const timeout = 200 * time.Millisecond
	j := journaltest.Open(t, journal.Options{WriteTimeout: timeout})
	mustAppend(t, j, sampleEvent(1))
	release := make(chan struct{})
	var blocked atomic.Bool
	journal.SetTxHook(j, func(*bolt.Tx) {
		if blocked.CompareAndSwap(false, true) {
			<-release
		}
	})
	start := time.Now()
	_, err := appendWithin(t, j, 5*time.Second, sampleEvent(2))
	if !errors.Is(err, journal.ErrUnavailable) {
		t.Fatalf("Append with a stuck writer = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("returned after %s, before WriteTimeout %s", d, timeout)
	}
	start = time.Now()
	if _, err := appendWithin(t, j, 5*time.Second, sampleEvent(3)); !errors.Is(err, journal.ErrUnavailable) {
		t.Fatalf("second Append = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("second Append took %s: it should fail at once while the writer is known to be stuck", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := j.Append(ctx, sampleEvent(4)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with an ended context = %v", err)
	}
	close(release)
	// The stuck commit completes; then appends work again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := appendWithin(t, j, 5*time.Second, sampleEvent(5))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Append after the writer came back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPanicEveryTime: a transaction that panics whatever the file (it is
// moved aside after the second panic, and the fresh journal panics too)
// fails the Append with ErrCorrupt instead of hanging, and the journal
// works again once the fault is gone, seqs continuing.
func TestPanicEveryTime(t *testing.T) {
	j := journaltest.Open(t)
	mustAppend(t, j, sampleEvent(1))
	var on atomic.Bool
	on.Store(true)
	journal.SetTxHook(j, func(*bolt.Tx) {
		if on.Load() {
			panic("injected fault, every time")
		}
	})
	if _, err := appendWithin(t, j, 5*time.Second, sampleEvent(2)); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("Append = %v, want ErrCorrupt", err)
	}
	on.Store(false)
	if out, err := appendWithin(t, j, 5*time.Second, sampleEvent(3)); err != nil || out[0].Seq != 3 {
		t.Fatalf("Append after the fault = %v, %v; want seq 3 (2 is journal-recovered)", out, err)
	}
}

// TestPanicAgainAfterReopen: the file passes Open's checks but bbolt
// panics in it again after the reopen (damage the checks do not see, such
// as a branch page: before, the first commit failed at every start, a
// restart loop). The writer moves it aside (kept) and goes on in a fresh
// journal that continues the seqs.
func TestPanicAgainAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	makeJournal(t, path, 10) // 11 events
	j := journaltest.OpenPath(t, path, journal.Options{Logger: testLogger(t)})
	var panics atomic.Int32
	journal.SetTxHook(j, func(*bolt.Tx) {
		if panics.Add(1) <= 2 {
			panic("injected: the same damage after the reopen")
		}
	})
	out, err := appendWithin(t, j, 10*time.Second, sampleEvent(1))
	if err != nil || out[0].Seq != 13 {
		t.Fatalf("Append = %v, %v; want seq 13 (12 is journal-recovered) in a fresh journal", out, err)
	}
	evs := mustRead(t, j, 1, 0)
	if got := kinds(evs); len(got) != 2 || got[0] != event.KindJournalRecovered || !strings.Contains(evs[0].Msg, "moved aside") {
		t.Fatalf("fresh journal %v (%q), want journal-recovered naming the aside file, then the event", got, evs[0].Msg)
	}
	if asides, _ := filepath.Glob(path + ".corrupt-*"); len(asides) != 1 {
		t.Errorf("aside files %v, want one", asides)
	}
}

// readWithin reads, failing the test (instead of hanging it) when Read
// does not return within d.
func readWithin(t *testing.T, j *journal.Journal, d time.Duration) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		_, err := j.Read(1, 0)
		ch <- err
	}()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("Read did not return within %s", d)
		return nil
	}
}

// TestReadFaultOnTruncatedFile: the file is truncated under an open
// journal and a reader gets there first. Its transaction faults on the
// missing meta page while bbolt holds its meta lock, which then stays
// held (seen in the e2e truncate test: readers, and then the agent's stop,
// hung). Later reads return instead of waiting forever, and the next
// Append reopens the file: a fresh journal continuing the seqs.
func TestReadFaultOnTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j := journaltest.OpenPath(t, path, journal.Options{Logger: testLogger(t)})
	mustAppend(t, j, sampleEvent(1), sampleEvent(2))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := readWithin(t, j, 5*time.Second); err == nil {
			t.Logf("read %d on the truncated file: no error", i)
		}
	}
	out, err := appendWithin(t, j, 10*time.Second, sampleEvent(3))
	if err != nil || out[0].Seq != 4 {
		t.Fatalf("Append after the truncation = %v, %v; want seq 4 (3 is journal-recovered)", out, err)
	}
	if err := readWithin(t, j, 5*time.Second); err != nil {
		t.Errorf("Read on the reopened journal: %v", err)
	}
}
