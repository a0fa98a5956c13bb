// Package journaltest opens throw-away journals for tests, and checks on
// cleanup that what they hold is a well-formed journal.
package journaltest

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"imon/journal"
)

// Open opens a fresh journal in t.TempDir() with opt (a nil Logger becomes
// one that writes to t.Output). On cleanup it checks that the events held
// have gap-free increasing seqs from FirstSeq to LastSeq (times may go
// back: the order is the seq), then closes the journal (closing it earlier in
// the test is fine).
func Open(t testing.TB, opt ...journal.Options) *journal.Journal {
	t.Helper()
	var o journal.Options
	if len(opt) > 0 {
		o = opt[0]
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return OpenPath(t, filepath.Join(t.TempDir(), "journal.db"), o)
}

// OpenPath is Open with a path of the test's choosing (an existing journal,
// for instance).
func OpenPath(t testing.TB, path string, o journal.Options) *journal.Journal {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	j, err := journal.Open(path, o)
	if err != nil {
		t.Fatalf("journaltest: open: %v", err)
	}
	t.Cleanup(func() {
		Check(t, j)
		if err := j.Close(); err != nil {
			t.Errorf("journaltest: close: %v", err)
		}
	})
	return j
}

// Check verifies the file (Journal.Verify: bbolt's full check, every
// record decodes), then seq continuity and time order of every event j
// holds, through Read. It does nothing on a closed journal.
func Check(t testing.TB, j *journal.Journal) {
	t.Helper()
	if err := j.Verify(); err != nil {
		if !errors.Is(err, journal.ErrClosed) {
			t.Errorf("journaltest: %v", err)
		}
		return
	}
	first, last := j.FirstSeq(), j.LastSeq()
	if first == 0 || first > last+1 {
		t.Errorf("journaltest: FirstSeq %d, LastSeq %d", first, last)
		return
	}
	want := first
	for want <= last {
		evs, err := j.Read(want, 4096)
		if err != nil {
			if errors.Is(err, journal.ErrClosed) {
				return
			}
			t.Errorf("journaltest: read from %d: %v", want, err)
			return
		}
		if len(evs) == 0 {
			t.Errorf("journaltest: events %d..%d missing", want, last)
			return
		}
		for _, ev := range evs {
			if ev.Seq > last {
				return
			}
			if ev.Seq != want {
				t.Errorf("journaltest: seq %d where %d was expected (gap)", ev.Seq, want)
				return
			}
			want++
		}
	}
}
