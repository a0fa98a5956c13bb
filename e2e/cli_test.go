package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
)

// These tests run the real imon binary as a user would: no root, loopback
// only, every file in a temporary folder (never /etc/default: --config is
// always given).

// cliResult is what one imon command did.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// cliTimeout bounds every command that should end by itself.
const cliTimeout = 60 * time.Second

// runIn runs bin with args (stdin may be nil), in env when not nil.
func runIn(t *testing.T, bin string, env []string, stdin io.Reader, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %q: %v\n%s", bin, args, err, r)
	}
	return r
}

// imon runs the binary under test with args.
func imon(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runIn(t, harness.Binary(t), nil, nil, args...)
}

// wantExit fails the test unless r exited with code.
func wantExit(t *testing.T, r cliResult, code int, what string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: want exit %d, got %s", what, code, r)
	}
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// writeConfig writes a config for instance with the journal and the
// control socket in dir, plus the given extra sections (JSON members,
// without a trailing comma), mode 0600.
func writeConfig(t *testing.T, dir, instance, globalExtra, sections string) string {
	t.Helper()
	if globalExtra != "" {
		globalExtra = ", " + globalExtra
	}
	if sections != "" {
		sections += ",\n"
	}
	cfg := fmt.Sprintf(`{
  "global": {"instance": %q%s},
  %s  "journal": {"path": %q, "socket": %q}
}
`, instance, globalExtra, sections, filepath.Join(dir, instance+".db"), filepath.Join(dir, instance+".sock"))
	return harness.WriteFile(t, dir, "imon-"+instance, cfg, 0o600)
}

// adaptAction rewrites the original's action path to script.
func adaptAction(t *testing.T, src, dir, script string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("/usr/local/bin/imon-action")) {
		t.Fatalf("%s does not name /usr/local/bin/imon-action", src)
	}
	b = bytes.ReplaceAll(b, []byte("/usr/local/bin/imon-action"), []byte(script))
	return harness.WriteFile(t, dir, filepath.Base(src), string(b), 0o600)
}

// TestCLICheck: imon check on good, original and broken files.
func TestCLICheck(t *testing.T) {
	dir := t.TempDir()
	script := harness.WriteFile(t, dir, "imon-action", "#!/bin/sh\n", 0o755)

	t.Run("valid", func(t *testing.T) {
		cfg := writeConfig(t, dir, "valid", fmt.Sprintf("%q: %q", "action", script), "")
		r := imon(t, "check", "--config", cfg)
		wantExit(t, r, 0, "check of a valid file")
		if want := cfg + ": OK"; !strings.HasPrefix(r.stdout, want) || len(lines(r.stdout)) != 1 {
			t.Errorf("stdout = %q, want one line starting %q", r.stdout, want)
		}
		if r.stderr != "" {
			t.Errorf("stderr = %q, want nothing", r.stderr)
		}
	})

	t.Run("original files", func(t *testing.T) {
		// The annotated README example: updown only, no interface needed.
		for _, name := range []string{"readme-annotated-example.json", "readme-annotated-commented.json"} {
			cfg := adaptAction(t, filepath.Join("..", "config", "testdata", name), dir, script)
			r := imon(t, "check", "--config", cfg)
			wantExit(t, r, 0, name)
			if !strings.HasPrefix(r.stdout, cfg+": OK (instance main; monitors: [updown])") {
				t.Errorf("%s: stdout = %q", name, r.stdout)
			}
		}
		// The file the original imon-configure wrote: it loads; only the
		// host checks complain, about the README's interfaces, which do not
		// exist here.
		cfg := adaptAction(t, filepath.Join("..", "config", "testdata", "imon-configure-output.json"), dir, script)
		r := imon(t, "check", "--config", cfg)
		wantHostProblemsOnly(t, r, cfg)
	})

	t.Run("several problems", func(t *testing.T) {
		// A folder of its own: next to the failover instance of
		// imon-configure-output.json it would overlap it too.
		cfg := harness.WriteFile(t, t.TempDir(), "imon-broken", `{
  "global": {"instance": "broken", "actoin": "/x"},
  "updown": {"enable": true, "interval": "abc", "pingcount": 0, "monitorip": "1.2.3.999"},
  "ping": {"enable": true},
  "failover": {"enable": true, "primary-if": "nosuchif0", "primary-name": "p", "primary-gw": "10.0.0.1",
               "standby-if": "nosuchif1", "standby-name": "s", "standby-gw": "10.1.0.1"}
}
`, 0o600)
		r := imon(t, "check", "--config", cfg)
		wantExit(t, r, 1, "check of a broken file")
		want := []string{
			cfg + `:2: global.actoin: unknown key (did you mean "action"?)`,
			cfg + `:3: updown.interval: `,
			cfg + `:3: updown.pingcount: `,
			cfg + `:3: updown.monitorip: `,
			cfg + `: ping.monitorip: `,
			cfg + `:5: failover.primary-if: interface "nosuchif0" does not exist`,
			cfg + `:6: failover.standby-if: interface "nosuchif1" does not exist`,
		}
		got := lines(r.stderr)
		if len(got) != len(want)+1 {
			t.Fatalf("want %d problem lines and a summary, got:\n%s", len(want), r.stderr)
		}
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || strings.HasPrefix(g, w)
			}
			if !found {
				t.Errorf("no problem line starting %q in:\n%s", w, r.stderr)
			}
		}
		if last := got[len(got)-1]; !strings.Contains(last, cfg) || !strings.Contains(last, fmt.Sprint(len(want))) {
			t.Errorf("summary line %q does not name the file and the number of problems", last)
		}
		if r.stdout != "" {
			t.Errorf("stdout = %q, want nothing", r.stdout)
		}
	})

	t.Run("two failover instances", func(t *testing.T) {
		// Instance b shares a WAN and the default ranges with instance a
		// next to it: refused, naming both instances and files.
		odir := t.TempDir()
		section := func(if0, if1 string) string {
			return fmt.Sprintf(`"failover": {"enable": true, "primary-if": %q, "primary-name": "p", "primary-gw": "192.0.2.1",
  "standby-if": %q, "standby-name": "s", "standby-gw": "192.0.2.9"}`, if0, if1)
		}
		a := writeConfig(t, odir, "a", "", section("nosuchif0", "nosuchif1"))
		b := writeConfig(t, odir, "b", "", section("nosuchif2", "nosuchif0"))
		r := imon(t, "check", "--config", b)
		wantExit(t, r, 1, "check of an overlapping second instance")
		for _, key := range []string{"standby-if", "table-base", "rule-priority", "fwmark-base", "metric", "route-protocol"} {
			want := " failover." + key + `: instance "b" `
			found := false
			for _, l := range lines(r.stderr) {
				found = found || strings.HasPrefix(l, b+":") && strings.Contains(l, want) && strings.Contains(l, `instance "a" (`+a+`)`)
			}
			if !found {
				t.Errorf("no line starting %q naming instance \"a\" (%s) in:\n%s", want, a, r.stderr)
			}
		}
	})

	t.Run("syntax error", func(t *testing.T) {
		cfg := harness.WriteFile(t, dir, "imon-syntax", "{\n  \"global\": {\"instance\": \"x\",}\n}\n", 0o600)
		r := imon(t, "check", "--config", cfg)
		wantExit(t, r, 1, "check of a file with a syntax error")
		if want := cfg + ":2:30: "; !strings.HasPrefix(r.stderr, want) {
			t.Errorf("stderr = %q, want it to start with %q (FILE:LINE:COL)", r.stderr, want)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "no", "such", "imon-file")
		r := imon(t, "check", "--config", path)
		wantExit(t, r, 1, "check of a missing file")
		if !strings.Contains(r.stderr, path) {
			t.Errorf("stderr = %q, want it to name %s", r.stderr, path)
		}
	})

	t.Run("group writable", func(t *testing.T) {
		cfg := writeConfig(t, dir, "gw", "", "")
		if err := os.Chmod(cfg, 0o664); err != nil {
			t.Fatal(err)
		}
		r := imon(t, "check", "--config", cfg)
		wantExit(t, r, 1, "check of a group-writable file")
		if want := "chmod go-w " + cfg; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "writable") {
			t.Errorf("stderr = %q, want the reason and %q", r.stderr, want)
		}
		// The agent refuses it too.
		r = imon(t, "run", "--config", cfg, "--nosyslog")
		wantExit(t, r, 1, "run with a group-writable file")
		if !strings.Contains(r.stderr, "chmod go-w "+cfg) {
			t.Errorf("run: stderr = %q, want the chmod hint", r.stderr)
		}
	})

	t.Run("help, and flags after arguments", func(t *testing.T) {
		for _, args := range [][]string{{"--help"}, {"-h"}, {"check", "-h"}, {"journal", "--help"}, {"help"}} {
			r := imon(t, args...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: imon") || r.stderr != "" {
				t.Errorf("imon %q: want exit 0 with the usage on stdout, got %s", args, r)
			}
		}
		cfg := writeConfig(t, dir, "after", "", "")
		// Flags after the positional argument are flags: this fails for
		// want of an agent (exit 1, naming the socket), not as a usage error.
		r := imon(t, "failover", "standby", "--config", cfg)
		wantExit(t, r, 1, "imon failover standby --config CFG")
		if !strings.Contains(r.stderr, filepath.Join(dir, "after.sock")) {
			t.Errorf("stderr = %q, want it to name the socket", r.stderr)
		}
		r = imon(t, "version", "--instance", "after")
		wantExit(t, r, 0, "imon version --instance after")
	})

	t.Run("usage errors", func(t *testing.T) {
		cfg := writeConfig(t, dir, "usage", "", "")
		for _, args := range [][]string{
			{"check", "--bogus"},
			{"check", "--config"},
			{"check", "--config", cfg, "extra"},
			{"journal", "--config", cfg, "--since", "yesterday"},
			{"journal", "--config", cfg, "--monitor", "PING"},
			{"failover", "--config", cfg, "sideways"},
			{"failover", "--config", cfg},
			{"version", "extra"},
			{"--nosuchflag"},
			// --instance names files: the rule of global.instance.
			{"check", "--instance", "a/b"},
			{"status", "--config", cfg, "--instance", "../../tmp/x"},
			{"failover", "--config", cfg, "--instance", "-x", "auto"},
			// After "--" everything is positional.
			{"failover", "--", "standby", "--config", cfg},
			{"check", "--config", ""},
			{"bogus"},
		} {
			r := imon(t, args...)
			if r.code != 2 || !strings.Contains(r.stderr, "usage: imon") {
				t.Errorf("imon %q: want exit 2 with the usage, got %s", args, r)
			}
		}
	})
}

// wantHostProblemsOnly checks that `imon check` of a file naming the
// README's interfaces found exactly the two missing interfaces.
func wantHostProblemsOnly(t *testing.T, r cliResult, cfg string) {
	t.Helper()
	wantExit(t, r, 1, "check of a file naming missing interfaces")
	q := regexp.QuoteMeta(cfg)
	want := []*regexp.Regexp{ // FILE:LINE: (the line depends on who wrote the file)
		regexp.MustCompile(`^` + q + `:\d+: failover.primary-if: interface "enxa0cec8003294" does not exist$`),
		regexp.MustCompile(`^` + q + `:\d+: failover.standby-if: interface "enxa0cec80380a9" does not exist$`),
		regexp.MustCompile(`^imon check: ` + q + `: 2 problem\(s\)$`),
	}
	got := lines(r.stderr)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = want[i].MatchString(got[i])
	}
	if !ok {
		t.Errorf("stderr:\n%s\nwant exactly lines matching:\n%v", r.stderr, want)
	}
}

var versionLine = regexp.MustCompile(`^imon (\S+) \(commit (\S+), (go\S+) (\w+)/(\w+)\)\n$`)

// TestCLIVersion: version, commit and Go version, stamped by -ldflags.
func TestCLIVersion(t *testing.T) {
	r := imon(t, "version")
	wantExit(t, r, 0, "imon version")
	if !versionLine.MatchString(r.stdout) {
		t.Errorf("imon version = %q, want %s", r.stdout, versionLine)
	}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "imon")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=1.2.3 -X main.commit=abc1234", "./cmd/imon")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r = runIn(t, bin, nil, nil, "version")
	wantExit(t, r, 0, "stamped imon version")
	m := versionLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("imon version = %q, want %s", r.stdout, versionLine)
	}
	if m[1] != "1.2.3" || m[2] != "abc1234" || m[3] != runtime.Version() || m[4] != runtime.GOOS || m[5] != runtime.GOARCH {
		t.Errorf("imon version = %q, want version 1.2.3, commit abc1234, %s %s/%s", r.stdout, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
}

// cliAgent is an agent started with an exact command line (harness.Start
// always adds "run").
type cliAgent struct {
	cmd  *exec.Cmd
	out  nettest.Buffer
	done chan struct{}
	err  error
}

func startAgent(t *testing.T, args ...string) *cliAgent {
	t.Helper()
	a := &cliAgent{cmd: exec.Command(harness.Binary(t), args...), done: make(chan struct{})}
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.out
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		if _, err := a.stop(); err != nil {
			t.Errorf("agent: %v", err)
		}
		if t.Failed() {
			t.Logf("agent %q output:\n%s", args, a.out.String())
		}
	})
	return a
}

// stop sends SIGTERM and returns the exit code (SIGKILL after 15 s: an
// error).
func (a *cliAgent) stop() (int, error) {
	select {
	case <-a.done:
	default:
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
			return -1, errors.New("did not stop within 15 s of SIGTERM")
		}
	}
	return a.cmd.ProcessState.ExitCode(), nil
}

// wait waits for the agent to exit by itself and returns its exit code.
func (a *cliAgent) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-a.done:
		return a.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("agent still running after %s:\n%s", timeout, a.out.String())
		return -1
	}
}

// startPiped starts cmd with its stdout as a pipe and its stderr collected.
func startPiped(t *testing.T, cmd *exec.Cmd) (io.ReadCloser, *nettest.Buffer) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(nettest.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// follower is a running `imon journal --follow`.
type follower struct {
	t     *testing.T
	lines chan string
}

func follow(t *testing.T, args ...string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, harness.Binary(t), append([]string{"journal", "--follow"}, args...)...)
	stdout, stderr := startPiped(t, cmd)
	f := &follower{t: t, lines: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(f.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		err := cmd.Wait()
		switch s := stderr.String(); {
		case s != "" && !t.Failed():
			t.Errorf("imon journal --follow %q printed on stderr (exit %v): %s", args, err, s)
		case t.Failed():
			t.Logf("imon journal --follow %q: exit %v, stderr: %s", args, err, s)
		}
	})
	return f
}

// next returns the next line that contains want.
func (f *follower) next(want string, timeout time.Duration) string {
	f.t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case l, ok := <-f.lines:
			if !ok {
				f.t.Fatalf("imon journal --follow ended while waiting for %q; it printed:\n%s", want, strings.Join(seen, "\n"))
			}
			if strings.Contains(l, want) {
				return l
			}
			seen = append(seen, l)
		case <-deadline:
			f.t.Fatalf("no line with %q within %s; seen:\n%s", want, timeout, strings.Join(seen, "\n"))
		}
	}
}

// parseEvents parses `imon journal --json` output: every line must be an
// event with the docs/events.md fields.
func parseEvents(t *testing.T, out string) []event.Event {
	t.Helper()
	var evs []event.Event
	for _, l := range lines(out) {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("imon journal --json printed a line that is not JSON: %q: %v", l, err)
		}
		for _, k := range []string{"seq", "time", "instance", "monitor", "kind", "data"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("event line without %q: %s", k, l)
			}
		}
		if d := raw["data"]; len(d) == 0 || d[0] != '{' {
			t.Errorf("event data is not an object: %s", l)
		}
		var tm string
		if err := json.Unmarshal(raw["time"], &tm); err != nil || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(tm) {
			t.Errorf("event time %s is not RFC 3339 UTC with ms", raw["time"])
		}
		var ev event.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("bad event %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Errorf("events out of order: #%d after #%d", evs[i].Seq, evs[i-1].Seq)
		}
	}
	return evs
}

func kinds(evs []event.Event) []string {
	var ks []string
	for _, ev := range evs {
		ks = append(ks, ev.Kind)
	}
	return ks
}

// journalJSON runs `imon journal --json` with extra args and parses it.
func journalJSON(t *testing.T, cfg string, extra ...string) []event.Event {
	t.Helper()
	r := imon(t, append([]string{"journal", "--config", cfg, "--json"}, extra...)...)
	wantExit(t, r, 0, fmt.Sprintf("imon journal --json %q", extra))
	if r.stderr != "" {
		t.Errorf("imon journal %q: stderr %q", extra, r.stderr)
	}
	return parseEvents(t, r.stdout)
}

// cliStatus is the part of `imon status --json` the tests read.
type cliStatus struct {
	Instance string `json:"instance"`
	Agent    string `json:"agent"`
	PID      int    `json:"pid"`
	Journal  struct {
		Path    string `json:"path"`
		LastSeq uint64 `json:"last_seq"`
	} `json:"journal"`
	Monitors map[string]json.RawMessage `json:"monitors"`
}

func status(t *testing.T, cfg string) (cliStatus, string) {
	t.Helper()
	r := imon(t, "status", "--config", cfg, "--json")
	wantExit(t, r, 0, "imon status --json")
	var st cliStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("imon status --json: %v\n%s", err, r.stdout)
	}
	r = imon(t, "status", "--config", cfg)
	wantExit(t, r, 0, "imon status")
	return st, r.stdout
}

// TestCLIAgent runs an agent on a loopback-only config (no monitor) the
// way the original was started (no "run" word) and drives journal, status
// and failover against it, then again after it stopped.
func TestCLIAgent(t *testing.T) {
	dir := t.TempDir()
	const inst = "clitest"
	cfg := writeConfig(t, dir, inst, `"datefmt": "%d/%m/%Y %H.%M.%S"`, "")
	dbPath := filepath.Join(dir, inst+".db")

	// A follower started before the agent (and its journal) exists waits
	// for it.
	early := follow(t, "--config", cfg)

	a := startAgent(t, "--instance", inst, "--nosyslog", "--config", cfg)
	w := harness.Watch(t, cfg)
	start := w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))
	early.next("agent-start", 20*time.Second)
	if start.Instance != inst || start.Monitor != event.MonitorAgent {
		t.Errorf("agent-start = %+v", start)
	}

	// journal while the agent runs (it holds the file lock): through the
	// control socket.
	evs := journalJSON(t, cfg)
	if len(evs) == 0 || evs[0].Kind != event.KindAgentStart || evs[0].Seq != start.Seq {
		t.Fatalf("journal while running: %v", kinds(evs))
	}
	var sd struct {
		CommandLine []string `json:"command_line"`
		PID         int      `json:"pid"`
	}
	if err := json.Unmarshal(evs[0].Data, &sd); err != nil {
		t.Fatal(err)
	}
	if strings.Join(sd.CommandLine[1:], " ") != "--instance "+inst+" --nosyslog --config "+cfg || sd.PID != a.cmd.Process.Pid {
		t.Errorf("agent-start data = %s", evs[0].Data)
	}
	r := imon(t, "journal", "--config", cfg)
	wantExit(t, r, 0, "imon journal")
	if l := lines(r.stdout); len(l) != len(evs) || !regexp.MustCompile(fmt.Sprintf(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} #%d agent agent-start `, start.Seq)).MatchString(l[0]) {
		t.Errorf("imon journal text:\n%s", r.stdout)
	}

	// status while running.
	st, text := status(t, cfg)
	if st.Agent != "running" || st.PID != a.cmd.Process.Pid || st.Instance != inst || st.Journal.Path != dbPath || st.Journal.LastSeq < start.Seq {
		t.Errorf("status --json while running = %+v", st)
	}
	if !strings.HasPrefix(text, fmt.Sprintf("instance %s: agent running (pid %d", inst, a.cmd.Process.Pid)) {
		t.Errorf("status while running:\n%s", text)
	}

	// failover with the failover monitor disabled: rejected, journaled,
	// exit 1 with the reason; a follower sees it live.
	live := follow(t, "--config", cfg, "--json", "--kind", event.KindCommandRejected)
	r = imon(t, "failover", "--config", cfg, "auto")
	wantExit(t, r, 1, "imon failover auto without failover monitor")
	if !strings.Contains(r.stderr, "the failover monitor is not enabled") || !regexp.MustCompile(`journaled as #\d+`).MatchString(r.stderr) {
		t.Errorf("failover stderr = %q, want the reason and the event's seq", r.stderr)
	}
	rej := w.Next(10*time.Second, "command-rejected", harness.Kind(event.KindCommandRejected))
	if !strings.Contains(r.stderr, fmt.Sprintf("#%d", rej.Seq)) {
		t.Errorf("failover stderr %q does not name #%d", r.stderr, rej.Seq)
	}
	var rd map[string]any
	if err := json.Unmarshal(rej.Data, &rd); err != nil || rd["source"] != "cli" || rd["payload"] != "auto" {
		t.Errorf("command-rejected data = %s", rej.Data)
	}
	var liveEv event.Event
	if err := json.Unmarshal([]byte(live.next(event.KindCommandRejected, 10*time.Second)), &liveEv); err != nil || liveEv.Seq != rej.Seq {
		t.Errorf("follower got %+v (%v), want #%d", liveEv, err, rej.Seq)
	}
	early.next(event.KindCommandRejected, 10*time.Second)

	// Filters.
	checkFilters := func(t *testing.T) {
		all := journalJSON(t, cfg)
		if got := journalJSON(t, cfg, "--since", "1h"); len(got) != len(all) {
			t.Errorf("--since 1h: %v, want all of %v", kinds(got), kinds(all))
		}
		if got := journalJSON(t, cfg, "--since", "2099-01-01"); len(got) != 0 {
			t.Errorf("--since 2099-01-01: %v, want nothing", kinds(got))
		}
		// Since the rejected command's own time: it and what follows.
		if got := journalJSON(t, cfg, "--since", rej.Time.Format(time.RFC3339Nano)); len(got) == 0 || got[0].Seq != rej.Seq {
			t.Errorf("--since %s: %v, want from #%d", rej.Time.Format(time.RFC3339Nano), kinds(got), rej.Seq)
		}
		if got := journalJSON(t, cfg, "--monitor", "agent"); len(got) != len(all) {
			t.Errorf("--monitor agent: %v, want all of %v", kinds(got), kinds(all))
		}
		if got := journalJSON(t, cfg, "--monitor", "updown"); len(got) != 0 {
			t.Errorf("--monitor updown: %v, want nothing", kinds(got))
		}
		got := journalJSON(t, cfg, "--kind", event.KindAgentStart)
		if len(got) == 0 {
			t.Errorf("--kind agent-start: nothing")
		}
		for _, ev := range got {
			if ev.Kind != event.KindAgentStart {
				t.Errorf("--kind agent-start printed %s", ev.Kind)
			}
		}
		if got := journalJSON(t, cfg, "--kind", event.KindCommandRejected, "--monitor", "agent"); len(got) != 1 || got[0].Seq != rej.Seq {
			t.Errorf("--kind command-rejected --monitor agent: %v", kinds(got))
		}
	}
	t.Run("filters while running", checkFilters)

	// A second agent on the same config fails fast and clearly.
	t0 := time.Now()
	second := startAgent(t, "--instance", inst, "--nosyslog", "--config", cfg)
	if code := second.wait(t, 10*time.Second); code != 1 {
		t.Errorf("second agent: exit %d, want 1", code)
	}
	if out := second.out.String(); !strings.Contains(out, "locked by a running imon agent") {
		t.Errorf("second agent said:\n%s\nwant it to say the journal is locked by a running agent", out)
	}
	t.Logf("second agent gave up after %s", time.Since(t0).Round(time.Millisecond))
	// Another journal but the same control socket: refused too.
	other := harness.WriteFile(t, dir, "imon-other", fmt.Sprintf(`{"global": {"instance": "other"},
  "journal": {"path": %q, "socket": %q}}`, filepath.Join(dir, "other.db"), filepath.Join(dir, inst+".sock")), 0o600)
	second = startAgent(t, "run", "--nosyslog", "--config", other)
	if code := second.wait(t, 10*time.Second); code != 1 {
		t.Errorf("agent on a busy socket: exit %d, want 1", code)
	}
	if out := second.out.String(); !strings.Contains(out, "another imon agent is running") {
		t.Errorf("agent on a busy socket said:\n%s", out)
	}
	// The first agent did not notice.
	if st, _ := status(t, cfg); st.Agent != "running" || st.PID != a.cmd.Process.Pid {
		t.Errorf("status after the second agents = %+v", st)
	}

	// SIGTERM: agent-stop journaled, exit 0.
	code, err := a.stop()
	if err != nil || code != 0 {
		t.Fatalf("agent stop: exit %d, %v", code, err)
	}
	stop := w.Next(10*time.Second, "agent-stop", harness.Kind(event.KindAgentStop))
	early.next(event.KindAgentStop, 10*time.Second)

	// Now the CLI reads the file itself.
	evs = journalJSON(t, cfg)
	if ks := strings.Join(kinds(evs), " "); ks != "agent-start command-rejected agent-stop" || evs[len(evs)-1].Seq != stop.Seq {
		t.Errorf("journal after stop: %s", ks)
	}
	t.Run("filters after stop", checkFilters)
	st, text = status(t, cfg)
	if st.Agent != "not running" || st.PID != 0 || st.Journal.LastSeq != stop.Seq {
		t.Errorf("status --json after stop = %+v", st)
	}
	if !strings.HasPrefix(text, fmt.Sprintf("instance %s: agent not running\n", inst)) {
		t.Errorf("status after stop:\n%s", text)
	}
	r = imon(t, "failover", "--config", cfg, "primary")
	wantExit(t, r, 1, "failover without an agent")
	if !strings.Contains(r.stderr, filepath.Join(dir, inst+".sock")) {
		t.Errorf("failover without agent: stderr %q, want it to name the socket", r.stderr)
	}

	// The follower keeps going across a restart.
	b := startAgent(t, "run", "--nosyslog", "--config", cfg)
	l := early.next(event.KindAgentStart, 20*time.Second)
	if !strings.Contains(l, fmt.Sprintf("#%d ", stop.Seq+1)) {
		t.Errorf("after restart the follower printed %q, want #%d", l, stop.Seq+1)
	}
	if code, err := b.stop(); err != nil || code != 0 {
		t.Errorf("second run: exit %d, %v", code, err)
	}
}

// TestCLIClientWithBrokenConfig: the action script was deleted (or the
// file got a typo) after the agent ran. The agent refuses such a file, but
// journal and status, the commands one reads to find out what happened,
// still work: they warn on stderr, name the problem and go on.
func TestCLIClientWithBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	const inst = "broken"
	script := harness.WriteFile(t, dir, "imon-action", "#!/bin/sh\n", 0o755)
	cfg := writeConfig(t, dir, inst, fmt.Sprintf("%q: %q", "action", script), "")
	a := startAgent(t, "run", "--nosyslog", "--config", cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))

	if err := os.Remove(script); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, running bool) {
		r := imon(t, "journal", "--config", cfg, "--json")
		wantExit(t, r, 0, "imon journal with the action script gone")
		if evs := parseEvents(t, r.stdout); len(evs) == 0 || evs[0].Kind != event.KindAgentStart {
			t.Errorf("journal: %v", kinds(evs))
		}
		for _, want := range []string{"warning", cfg, "global.action", script, "imon check"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("journal stderr = %q, want it to name %q", r.stderr, want)
			}
		}
		r = imon(t, "status", "--config", cfg, "--json")
		wantExit(t, r, 0, "imon status with the action script gone")
		var st cliStatus
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		if (st.Agent == "running") != running || st.Instance != inst {
			t.Errorf("status = %+v, want running=%v", st, running)
		}
		if !strings.Contains(r.stderr, "global.action") {
			t.Errorf("status stderr = %q, want the problem", r.stderr)
		}
		// check and run still refuse it.
		r = imon(t, "check", "--config", cfg)
		wantExit(t, r, 1, "imon check with the action script gone")
	}
	t.Run("agent running", func(t *testing.T) { check(t, true) })
	if code, err := a.stop(); err != nil || code != 0 {
		t.Fatalf("agent stop: exit %d, %v", code, err)
	}
	t.Run("agent stopped", func(t *testing.T) { check(t, false) })
	r := imon(t, "run", "--nosyslog", "--config", cfg)
	wantExit(t, r, 1, "imon run with the action script gone")
	if !strings.Contains(r.stderr, "global.action") {
		t.Errorf("run stderr = %q, want the problem", r.stderr)
	}
}

// TestCLIFollowInterrupt: Ctrl-C (SIGINT) or SIGTERM ends `imon journal
// --follow` at once, with exit 0, whether it streams from a running agent
// (blocked in a read on the control socket) or polls the file.
func TestCLIFollowInterrupt(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "followint", "", "")
	a := startAgent(t, "run", "--nosyslog", "--config", cfg)
	harness.Watch(t, cfg).WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))

	interrupt := func(t *testing.T, sig syscall.Signal) {
		cmd := exec.Command(harness.Binary(t), "journal", "--follow", "--config", cfg)
		stdout, stderr := startPiped(t, cmd)
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || !strings.Contains(sc.Text(), "agent-start") {
			t.Fatalf("first line %q, want agent-start (stderr %q)", sc.Text(), stderr.String())
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			for sc.Scan() {
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after %v: %v, want exit 0 (stderr %q)", sig, err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("imon journal --follow still running 10 s after %v", sig)
		}
	}
	t.Run("agent running, SIGINT", func(t *testing.T) { interrupt(t, syscall.SIGINT) })
	t.Run("agent running, SIGTERM", func(t *testing.T) { interrupt(t, syscall.SIGTERM) })
	if code, err := a.stop(); err != nil || code != 0 {
		t.Fatalf("agent stop: exit %d, %v", code, err)
	}
	t.Run("no agent, SIGINT", func(t *testing.T) { interrupt(t, syscall.SIGINT) })
}

// logLine is the --nosyslog line shape with datefmt "%d/%m/%Y %H.%M.%S".
var logLine = regexp.MustCompile(`^(\d\d/\d\d/\d{4} \d\d\.\d\d\.\d\d) imon \[logtest(-[a-z]+)?\] (.*)$`)

// TestCLILogLines: with --nosyslog every line is "DATE imon
// [INSTANCE-MONITOR] message" with the config's datefmt, and the
// original's startup lines are there.
func TestCLILogLines(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "logtest", `"datefmt": "%d/%m/%Y %H.%M.%S"`, "")
	before := time.Now().Add(-time.Second)
	a := harness.Start(t, "", cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))
	if err := a.Stop(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	after := time.Now().Add(time.Second)
	out := a.Output()
	var msgs []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("log line %q does not match %s", l, logLine)
			continue
		}
		ts, err := time.ParseInLocation("02/01/2006 15.04.05", m[1], time.Local)
		if err != nil || ts.Before(before.Truncate(time.Second)) || ts.After(after) {
			t.Errorf("log line %q: date %s not between %s and %s (%v)", l, m[1], before, after, err)
		}
		msgs = append(msgs, strings.TrimPrefix(m[2], "-")+"|"+m[3])
	}
	want := []string{
		"|Starting",
		"|Version: imon ",
		"|Command line: " + harness.Binary(t) + " run --config " + cfg + " --nosyslog",
		"|Config file: " + cfg,
		`|global.datefmt = "%d/%m/%Y %H.%M.%S"`,
		`|global.instance = "logtest"`,
		"|updown.enable = false",
		`|journal.path = "` + filepath.Join(dir, "logtest.db") + `"`,
		"agent|Starting imon",
		"agent|Stopping imon",
		"|Stopped",
	}
	i := 0
	for _, m := range msgs {
		if i < len(want) && strings.HasPrefix(m, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("log lines lack %q (in this order: %q); got:\n%s", want[i], want, out)
	}
}

// TestCLIMonitorsLoopback: updown and ping on 127.0.0.1 (ICMP: root),
// seen through imon status, imon journal --monitor/--kind and the log.
func TestCLIMonitorsLoopback(t *testing.T) {
	nettest.NeedRoot(t, "network namespaces")
	dir := t.TempDir()
	const inst = "lo"
	cfg := writeConfig(t, dir, inst, `"datefmt": "%d/%m/%Y %H.%M.%S"`, `"updown": {"enable": true, "interval": 1, "pingcount": 1, "pingwait": 1, "monitorip": "127.0.0.1"},
  "ping": {"enable": true, "interval": 1, "pingcount": 2, "pingwait": 1, "monitorip": "127.0.0.1"}`)
	a := harness.Start(t, "", cfg)
	w := harness.Watch(t, cfg)
	up := w.WaitFor(20*time.Second, "updown state", func(ev event.Event) bool {
		return ev.Monitor == event.MonitorUpdown && len(ev.State) > 0
	})
	w.WaitFor(20*time.Second, "ping-result", harness.Kind(event.KindPingResult))
	w.Next(20*time.Second, "a second ping-result", harness.Kind(event.KindPingResult))

	st, text := status(t, cfg)
	var us struct {
		Up     bool   `json:"up"`
		Target string `json:"target"`
	}
	var um struct {
		Seq   uint64          `json:"seq"`
		State json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(st.Monitors["updown"], &um); err != nil || json.Unmarshal(um.State, &us) != nil || !us.Up || us.Target != "127.0.0.1" || um.Seq < up.Seq {
		t.Errorf("status updown = %s (%v)", st.Monitors["updown"], err)
	}
	var pm struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(st.Monitors["ping"], &pm); err != nil || pm.Kind != event.KindPingResult {
		t.Errorf("status ping = %s (%v)", st.Monitors["ping"], err)
	}
	if st.Agent != "running" || len(st.Monitors) != 2 {
		t.Errorf("status = %+v", st)
	}
	if !strings.Contains(text, "updown: Monitored IP 127.0.0.1 online") || !strings.Contains(text, "ping: Ping Result: IP:127.0.0.1 State:True") {
		t.Errorf("status:\n%s", text)
	}

	for _, f := range []struct{ flag, value, field string }{
		{"--monitor", "updown", "monitor"}, {"--monitor", "ping", "monitor"}, {"--kind", event.KindPingResult, "kind"},
	} {
		evs := journalJSON(t, cfg, f.flag, f.value)
		if len(evs) == 0 {
			t.Errorf("%s %s: nothing", f.flag, f.value)
		}
		for _, ev := range evs {
			if got := map[string]string{"monitor": ev.Monitor, "kind": ev.Kind}[f.field]; got != f.value {
				t.Errorf("%s %s printed #%d %s %s", f.flag, f.value, ev.Seq, ev.Monitor, ev.Kind)
			}
		}
	}

	if err := a.Stop(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	// Without an action script, ping results are logged, as in the
	// original; every line has the original's shape.
	out := a.Output()
	re := regexp.MustCompile(`^\d\d/\d\d/\d{4} \d\d\.\d\d\.\d\d imon \[lo(-[a-z]+)?\] .+$`)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !re.MatchString(l) {
			t.Errorf("log line %q does not match %s", l, re)
		}
	}
	for _, want := range []string{"imon [lo-updown] Monitored IP 127.0.0.1 online", "imon [lo-ping] Ping Result: IP:127.0.0.1 State:True "} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
