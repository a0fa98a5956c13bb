package action_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"imon/agent/action"
	"imon/event"
	"imon/internal/nettest"
)

// otherUID is an unprivileged user the tests act as (no passwd entry needed).
const otherUID = 4242

// userTempDir returns a temporary directory that the unprivileged user can
// reach (t.TempDir and its parent are 0700) but not write.
func userTempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// asUser runs a shell command as otherUID in dir.
func asUser(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + action.DefaultPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as uid %d: %s: %v\n%s", otherUID, script, err, out)
	}
}

// evilScript is what the user puts in place of the action script: it
// records that it ran (and as whom).
func evilScript(marker string) string {
	return `printf '#!/bin/sh\nid -u > ` + marker + `\n' > new.sh && chmod 755 new.sh`
}

// realConsumer runs a Consumer with the real runner on a fake journal.
func realConsumer(t *testing.T, script string) (*fakeJournal, func(e event.Event)) {
	t.Helper()
	j := newFakeJournal()
	c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Action: script, Instance: "main",
		Timeout: 20 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return j, func(e event.Event) {
		t.Helper()
		out, err := j.Append(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		waitCursor(t, j, out[0].Seq)
	}
}

// TestStrictScriptInUserDirectory (issue 11.1a): a root-owned 0755 script in
// a directory owned by an unprivileged user is never run, so that the user's
// `mv -f new.sh act.sh` while the agent runs does not get their code run as
// root. Seen failing before the check: the second event ran the user's
// script as uid 0.
func TestStrictScriptInUserDirectory(t *testing.T) {
	nettest.NeedRoot(t, "to act as another user")
	base := userTempDir(t)
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(base, "root-script-ran")
	s := writeScript(t, home, "act.sh", "touch "+ran+"\n")
	marker := filepath.Join(base, "user-code-ran-as") // only root may write in base

	j, appendAndWait := realConsumer(t, s)
	appendAndWait(ev(event.MonitorUpdown, event.KindUpdownOffline, "192.0.2.1"))
	asUser(t, home, evilScript(marker)+" && mv -f new.sh act.sh")
	appendAndWait(ev(event.MonitorUpdown, event.KindUpdownOnline, "192.0.2.1", "0:00:00:03"))

	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("the user's replacement ran as uid %s", strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(ran); err == nil {
		t.Errorf("the script in the user's directory ran")
	}
	failed := j.ofKind(event.KindActionFailed)
	if len(failed) != 2 {
		t.Fatalf("want 2 action-failed events, got %+v", failed)
	}
	for _, f := range failed {
		if !strings.Contains(f.Msg, home+" is a directory owned by uid 4242") {
			t.Errorf("action-failed does not name the reason: %s", f.Msg)
		}
	}
}

// TestStrictScriptMadeWritable (issue 11.1b): after the agent started, the
// script is made world-writable and the user overwrites it: it is not run.
// Seen failing before the per-run check: the user's content ran as root.
func TestStrictScriptMadeWritable(t *testing.T) {
	nettest.NeedRoot(t, "to act as another user")
	base := userTempDir(t)
	ran := filepath.Join(base, "ran")
	s := writeScript(t, base, "act.sh", "echo x >> "+ran+"\n")
	marker := filepath.Join(base, "user-code-ran-as")

	j, appendAndWait := realConsumer(t, s)
	appendAndWait(ev(event.MonitorUpdown, event.KindUpdownOffline, "192.0.2.1"))
	if b, err := os.ReadFile(ran); err != nil || string(b) != "x\n" {
		t.Fatalf("the safe script did not run once: %q %v", b, err)
	}
	if err := os.Chmod(s, 0o777); err != nil {
		t.Fatal(err)
	}
	asUser(t, base, `printf '#!/bin/sh\nid -u > `+marker+`\n' > act.sh`)
	appendAndWait(ev(event.MonitorUpdown, event.KindUpdownOnline, "192.0.2.1", "0:00:00:03"))

	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("the user's content ran as uid %s", strings.TrimSpace(string(b)))
	}
	failed := j.ofKind(event.KindActionFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].Msg, "writable by group/others (mode 0777)") {
		t.Fatalf("want one action-failed naming the mode, got %+v", failed)
	}
}

// TestExecRunsCheckedBinary: a binary swapped (by rename) between the check
// and the start is not what runs: the open, checked file is.
func TestExecRunsCheckedBinary(t *testing.T) {
	dir := t.TempDir()
	bin, err := os.ReadFile("/bin/echo")
	if err != nil {
		t.Skip("no /bin/echo to copy")
	}
	p := filepath.Join(dir, "act")
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	swapped := false
	defer action.SetAfterCheck(func(path string) {
		n := filepath.Join(dir, "new")
		if err := os.WriteFile(n, []byte("#!/bin/sh\necho swapped\n"), 0o755); err != nil {
			t.Error(err)
		}
		if err := os.Rename(n, path); err != nil {
			t.Error(err)
		}
		swapped = true
	})()
	r := action.Exec{}.Run(t.Context(), action.Command{Argv: []string{p, "original"}, Timeout: 20 * time.Second})
	if !swapped {
		t.Fatal("the hook did not run")
	}
	if !r.OK() || r.Output != "original\n" {
		t.Errorf("ran %q (%s), want the checked binary's output \"original\"", r.Output, r.Reason())
	}
}

// TestExecKillsSetsidLeftover (issue 11.8): a child that moved to its own
// session with setsid but keeps the script's output open is killed after the
// grace period, and reported as killed. Seen failing before: it was logged
// as killed and kept running.
func TestExecKillsSetsidLeftover(t *testing.T) {
	const grace = 300 * time.Millisecond
	dir := t.TempDir()
	pidf := filepath.Join(dir, "pid")
	s := writeScript(t, dir, "escapes", "setsid sleep 300 &\necho $! > "+pidf+"\necho bye\n")
	r := action.Exec{Grace: grace}.Run(t.Context(), action.Command{Argv: []string{s}, Timeout: time.Minute})
	pid := readPid(t, pidf)
	killOnCleanup(t, pid)
	if !r.OK() || !r.Leftovers || r.Output != "bye\n" {
		t.Errorf("OK %v Leftovers %v output %q (%s)", r.OK(), r.Leftovers, r.Output, r.Reason())
	}
	if !processGone(t, pid, 5*time.Second) {
		t.Fatalf("setsid child %d holding the output survived", pid)
	}
	if !slices.Contains(r.Killed, pid) || len(r.Escaped) != 0 || r.LeftoverErr != nil || r.OutputHeld {
		t.Errorf("Killed %v Escaped %v LeftoverErr %v OutputHeld %v; want %d killed", r.Killed, r.Escaped, r.LeftoverErr, r.OutputHeld, pid)
	}
}

// TestConsumerLogsLeftoversTruthfully (issue 11.8): the log says which
// leftovers were killed and which escaped, instead of "killed" for all.
// Seen failing before: every leftover was logged as killed.
func TestConsumerLogsLeftoversTruthfully(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    action.Result
		want []string
	}{
		{"killed", action.Result{Leftovers: true, Killed: []int{101}},
			[]string{"level=WARN", "killed (its process group and every other holder of the output)", "killed_outside_group=[101]"}},
		{"escaped", action.Result{Leftovers: true, Killed: []int{101}, Escaped: []int{202}},
			[]string{"level=ERROR", "these escaped and still run", "escaped=[202]"}},
		{"unseen", action.Result{Leftovers: true, OutputHeld: true},
			[]string{"level=ERROR", "some escaped (not found in /proc)"}},
		{"unknown", action.Result{Leftovers: true, LeftoverErr: errors.New("no /proc")},
			[]string{"level=WARN", "processes outside it may still run", "no /proc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log nettest.Buffer
			j := newFakeJournal()
			c := &action.Consumer{Journal: j, Emitter: nettest.Emitter{J: j, Instance: "main"}, Action: "/x", Instance: "main",
				Runner: &fakeRunner{result: func(context.Context, action.Command) action.Result { return tc.r }},
				Logger: slog.New(slog.NewTextHandler(&log, nil))}
			stop := runConsumer(t, c)
			out, err := j.Append(t.Context(), ev(event.MonitorUpdown, event.KindUpdownOffline, "192.0.2.1"))
			if err != nil {
				t.Fatal(err)
			}
			waitCursor(t, j, out[0].Seq)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(log.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, log.String())
				}
			}
		})
	}
}

// TestExecFreezesScriptWhileItRuns (issue 11.1b, the race): a #! script
// runs by its path, so between the check and the interpreter's open, and
// while it runs, nobody may rewrite it: imon holds a read lease, and an
// open for writing fails (non-blocking) or waits for the run to end. Seen
// failing before (TestActionScriptSwapE2E, 3 of 12 runs): a chmod 777 and a
// rewrite just after the check ran the new code as root.
func TestExecFreezesScriptWhileItRuns(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	s := writeScript(t, dir, "slow", "touch "+started+"\nsleep 1\necho done\n")
	done := make(chan action.Result, 1)
	go func() {
		done <- action.Exec{}.Run(t.Context(), action.Command{Argv: []string{s}, Timeout: 20 * time.Second})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the script did not start")
		}
		time.Sleep(10 * time.Millisecond) // polling the script's own marker file
	}
	if err := os.Chmod(s, 0o777); err != nil { // a careless chmod while it runs
		t.Fatal(err)
	}
	f, err := os.OpenFile(s, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		f.Close()
		t.Fatal("the running script could be opened for writing")
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("open for writing: %v, want EWOULDBLOCK (the read lease)", err)
	}
	r := <-done
	if !r.OK() || r.Output != "done\n" {
		t.Fatalf("run: %q (%s)", r.Output, r.Reason())
	}
	// The run is over: the lease is released, and the next run is refused.
	if f, err := os.OpenFile(s, os.O_WRONLY|syscall.O_NONBLOCK, 0); err != nil {
		t.Fatalf("after the run the script is still held: %v", err)
	} else {
		f.Close()
	}
	if r := (action.Exec{}).Run(t.Context(), action.Command{Argv: []string{s}, Timeout: 20 * time.Second}); !r.Refused {
		t.Fatalf("the now world-writable script ran: %s", r.Reason())
	}
}

// TestExecRefusesScriptOpenForWriting: a script some process holds open
// for writing (opened while its mode allowed it) is refused: the checked
// content could change under the run.
func TestExecRefusesScriptOpenForWriting(t *testing.T) {
	dir := t.TempDir()
	s := writeScript(t, dir, "held", "echo ran\n")
	w, err := os.OpenFile(s, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := action.Exec{}.Run(t.Context(), action.Command{Argv: []string{s}, Timeout: 20 * time.Second})
	if !r.Refused || !strings.Contains(r.Reason(), "open for writing by another process") {
		t.Fatalf("run with a writer open: refused %v, %s", r.Refused, r.Reason())
	}
}
