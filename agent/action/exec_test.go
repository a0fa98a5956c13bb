package action_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"imon/agent/action"
	"imon/event"
)

// writeScript writes an executable shell script into dir and returns its path.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// readPid reads a pid the script wrote to path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("script did not write its child's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("bad pid %q: %v", b, err)
	}
	return pid
}

// processGone reports whether pid has exited (a zombie counts as gone),
// waiting up to wait for it through a pidfd.
func processGone(t *testing.T, pid int, wait time.Duration) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(wait.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd: %v", err)
		}
		return n > 0
	}
}

// killOnCleanup makes sure a process a test expects to survive is gone
// after the test.
func killOnCleanup(t *testing.T, pid int) {
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
}

func TestExecArgvAndEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	s := writeScript(t, dir, "imon-action", `
for a in "$0" "$@"; do printf '%s\n' "$a"; done > `+out+`.argv
env > `+out+`.env
echo "hello from the script"
`)
	t.Setenv("IMON_LEAK_CHECK", "must-not-reach-the-script")
	ev := event.New("updown", event.KindUpdownOnline, "", nil).WithArgs("192.0.2.1", "0:00:01:02")
	ev.Seq = 7
	cmd := action.Command{
		Argv: action.Args(s, "demo", true, ev),
		Env:  action.Env("demo", "", ev),
	}
	r := action.Exec{}.Run(context.Background(), cmd)
	if !r.OK() {
		t.Fatalf("run failed: %s (output %q)", r.Reason(), r.Output)
	}
	if r.Output != "hello from the script\n" || r.Dropped != 0 {
		t.Errorf("output %q dropped %d", r.Output, r.Dropped)
	}
	argv, err := os.ReadFile(out + ".argv")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{s, "demo", "1", "updown-online", "192.0.2.1", "0:00:01:02"}, "\n") + "\n"
	if string(argv) != want {
		t.Errorf("argv:\n%s\nwant:\n%s", argv, want)
	}
	envb, err := os.ReadFile(out + ".env")
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimSpace(string(envb)), "\n")
	for _, kv := range []string{"PATH=" + action.DefaultPath, "HOME=/", "LANG=C.UTF-8",
		"IMON_SEQ=7", "IMON_INSTANCE=demo", "IMON_MONITOR=updown"} {
		if !slices.Contains(env, kv) {
			t.Errorf("env lacks %s: %q", kv, env)
		}
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, `IMON_EVENT={"seq":7,`) }) {
		t.Errorf("env lacks IMON_EVENT: %q", env)
	}
	if strings.Contains(string(envb), "IMON_LEAK_CHECK") {
		t.Errorf("the agent's environment leaked into the script")
	}
}

func TestExecResults(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		body   string // "" = do not create the script
		mode   os.FileMode
		exit   int
		signal string
		output string
		reason string // substring of Reason()
		err    bool
	}{
		{name: "ok", body: "echo fine\n", exit: 0, output: "fine\n"},
		{name: "exit3", body: "echo oops >&2\necho out\nexit 3\n", exit: 3,
			output: "oops\nout\n", reason: "exit status 3"},
		{name: "signal", body: "echo dying\nkill -9 $$\n", exit: -1, signal: "killed",
			output: "dying\n", reason: "killed by signal: killed"},
		{name: "missing", exit: -1, reason: "no such file or directory", err: true},
		{name: "notexec", body: "echo never\n", mode: 0o644, exit: -1,
			reason: "not executable", err: true},
		{name: "badinterp", body: "", exit: -1, reason: "exec format error", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			switch {
			case tc.name == "badinterp":
				if err := os.WriteFile(p, []byte("not a script\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			case tc.body != "":
				writeScript(t, dir, tc.name, tc.body)
				if tc.mode != 0 {
					if err := os.Chmod(p, tc.mode); err != nil {
						t.Fatal(err)
					}
				}
			}
			r := action.Exec{}.Run(context.Background(), action.Command{Argv: []string{p}, Timeout: 20 * time.Second})
			if r.Exit != tc.exit || r.Signal != tc.signal || r.Output != tc.output || (r.Err != nil) != tc.err {
				t.Errorf("got exit %d signal %q output %q err %v; want exit %d signal %q output %q err %v",
					r.Exit, r.Signal, r.Output, r.Err, tc.exit, tc.signal, tc.output, tc.err)
			}
			if ok := tc.exit == 0 && !tc.err; r.OK() != ok {
				t.Errorf("OK() = %v, want %v", r.OK(), ok)
			}
			if !strings.Contains(r.Reason(), tc.reason) {
				t.Errorf("Reason() = %q, want it to contain %q", r.Reason(), tc.reason)
			}
		})
	}
}

// TestExecTimeoutKillsGroup: a script that hangs, with a forked grandchild,
// is killed at the timeout together with the grandchild, also when both
// ignore SIGTERM.
func TestExecTimeoutKillsGroup(t *testing.T) {
	const (
		timeout = 400 * time.Millisecond
		grace   = 300 * time.Millisecond
	)
	for _, tc := range []struct {
		name, prelude string
	}{
		{"term", ""},
		{"ignores-term", "trap '' TERM\n"}, // inherited by the grandchild: SIGKILL needed
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pidf := filepath.Join(dir, "pid")
			s := writeScript(t, dir, "hang", tc.prelude+`
sleep 300 &
echo $! > `+pidf+`
echo started
sleep 300
echo never
`)
			start := time.Now()
			r := action.Exec{Grace: grace}.Run(context.Background(), action.Command{Argv: []string{s}, Timeout: timeout})
			took := time.Since(start)
			pid := readPid(t, pidf)
			killOnCleanup(t, pid)
			if !r.TimedOut || r.OK() || r.Canceled {
				t.Errorf("TimedOut %v Canceled %v OK %v; want a timeout", r.TimedOut, r.Canceled, r.OK())
			}
			if !strings.Contains(r.Reason(), "timed out") {
				t.Errorf("reason %q", r.Reason())
			}
			if r.Output != "started\n" {
				t.Errorf("output %q", r.Output)
			}
			if took < timeout || took > timeout+2*grace+2*time.Second {
				t.Errorf("run took %s, want about %s to %s", took, timeout, timeout+2*grace)
			}
			if !processGone(t, pid, 5*time.Second) {
				t.Errorf("grandchild %d survived the timeout", pid)
			}
		})
	}
}

// TestExecLeftovers: a script that forks a sleeping child holding its output
// and exits does not keep the runner waiting: the child is killed after the
// grace period. A child that detached its output is left alone.
func TestExecLeftovers(t *testing.T) {
	const grace = 300 * time.Millisecond
	dir := t.TempDir()

	pidf := filepath.Join(dir, "pid1")
	s := writeScript(t, dir, "forks", "sleep 300 &\necho $! > "+pidf+"\necho bye\n")
	start := time.Now()
	r := action.Exec{Grace: grace}.Run(context.Background(), action.Command{Argv: []string{s}, Timeout: time.Minute})
	took := time.Since(start)
	pid := readPid(t, pidf)
	killOnCleanup(t, pid)
	if !r.OK() || !r.Leftovers || r.Output != "bye\n" {
		t.Errorf("OK %v Leftovers %v output %q (%s)", r.OK(), r.Leftovers, r.Output, r.Reason())
	}
	if took > grace+5*time.Second {
		t.Errorf("runner waited %s for a background child", took)
	}
	if !processGone(t, pid, 5*time.Second) {
		t.Errorf("background child %d holding the output survived", pid)
	}

	pidf = filepath.Join(dir, "pid2")
	s = writeScript(t, dir, "detaches", "sleep 300 >/dev/null 2>&1 &\necho $! > "+pidf+"\n")
	r = action.Exec{Grace: 10 * time.Second}.Run(context.Background(), action.Command{Argv: []string{s}, Timeout: time.Minute})
	pid = readPid(t, pidf)
	killOnCleanup(t, pid)
	if !r.OK() || r.Leftovers {
		t.Errorf("OK %v Leftovers %v (%s)", r.OK(), r.Leftovers, r.Reason())
	}
	if r.Duration > 5*time.Second {
		t.Errorf("runner waited %s for a detached child", r.Duration)
	}
	if processGone(t, pid, 0) {
		t.Errorf("detached child %d was killed", pid)
	}
}

// TestExecOutputBounded: a script flooding stdout keeps only the tail.
func TestExecOutputBounded(t *testing.T) {
	dir := t.TempDir()
	s := writeScript(t, dir, "flood", "head -c 1000000 /dev/zero | tr '\\0' x\necho\necho last line\n")
	r := action.Exec{OutputTail: 4096}.Run(context.Background(), action.Command{Argv: []string{s}, Timeout: time.Minute})
	if !r.OK() {
		t.Fatalf("run failed: %s", r.Reason())
	}
	if len(r.Output) > 4096 {
		t.Errorf("kept %d bytes, want at most 4096", len(r.Output))
	}
	if !strings.HasSuffix(r.Output, "\nlast line\n") && r.Output != "last line\n" {
		t.Errorf("tail does not end with the last line: %q", r.Output[max(0, len(r.Output)-40):])
	}
	if total := int64(len(r.Output)) + r.Dropped; total != int64(1000000+1+len("last line\n")) {
		t.Errorf("kept+dropped = %d, want every byte counted", total)
	}
}

// TestExecCanceled: when ctx ends (agent shutdown) the run is stopped and
// reported as canceled, not as a timeout.
func TestExecCanceled(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "started")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := writeScript(t, dir, "hang", "echo started > "+fifo+"\nexec sleep 300\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan action.Result, 1)
	go func() {
		done <- action.Exec{Grace: 200 * time.Millisecond}.Run(ctx, action.Command{Argv: []string{s}, Timeout: time.Minute})
	}()
	if _, err := os.ReadFile(fifo); err != nil { // returns once the script runs
		t.Fatal(err)
	}
	cancel()
	select {
	case r := <-done:
		if !r.Canceled || r.TimedOut || r.OK() || r.Signal != "terminated" {
			t.Errorf("Canceled %v TimedOut %v OK %v Signal %q", r.Canceled, r.TimedOut, r.OK(), r.Signal)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop after ctx ended")
	}

	// Already ended before the start: nothing runs.
	r := action.Exec{}.Run(ctx, action.Command{Argv: []string{s}})
	if !r.Canceled || r.OK() {
		t.Errorf("run with an ended ctx: Canceled %v OK %v", r.Canceled, r.OK())
	}
}

// BenchmarkExec measures one run of a trivial script through the real
// runner (fork/exec, process group, output pipe): the per-event overhead of
// an action script, e.g. for ping-result every interval.
func BenchmarkExec(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "noop")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho ok\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	ev := event.New("ping", event.KindPingResult, "", nil).WithArgs("192.0.2.1:True:1.0:1.0:1.0:0.0:0.0")
	cmd := action.Command{Argv: action.Args(p, "bench", false, ev), Env: action.Env("bench", "", ev)}
	start := time.Now()
	for b.Loop() {
		if r := (action.Exec{}).Run(context.Background(), cmd); !r.OK() {
			b.Fatalf("run: %s", r.Reason())
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}
