package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
	"imon/journal"
)

// Journal faults of issues 10 and 11 (the journal side): a journal file
// truncated under a running agent, a reader that stalls with the file
// open when the agent starts, a damaged page while streaming, another
// program's file at journal.path. Helpers start with "fj".

// fjPingConfig is an instance with a fast ping monitor on the loopback of
// the test's namespace (events every 200 ms).
func fjPingConfig(t *testing.T, dir, instance string) string {
	return writeFltConfig(t, dir, instance, "",
		`"ping": {"enable": true, "interval": 0.2, "pingcount": 1, "pingwait": 0.5, "monitorip": "127.0.0.1"}`)
}

// fjRun runs cmd, killing it (and failing the test) if it does not end
// within limit: nothing may hang. It returns stdout, stderr and the error.
func fjRun(t *testing.T, cmd *exec.Cmd, limit time.Duration) ([]byte, []byte, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return stdout.Bytes(), stderr.Bytes(), err
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v hung (killed after %s); stderr:\n%s", cmd.Args, limit, stderr.String())
		return nil, nil, nil
	}
}

// fjDumpOnFailure makes a failed test ask the agent for a goroutine dump
// (SIGQUIT: Go prints every goroutine's stack and exits), logged with its
// output at cleanup: a hang shows where it hangs.
func fjDumpOnFailure(t *testing.T, a *fltProc) {
	t.Cleanup(func() {
		if t.Failed() && !a.Exited() {
			_ = a.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-a.done:
			case <-time.After(5 * time.Second):
			}
		}
	})
}

// fjTerm sends SIGTERM and returns how long the agent took to exit
// (failing the test past limit).
func fjTerm(t *testing.T, a *fltProc, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(limit):
		t.Errorf("agent did not end within %s of SIGTERM", limit)
		a.Kill()
	}
	return time.Since(start)
}

// TestFaultJournalTruncate (issue 10.1): `truncate -s 0` on the journal of
// a running agent. Before, bbolt panicked in the next write transaction,
// its writer lock stayed held, and the agent hung: nothing journaled,
// SIGTERM ignored. Now the writer notices, keeps the truncated file aside,
// continues in a fresh journal (seqs go on, journal-recovered says so),
// `imon status` answers, later events are journaled, SIGTERM ends the
// agent within 5 s, and the fresh file holds everything after the fault.
func TestFaultJournalTruncate(t *testing.T) {
	fltRequire(t)
	ns := harness.NewNS(t, "jtrunc")
	dir := fltDir(t)
	cfg := fjPingConfig(t, dir, "jtrunc")
	path := filepath.Join(dir, "jtrunc.db")
	a := fltStart(t, ns.Name, cfg)
	fjDumpOnFailure(t, a)
	w := fltWatch(t, cfg)
	w.WaitFor(10*time.Second, "ping results", func(ev event.Event) bool { return ev.Kind == event.KindPingResult && ev.Seq >= 5 })
	before := fltMustStatus(t, cfg).Journal.LastSeq

	if out, err := exec.Command("truncate", "-s", "0", path).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v %s", err, out)
	}
	rec := w.Next(10*time.Second, "journal-recovered after the truncation", harness.Kind(event.KindJournalRecovered))
	if rec.Seq <= before {
		t.Errorf("journal-recovered at seq %d, not after %d: seqs restarted", rec.Seq, before)
	}
	after := w.Next(10*time.Second, "ping results after the fault", func(ev event.Event) bool {
		return ev.Kind == event.KindPingResult && ev.Seq > rec.Seq+3
	})
	st := fltMustStatus(t, cfg)
	if st.Journal.LastSeq < after.Seq {
		t.Errorf("imon status: last seq %d, want at least %d", st.Journal.LastSeq, after.Seq)
	}
	asides, _ := filepath.Glob(path + ".corrupt-*")
	if len(asides) != 1 {
		t.Errorf("files aside %v, want the truncated file kept", asides)
	}
	if d := fjTerm(t, a, 5*time.Second); d < 5*time.Second {
		t.Logf("SIGTERM to exit: %s", d.Round(time.Millisecond))
	}
	evs := fltJournal(t, cfg) // the fresh file, agent stopped
	if len(evs) == 0 || evs[0].Seq != rec.Seq || evs[0].Kind != event.KindJournalRecovered {
		t.Fatalf("the fresh journal starts %s, want journal-recovered #%d", harness.Summary(evs[:min(len(evs), 3)]), rec.Seq)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 {
			t.Fatalf("gap in the fresh journal: %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
	if last := evs[len(evs)-1]; last.Kind != event.KindAgentStop {
		t.Errorf("the fresh journal ends with %s, want agent-stop", last.Kind)
	}
	t.Logf("recovered: %s", rec.Msg)
}

// fjMakeJournal writes a journal of n ping events at path (no agent).
func fjMakeJournal(t *testing.T, path string, n int) {
	t.Helper()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := 0; i < n; i += 500 {
		evs := make([]event.Event, min(500, n-i))
		for k := range evs {
			evs[k] = event.New(event.MonitorPing, event.KindPingResult, "Ping 127.0.0.1: alive min 0.1 avg 0.1 max 0.1 loss 0.0 jitter 0.0",
				map[string]any{"ip": "127.0.0.1", "i": i + k}).WithArgs("127.0.0.1:True:0.1:0.1:0.1:0.0:0.0")
		}
		if _, err := j.Append(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFaultJournalStalledReader (issue 10.3): `imon journal` of a stopped
// agent's journal (well over 64 KiB) writes into a pipe nobody reads, as
// `imon journal | less` at its first page. Before, the reader held the
// file lock while it waited, and `imon run` exited 1 ("locked by a running
// imon agent"). Now the reader holds the file only while it reads a
// batch: the agent starts at once; when the pipe is drained, the reader
// goes on through the agent and prints every event once, in order.
func TestFaultJournalStalledReader(t *testing.T) {
	fltRequire(t)
	ns := harness.NewNS(t, "jreader")
	dir := fltDir(t)
	cfg := fjPingConfig(t, dir, "jreader")
	const n = 6000 // about 600 KiB of text
	fjMakeJournal(t, filepath.Join(dir, "jreader.db"), n)

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	reader := harness.Command(t, "", "journal", "--config", cfg, "--json")
	reader.Stdout = pw
	var rerr bytes.Buffer
	reader.Stderr = &rerr
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Wait() }()
	t.Cleanup(func() { _ = reader.Process.Kill() })
	// The reader is stalled once the pipe is full.
	fltWaitUntil(t, 10*time.Second, "the reader to fill its pipe", func() bool {
		n, err := unix.IoctlGetInt(int(pr.Fd()), unix.TIOCINQ)
		return err == nil && n >= 60000
	})

	start := time.Now()
	a := fltStart(t, ns.Name, cfg)
	fltWaitUntil(t, 10*time.Second, "the agent to answer while the reader is stalled", func() bool {
		if a.Exited() {
			t.Fatalf("the agent exited while a reader stalled:\n%s", a.Output())
		}
		st, ok := fltGetStatus(t, cfg)
		return ok && st.Agent == "running"
	})
	took := time.Since(start)
	t.Logf("agent answering %s after start, with a stalled reader", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("the agent took %s to start with a stalled reader, want about a second", took)
	}

	// Drain: the reader finishes through the agent, every event once.
	var lines []event.Event
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		lines = append(lines, ev)
	}
	select {
	case err := <-readerDone:
		if err != nil {
			t.Errorf("imon journal: %v\n%s", err, rerr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("imon journal did not end after its pipe was drained")
	}
	if len(lines) < n {
		t.Fatalf("the reader printed %d events, want at least the %d of the file", len(lines), n)
	}
	for i, ev := range lines {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("line %d is seq %d: a gap or a duplicate", i+1, ev.Seq)
		}
	}
	if lines[n].Kind != event.KindAgentStart {
		t.Errorf("seq %d is %s, want the agent's agent-start after the file's events", n+1, lines[n].Kind)
	}
	fjTerm(t, a, 5*time.Second)
}

// fjCheckStream checks a JSON-lines stream: every line an event, seqs
// increasing; it returns the events.
func fjCheckStream(t *testing.T, out []byte) []event.Event {
	t.Helper()
	var evs []event.Event
	for line := range bytes.Lines(out) {
		var ev event.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("a bad line (half a JSON line?) %q: %v", line, err)
		}
		if len(evs) > 0 && ev.Seq <= evs[len(evs)-1].Seq {
			t.Fatalf("seq %d after %d", ev.Seq, evs[len(evs)-1].Seq)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestFaultJournalDamagedPage (issue 10.6): a leaf page in the middle of a
// journal is garbage. `imon journal` from the file, and `imon journal
// --follow` through the running agent, report the damaged seq range on
// stderr, skip it and go on: every line is whole JSON, the events after
// the damage arrive, nothing hangs. Before, the stream stopped mid-line
// and waited forever. The agent journals journal-damaged.
func TestFaultJournalDamagedPage(t *testing.T) {
	fltRequire(t)
	ns := harness.NewNS(t, "jdamage")
	dir := fltDir(t)
	cfg := fjPingConfig(t, dir, "jdamage")
	path := filepath.Join(dir, "jdamage.db")
	const n = 3000
	fjMakeJournal(t, path, n)
	nettest.DamageLeaf(t, path)

	// From the file (no agent).
	out, stderr, err := fjRun(t, harness.Command(t, "", "journal", "--config", cfg, "--json"), 20*time.Second)
	if err != nil {
		t.Fatalf("imon journal: %v\n%s", err, stderr)
	}
	evs := fjCheckStream(t, out)
	if !bytes.Contains(stderr, []byte("cannot be read")) || !bytes.Contains(stderr, []byte("skipped")) {
		t.Errorf("stderr does not report the damaged range:\n%s", stderr)
	}
	if len(evs) == 0 || evs[len(evs)-1].Seq != n || len(evs) >= n {
		t.Fatalf("read %d events ending at %d, want fewer than %d ending at %d", len(evs), evs[len(evs)-1].Seq, n, n)
	}
	t.Logf("file: %d events read; %s", len(evs), bytes.TrimSpace(stderr))

	// Through the running agent, following.
	a := fltStart(t, ns.Name, cfg)
	fltWaitUntil(t, 20*time.Second, "the agent to answer", func() bool {
		st, ok := fltGetStatus(t, cfg)
		return ok && st.Agent == "running"
	})
	fcmd := harness.Command(t, "", "journal", "--config", cfg, "--json", "--follow")
	var ferr nettest.Buffer
	fcmd.Stderr = &ferr
	stdout, err := fcmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fcmd.Process.Kill(); _ = fcmd.Wait() })
	got := make(chan event.Event, 1024)
	go func() {
		defer close(got)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			var ev event.Event
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				ev = event.Event{Kind: "BAD LINE " + sc.Text()}
			}
			got <- ev
		}
	}()
	deadline := time.After(20 * time.Second)
	var seen []event.Event
	damagedSeen := false
	for !damagedSeen || len(seen) == 0 || seen[len(seen)-1].Kind != event.KindPingResult || seen[len(seen)-1].Seq <= n {
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatalf("the follow stream ended:\n%s", ferr.String())
			}
			if strings.HasPrefix(ev.Kind, "BAD LINE") {
				t.Fatalf("a bad line: %s", ev.Kind)
			}
			if ev.Kind == event.KindJournalDamaged {
				damagedSeen = true
			}
			seen = append(seen, ev)
		case <-deadline:
			t.Fatalf("following through the agent: %d events, journal-damaged %v, no new ping after the damage within 20 s; stderr:\n%s", len(seen), damagedSeen, ferr.String())
		}
	}
	if !strings.Contains(ferr.String(), "cannot be read") {
		t.Errorf("--follow stderr does not report the damaged range:\n%s", ferr.String())
	}
	fjTerm(t, a, 5*time.Second)
}

// TestFaultJournalForeignFile (issue 11.6): journal.path names an SQLite
// database. Before, the agent renamed it *.corrupt-… and put a journal in
// its place, and `imon check` said OK. Now `imon check` refuses it naming
// the file; the agent never moves or writes it (it says why, naming the
// file, and starts degraded on the fallback journal).
func TestFaultJournalForeignFile(t *testing.T) {
	fltRequire(t)
	ns := harness.NewNS(t, "jforeign")
	dir := fltDir(t)
	cfg := fjPingConfig(t, dir, "jforeign")
	path := filepath.Join(dir, "jforeign.db")
	orig := append([]byte("SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20"), bytes.Repeat([]byte{0, 7, 1, 9}, 2048)...)
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := fjRun(t, harness.Command(t, "", "check", "--config", cfg), 20*time.Second)
	out := append(stdout, stderr...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("imon check: %v, want a refusal\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(path)) || !bytes.Contains(out, []byte("SQLite")) {
		t.Errorf("imon check does not name the file and what it is:\n%s", out)
	}
	a := fltStart(t, ns.Name, cfg)
	fltWaitUntil(t, 20*time.Second, "the agent to say why it does not use the file", func() bool {
		o := a.Output()
		return a.Exited() || (strings.Contains(o, path) && strings.Contains(o, "SQLite"))
	})
	if st := fdkWaitRunning(t, cfg, a); st.Journal.Configured != "" {
		t.Cleanup(func() { _ = os.Remove(st.Journal.Path) }) // the fallback journal, in /run
	} else {
		t.Errorf("imon status: journal %q, want the agent degraded on a fallback journal", st.Journal.Path)
	}
	fjTerm(t, a, 5*time.Second)
	now, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(now, orig) {
		t.Errorf("the SQLite file was changed or moved: %v", err)
	}
	if asides, _ := filepath.Glob(path + ".corrupt-*"); len(asides) > 0 {
		t.Errorf("moved aside: %v", asides)
	}
}
