package journal_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"imon/event"
	"imon/journal"
)

// TestScanEqualsRead: Scan lends every record Read returns, in order,
// across its batches, with the same fields, from any seq (below FirstSeq:
// from FirstSeq), with a limit, and stops where the callback says.
func TestScanEqualsRead(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const n = 10000 // more than one batch
	var evs []event.Event
	for i := range n {
		ev := event.New(event.MonitorPing, event.KindPingResult, fmt.Sprintf("round %d", i), map[string]any{"i": i})
		switch i % 3 {
		case 0:
			ev = ev.WithArgs(fmt.Sprintf("192.0.2.1:True:1:%d:3:0.0:0.1", i), "second")
		case 1:
			ev = ev.WithState(map[string]any{"big": strings.Repeat("x", 1000)})
		}
		evs = append(evs, ev)
	}
	for i := 0; i < n; i += 500 {
		mustAppend(t, j, evs[i:i+500]...)
	}
	want := mustRead(t, j, 1, 0)

	scan := func(from uint64, max, stopAt int) ([]event.Event, uint64) {
		t.Helper()
		var got []event.Event
		next, err := j.Scan(from, max, func(r *journal.Record) bool {
			ev, err := r.Event()
			if err != nil {
				t.Fatal(err)
			}
			// the lent fields are the decoded ones
			var args []string
			for i := range r.NumArgs() {
				args = append(args, string(r.Arg(i)))
			}
			if r.Seq != ev.Seq || r.TimeMS != ev.Time.UnixMilli() || string(r.Monitor) != ev.Monitor ||
				string(r.Kind) != ev.Kind || string(r.Level) != ev.Level || string(r.Msg) != ev.Msg ||
				string(r.Instance) != ev.Instance || !reflect.DeepEqual(args, ev.Args) ||
				string(r.Data) != string(ev.Data) || string(r.State) != string(ev.State) || r.Arg(r.NumArgs()) != nil {
				t.Fatalf("record %d: lent fields differ from the decoded event %+v", r.Seq, ev)
			}
			got = append(got, ev)
			return len(got) != stopAt
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, next
	}
	if got, next := scan(0, 0, -1); !reflect.DeepEqual(got, want) || next != n+1 {
		t.Fatalf("scan of everything: %d events, next %d; want %d, %d", len(got), next, len(want), n+1)
	}
	if got, next := scan(4000, 5000, -1); !reflect.DeepEqual(got, want[3999:8999]) || next != 9000 {
		t.Fatalf("scan 4000+5000: %d events, next %d", len(got), next)
	}
	if got, next := scan(10, 0, 5000); !reflect.DeepEqual(got, want[9:5009]) || next != 5010 {
		t.Fatalf("scan stopped by the callback: %d events, next %d", len(got), next)
	}
	if got, next := scan(n+1, 0, -1); len(got) != 0 || next != n+1 {
		t.Fatalf("scan past the end: %d events, next %d", len(got), next)
	}
}

// TestScanCorruptRecord: a record that does not decode stops Scan with an
// error wrapping ErrCorrupt naming its seq, after the records before it.
func TestScanCorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustAppend(t, j, event.New(event.MonitorPing, event.KindPingResult, fmt.Sprint(i), nil))
	}
	j.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		k := binary.BigEndian.AppendUint64(nil, 12)
		return tx.Bucket([]byte("events")).Put(k, []byte{1, 12, 0, 9, 9})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	j, err = journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var seen []uint64
	next, err := j.Scan(1, 0, func(r *journal.Record) bool { seen = append(seen, r.Seq); return true })
	if !errors.Is(err, journal.ErrCorrupt) || len(seen) != 11 || next != 12 {
		t.Fatalf("scan over a bad record 12: err %v, %d records, next %d", err, len(seen), next)
	}
	t.Log(err)
}
