package journal_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
)

// readAllPast reads j from seq 1 with ReadPast, as the CLI does, and
// returns the events and the damaged ranges.
func readAllPast(t *testing.T, j *journal.Journal) ([]event.Event, []*journal.Damage) {
	t.Helper()
	var evs []event.Event
	var damage []*journal.Damage
	deadline := time.Now().Add(30 * time.Second)
	for from := uint64(1); ; {
		if time.Now().After(deadline) {
			t.Fatal("ReadPast loops")
		}
		got, err := j.ReadPast(from, 500)
		var d *journal.Damage
		switch {
		case errors.As(err, &d):
			if !errors.Is(err, journal.ErrCorrupt) || d.First != from || d.Last < d.First {
				t.Fatalf("Damage %v at from %d", d, from)
			}
			damage = append(damage, d)
			from = d.Last + 1
			continue
		case err != nil:
			t.Fatalf("ReadPast(%d): %v", from, err)
		}
		if len(got) == 0 {
			return evs, damage
		}
		evs = append(evs, got...)
		from = got[len(got)-1].Seq + 1
	}
}

// TestReadPastDamagedPage: a leaf page in the middle of the file is
// garbage (issue 10.6). Read fails there; ReadPast names the damaged seq
// range, and reading goes on after it to the last event: every event is
// either read or inside the range. A read-write journal journals
// journal-damaged, once.
func TestReadPastDamagedPage(t *testing.T) {
	path := t.TempDir() + "/j.db"
	const n = 3000
	makeJournal(t, path, n) // n pings + 1 ddns event
	nettest.DamageLeaf(t, path)

	j, err := journal.Open(path, journal.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Read(1, 0); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("Read over the damaged page = %v, want ErrCorrupt", err)
	}
	evs, damage := readAllPast(t, j)
	j.Close()
	if len(damage) != 1 {
		t.Fatalf("damaged ranges %v, want one", damage)
	}
	d := damage[0]
	if d.First <= 1 || d.Last >= n+1 {
		t.Errorf("damaged range %d..%d, want one in the middle", d.First, d.Last)
	}
	if got := uint64(len(evs)) + d.Last - d.First + 1; got != n+1 {
		t.Errorf("%d events read + %d damaged = %d, want %d", len(evs), d.Last-d.First+1, got, n+1)
	}
	if evs[len(evs)-1].Seq != n+1 {
		t.Errorf("last event read %d, want %d", evs[len(evs)-1].Seq, n+1)
	}
	t.Logf("damaged: %v", d)

	// Read-write: journal-damaged once, however often the range is read.
	j, err = journal.Open(path, journal.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for range 2 {
		if _, err := j.ReadPast(d.First, 10); !errors.As(err, new(*journal.Damage)) {
			t.Fatalf("ReadPast(%d) = %v", d.First, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.Wait(ctx, n+1); err != nil {
		t.Fatalf("no journal-damaged event: %v", err)
	}
	got, err := j.Read(n+2, 0)
	if err != nil || len(got) != 1 || got[0].Kind != event.KindJournalDamaged {
		t.Fatalf("after the damaged range was read twice: %v, %v; want one journal-damaged", got, err)
	}
}
