package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
)

// An unprivileged user, created by the tests by uid alone (no passwd entry).
const otherUID = 4242

// userDir returns a temporary directory (root's, 0755) that otherUID can
// reach but not write, and a copy of the binary there that it may run.
func userDir(t *testing.T) (dir, bin string) {
	t.Helper()
	nettest.NeedRoot(t, "network namespaces")
	dir = t.TempDir()
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(harness.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin = harness.WriteFile(t, dir, "imon-bin", string(b), 0o755)
	return dir, bin
}

// asUser runs bin with args as otherUID.
func asUser(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
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
		t.Fatalf("%s %q as uid %d: %v\n%s", bin, args, otherUID, err, r)
	}
	return r
}

// TestCLIPermissionDenied (issue 11.8): a user other than root running
// imon status, journal or failover is told "permission denied (run as
// root)", not "no running agent", whether the agent runs (socket 0600) or
// not (status and journal read the journal file, 0600). Seen failing before: "no running imon agent on ...".
func TestCLIPermissionDenied(t *testing.T) {
	dir, bin := userDir(t)
	const inst = "permtest"
	cfg := writeConfig(t, dir, inst, "", "")
	if err := os.Chmod(cfg, 0o644); err != nil { // readable: only the socket and journal are root's
		t.Fatal(err)
	}
	a := startAgent(t, "--instance", inst, "--nosyslog", "--config", cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))

	check := func(state string, cmds ...[]string) {
		t.Helper()
		for _, args := range cmds {
			r := asUser(t, bin, args...)
			if r.code == 0 || !strings.Contains(r.stderr, "permission denied (run as root)") || strings.Contains(r.stderr, "no running") {
				t.Errorf("agent %s: imon %s as uid %d: want a non-zero exit saying permission denied (run as root), got %s",
					state, args[0], otherUID, r)
			}
		}
	}
	status := []string{"status", "--config", cfg}
	journal := []string{"journal", "--config", cfg}
	check("running", status, journal, []string{"failover", "primary", "--config", cfg})
	if code, err := a.stop(); err != nil || code != 0 {
		t.Fatalf("agent stop: exit %d, %v", code, err)
	}
	check("stopped", status, journal) // failover: "no running agent" is then the truth
}

// TestActionScriptSwapE2E (issue 11.1): with the agent running and the ping
// monitor handing every result to the action script, the script is made
// world-writable and an unprivileged user overwrites it: the user's code
// never runs (as root), and each refusal is an action-failed event naming
// the reason. A script in a directory owned by that user is refused by
// imon check. Seen failing before: the user's code ran as uid 0, and check
// said OK.
func TestActionScriptSwapE2E(t *testing.T) {
	dir, bin := userDir(t)
	_ = bin
	ran := filepath.Join(dir, "ran")
	script := harness.WriteFile(t, dir, "act.sh", "#!/bin/sh\necho \"$3\" >> "+ran+"\n", 0o755)
	marker := filepath.Join(dir, "user-code-ran-as")
	const inst = "swaptest"
	cfg := writeConfig(t, dir, inst, fmt.Sprintf(`"action": %q`, script),
		`"ping": {"enable": true, "interval": 0.2, "pingcount": 1, "pingwait": 0.5, "monitorip": "127.0.0.1"}`)

	startAgent(t, "--instance", inst, "--nosyslog", "--config", cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))
	deadline := time.Now().Add(20 * time.Second)
	for { // the script runs for ping results
		if b, err := os.ReadFile(ran); err == nil && bytes.Contains(b, []byte("ping-result")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the action script never ran; events:\n%s", harness.Summary(w.Seen()))
		}
		w.Next(5*time.Second, "ping-result", harness.Kind(event.KindPingResult))
	}

	if err := os.Chmod(script, 0o777); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("/bin/sh", "-c", `printf '#!/bin/sh\nid -u > `+marker+`\n' > `+script)
	sh.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("overwrite as uid %d: %v\n%s", otherUID, err, out)
	}
	fail := w.Next(20*time.Second, "action-failed", harness.Kind(event.KindActionFailed))
	if !strings.Contains(fail.Msg, "writable by group/others (mode 0777)") {
		t.Errorf("action-failed does not name the reason: %s", fail.Msg)
	}
	w.Next(20*time.Second, "a second action-failed", harness.Kind(event.KindActionFailed))
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("the user's code ran as uid %s", strings.TrimSpace(string(b)))
	}

	// A script in a directory the user owns: imon check refuses it.
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	inHome := harness.WriteFile(t, home, "act.sh", "#!/bin/sh\n", 0o755)
	if err := os.Chown(home, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	cfg2 := writeConfig(t, dir, "swaptest2", fmt.Sprintf(`"action": %q`, inHome), "")
	r := imon(t, "check", "--config", cfg2)
	if r.code == 0 || !strings.Contains(r.stderr, "global.action: action script "+inHome+" runs as root, but "+home+" is a directory owned by uid 4242") {
		t.Errorf("imon check of a script in a user's directory: %s", r)
	}
}
