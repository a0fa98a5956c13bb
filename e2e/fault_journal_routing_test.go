package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"imon/event"
	"imon/internal/testbed"
)

// TestFaultJournalRouting (issue 10, "done means"): the journal faults of
// fault_journal_test.go, on the two-WAN testbed with failover: after the
// journal file of the running agent is truncated, or has a page in its
// middle overwritten with garbage, an upstream cut of the active WAN still
// switches the default route within fdkSwitch, `imon status` answers, the
// events after the fault are journaled (seqs go on), and SIGTERM ends the
// agent within fdkStop leaving no rules or tables behind.
func TestFaultJournalRouting(t *testing.T) {
	fltRequire(t)
	for _, tc := range []struct {
		name  string
		fault func(t *testing.T, path string)
	}{
		{"truncated", func(t *testing.T, path string) {
			if out, err := exec.Command("truncate", "-s", "0", path).CombinedOutput(); err != nil {
				t.Fatalf("truncate: %v %s", err, out)
			}
		}},
		{"damaged-page", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			junk := make([]byte, 4096)
			for i := range junk {
				junk[i] = byte(0xA5 ^ i)
			}
			// A page past bbolt's two meta pages, in the middle of the data.
			off := max(st.Size()/2/4096*4096, 4*4096)
			if _, err := f.WriteAt(junk, off); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testbed.New(t)
			dir := fltDir(t)
			const inst = "jroute"
			cfg := fdkConfig(t, dir, dir, inst, 0.2)
			socket := filepath.Join(dir, inst+".sock")
			path := filepath.Join(dir, inst+".db")
			routes := fltWatchRoutes(t, b.Host)
			a := fdkStartRouted(t, b, cfg, routes)
			w := fltWatch(t, cfg)
			w.WaitFor(10*time.Second, "ping results", func(ev event.Event) bool { return ev.Kind == event.KindPingResult && ev.Seq >= 10 })
			before := fltMustStatus(t, cfg).Journal.LastSeq

			tc.fault(t, path)
			fdkCut(t, b, routes)
			fdkWaitActive(t, cfg, "standby", 5*time.Second)
			if a.Exited() {
				t.Fatalf("agent exited after the journal fault:\n%s", a.Output())
			}
			after := w.Next(15*time.Second, "ping results journaled after the fault", func(ev event.Event) bool {
				return ev.Kind == event.KindPingResult && ev.Seq > before+5
			})
			if st := fltMustStatus(t, cfg); st.Journal.LastSeq < after.Seq {
				t.Errorf("imon status: last seq %d, want at least %d", st.Journal.LastSeq, after.Seq)
			}
			fdkTerm(t, b, a, socket, routes)
		})
	}
}
