package journal_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"imon/event"
	"imon/journal"
	"imon/journal/journaltest"
)

// crashWriter is the helper process of TestCrashSafety: several goroutines
// append to the journal at path forever, printing "ack SEQ MSG" for every
// acknowledged event and "cursor SEQ" after every acknowledged SyncCursor,
// until the test kills the process.
func crashWriter(path string) int {
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash writer:", err)
		return 1
	}
	var mu sync.Mutex // one line per write
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				n := 1 + i%3
				evs := make([]event.Event, n)
				for k := range evs {
					evs[k] = event.New("crash", "tick", fmt.Sprintf("w%d-%d-%d", w, i, k), map[string]int{"w": w, "i": i})
					if i%10 == 0 {
						evs[k] = evs[k].WithState(map[string]int{"i": i})
					}
				}
				out, err := j.Append(ctx, evs...)
				if err != nil {
					say("error %v", err)
					os.Exit(2)
				}
				for _, ev := range out {
					say("ack %d %s", ev.Seq, ev.Msg)
				}
				if w == 0 && i%5 == 0 {
					seq := out[len(out)-1].Seq
					if err := j.SyncCursor(ctx, "crash", seq); err != nil {
						say("error %v", err)
						os.Exit(2)
					}
					say("cursor %d", seq)
				}
				j.SetCursor("lazy", out[0].Seq)
			}
		})
	}
	wg.Wait()
	return 0
}

// TestCrashSafety kills a writer process with SIGKILL in mid-stream, at
// several moments, and checks after each kill that the journal opens
// without recovery, has no gap, holds every acknowledged event, and a
// cursor at least at its last acknowledged SyncCursor.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[uint64]string{}
	var cursor uint64
	for round, kill := range []int{1, 150, 1200, 40, 4000} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envCrashWriter+"="+path)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n, killed := 0, false
		for sc.Scan() {
			f := strings.SplitN(sc.Text(), " ", 3)
			switch f[0] {
			case "ack":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				acked[seq] = f[2]
				n++
			case "cursor":
				c, _ := strconv.ParseUint(f[1], 10, 64)
				cursor = max(cursor, c)
			default:
				t.Fatalf("round %d: writer says %q", round, sc.Text())
			}
			if n >= kill && !killed {
				// Lines still in the pipe were printed after their
				// acknowledgement: they count too.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		if err := cmd.Wait(); err == nil || !killed {
			t.Fatalf("round %d: writer ended by itself: %v", round, err)
		}

		checkBolt(t, path)
		j, err := journal.Open(path, journal.Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if j.Recovered() != "" {
			t.Fatalf("round %d: the file was found corrupt and moved to %s", round, j.Recovered())
		}
		journaltest.Check(t, j)
		evs, err := j.Read(1, 0)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[uint64]string{}
		for _, ev := range evs {
			stored[ev.Seq] = ev.Msg
		}
		for seq, msg := range acked {
			if stored[seq] != msg {
				t.Errorf("round %d: acknowledged event %d %q: stored as %q", round, seq, msg, stored[seq])
			}
		}
		if got := j.Cursor("crash"); got < cursor {
			t.Errorf("round %d: cursor %d, last acknowledged SyncCursor %d", round, got, cursor)
		}
		if _, ok := j.Latest("crash"); !ok {
			t.Errorf("round %d: no Latest(crash)", round)
		}
		t.Logf("round %d: killed after %d acks; %d events stored, %d acknowledged in all, cursor %d (synced %d)",
			round, n, j.LastSeq(), len(acked), j.Cursor("crash"), cursor)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkBolt runs bbolt's full consistency check (tests only: it reads the
// whole file).
func checkBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("bbolt open: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}
