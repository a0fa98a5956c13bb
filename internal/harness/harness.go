// Package harness runs the real imon binary for end-to-end tests: it builds
// the binary once per test process (or uses $IMON_BIN), writes configs and
// action scripts, starts the agent (optionally inside a network namespace
// through `ip netns exec`) and reads its journal back with `imon journal
// --json --follow`, so tests assert on what a user would see.
package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"imon/event"
	"imon/internal/nettest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of the imon binary: $IMON_BIN, or one built from
// this module into a temporary folder once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("IMON_BIN"); p != "" {
			binPath = p
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		// One folder per user, reused: a build goes to a temporary name and
		// is renamed into place, so concurrent test processes never see a
		// half-written binary and nothing accumulates in /tmp.
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("imon-e2e-bin-%d", os.Getuid()))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			buildErr = err
			return
		}
		// Binaries of earlier test processes that ended long ago.
		if old, _ := filepath.Glob(filepath.Join(dir, "imon-*")); len(old) > 0 {
			for _, p := range old {
				if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > 6*time.Hour {
					_ = os.Remove(p)
				}
			}
		}
		tmp, err := os.CreateTemp(dir, "imon-*.tmp")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/imon")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/imon: %v\n%s", err, out)
			return
		}
		binPath = filepath.Join(dir, fmt.Sprintf("imon-%d", os.Getpid()))
		if err := os.Rename(tmp.Name(), binPath); err != nil {
			buildErr = err
		}
	})
	if buildErr != nil {
		t.Fatalf("imon binary: %v", buildErr)
	}
	return binPath
}

// WriteFile writes content to dir/name with mode and returns the path.
func WriteFile(t testing.TB, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// RecordingAction writes an action script that appends its argv, one call
// per line with arguments separated by a tab, to the returned log file.
func RecordingAction(t testing.TB, dir string) (script, log string) {
	t.Helper()
	log = filepath.Join(dir, "action.log")
	script = WriteFile(t, dir, "action.sh", fmt.Sprintf(`#!/bin/sh
(IFS="$(printf '\t')"; echo "$*") >> %s
`, log), 0o755)
	return script, log
}

// ActionCalls reads the calls recorded by a RecordingAction script.
func ActionCalls(t testing.TB, log string) [][]string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	var calls [][]string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l != "" {
			calls = append(calls, strings.Split(l, "\t"))
		}
	}
	return calls
}

// Agent is a running imon process.
type Agent struct {
	t      testing.TB
	Config string
	cmd    *exec.Cmd
	out    *nettest.Buffer
	done   chan struct{}
	err    error
}

// Start runs `imon run --config cfg --nosyslog` (inside netns ns when ns is
// not empty). The agent is stopped with SIGTERM at test cleanup, and its
// output is logged when the test failed.
func Start(t testing.TB, ns, cfg string, extra ...string) *Agent {
	t.Helper()
	args := append([]string{"run", "--config", cfg, "--nosyslog"}, extra...)
	cmd := Command(t, ns, args...)
	a := &Agent{t: t, Config: cfg, cmd: cmd, out: &nettest.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = a.out, a.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start imon: %v", err)
	}
	go func() { a.err = cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("imon output:\n%s", a.out.String())
		}
	})
	return a
}

// Command builds an imon command, inside netns ns when ns is not empty.
func Command(t testing.TB, ns string, args ...string) *exec.Cmd {
	bin := Binary(t)
	if ns == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
}

// Output is everything the agent printed so far.
func (a *Agent) Output() string { return a.out.String() }

// Stop sends SIGTERM and waits up to 15 s (then SIGKILL).
func (a *Agent) Stop() error {
	select {
	case <-a.done:
		return a.err
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
	}
	return a.err
}

// Kill sends SIGKILL to the agent (and its process group) and waits.
func (a *Agent) Kill() {
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
}

// Done is closed when the agent exited.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Events streams the journal of cfg with `imon journal --json --follow`
// from the beginning until ctx ends.
func Events(ctx context.Context, t testing.TB, cfg string) <-chan event.Event {
	t.Helper()
	cmd := exec.CommandContext(ctx, Binary(t), "journal", "--config", cfg, "--json", "--follow")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr nettest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan event.Event, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 16<<20)
		for sc.Scan() {
			var ev event.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("imon journal printed a bad line %q: %v", sc.Text(), err)
				continue
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
			}
		}
		_ = cmd.Wait()
	}()
	return ch
}

// Watcher follows a journal and lets a test wait for events.
type Watcher struct {
	t    testing.TB
	ch   <-chan event.Event
	seen []event.Event
}

// Watch starts following cfg's journal for the rest of the test.
func Watch(t testing.TB, cfg string) *Watcher {
	ctx, cancel := context.WithCancel(context.Background())
	ch := Events(ctx, t, cfg)
	t.Cleanup(func() {
		cancel()
		// The channel closes once `imon journal` was killed and reaped: a
		// test binary that exits right after its last cleanup leaves no
		// follower behind.
		for range ch {
		}
	})
	return &Watcher{t: t, ch: ch}
}

// WaitFor returns the first event (seen before or arriving within timeout)
// that matches, or fails the test.
func (w *Watcher) WaitFor(timeout time.Duration, what string, match func(event.Event) bool) event.Event {
	w.t.Helper()
	for _, ev := range w.seen {
		if match(ev) {
			return ev
		}
	}
	return w.Next(timeout, what, match)
}

// Next returns the next event after those seen that matches, within timeout.
func (w *Watcher) Next(timeout time.Duration, what string, match func(event.Event) bool) event.Event {
	w.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-w.ch:
			if !ok {
				w.t.Fatalf("journal stream ended while waiting for %s", what)
			}
			w.seen = append(w.seen, ev)
			if match(ev) {
				return ev
			}
		case <-deadline.C:
			w.t.Fatalf("no %s within %s; events seen:\n%s", what, timeout, Summary(w.seen))
		}
	}
}

// Seen returns the events received so far.
func (w *Watcher) Seen() []event.Event { return w.seen }

// Kind matches events of a kind.
func Kind(kind string) func(event.Event) bool {
	return func(ev event.Event) bool { return ev.Kind == kind }
}

// Summary formats events one per line for failure messages.
func Summary(evs []event.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  #%d %s %s %s %s %v\n", ev.Seq, ev.Time.Format("15:04:05.000"), ev.Monitor, ev.Kind, ev.Msg, ev.Args)
	}
	return b.String()
}
