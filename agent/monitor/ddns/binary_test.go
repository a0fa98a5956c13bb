package ddns_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
	"imon/internal/testbed"
)

// requireWired skips (fails with CI=true) unless cmd/imon links the ddns
// and failover monitors: the end-to-end test needs the agent to run them.
func requireWired(t *testing.T) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd := exec.Command("go", "list", "-deps", "./cmd/imon")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/imon: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, p := range []string{"imon/agent/monitor/ddns", "imon/agent/monitor/failover"} {
		if !slices.Contains(deps, p) {
			nettest.Unavailable(t, "cmd/imon does not run %s yet (cmd/imon/wire.go)", p)
		}
	}
}

// TestBinaryExternalAddressAfterFailover runs the real imon binary on the
// host of the failover testbed with the ddns and failover monitors: the
// first detection reports the primary ISP's address, and when the primary's
// upstream is cut and the failover monitor switches to the standby, the
// action script receives exactly `ddns-ip-update NEW OLD`.
func TestBinaryExternalAddressAfterFailover(t *testing.T) {
	testbed.Require(t)
	requireWired(t)
	b, providers, _ := tbProviders(t, false)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	action, log := harness.RecordingAction(t, dir)
	const instance = "ddnse2e"
	quoted := make([]string, len(providers))
	for i, p := range providers {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	cfg := harness.WriteFile(t, dir, "imon-"+instance, fmt.Sprintf(`{
  "global": {"action": %q, "instance": %q},
  "ddns": {"enable": true, "interval": 60, "pingcount": 2, "pingwait": 1,
    "providers": [%s], "timeout": 1, "allow-private": true},
  "failover": {"enable": true, "interval": 1, "pingcount": 2, "pingwait": 1, "prefer-primary": true,
    "primary-if": %q, "primary-name": "isp1", "primary-gw": %q, "primary-ping": %q, "primary-postping": "",
    "standby-if": %q, "standby-name": "isp2", "standby-gw": %q, "standby-ping": %q, "standby-postping": ""},
  "journal": {"path": %q, "socket": %q}
}`, action, instance, strings.Join(quoted, ", "),
		testbed.WANIf[0], testbed.Gateway[0], testbed.Target,
		testbed.WANIf[1], testbed.Gateway[1], testbed.Target,
		filepath.Join(dir, instance+".db"), filepath.Join(dir, instance+".sock")), 0o644)

	harness.Start(t, b.Host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))
	first := w.WaitFor(30*time.Second, "first ddns-ip-update", harness.Kind(event.KindDDNSIPUpdate))
	if want := []string{testbed.Upstream[0].String(), "unknown"}; !slices.Equal(first.Args, want) {
		t.Fatalf("first ddns-ip-update %v, want %v", first.Args, want)
	}

	b.CutUpstream(0)
	w.Next(30*time.Second, "failover-standby", harness.Kind(event.KindFailoverStandby))
	switched := time.Now()
	next := w.Next(30*time.Second, "ddns-ip-update after the failover", harness.Kind(event.KindDDNSIPUpdate))
	want := []string{testbed.Upstream[1].String(), testbed.Upstream[0].String()}
	if !slices.Equal(next.Args, want) {
		t.Fatalf("ddns-ip-update after the failover %v, want %v", next.Args, want)
	}
	t.Logf("external address change journaled %v after failover-standby was read", time.Since(switched).Round(time.Millisecond))

	// The action script runs after the journal: wait for its call.
	wantCall := append([]string{instance, "1", event.KindDDNSIPUpdate}, want...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var updates [][]string
		for _, c := range harness.ActionCalls(t, log) {
			if len(c) > 2 && c[2] == event.KindDDNSIPUpdate {
				updates = append(updates, c)
			}
		}
		if len(updates) == 2 {
			if !slices.Equal(updates[1], wantCall) {
				t.Errorf("action call %q, want exactly %q", updates[1], wantCall)
			}
			if first := append([]string{instance, "1", event.KindDDNSIPUpdate}, first.Args...); !slices.Equal(updates[0], first) {
				t.Errorf("first action call %q, want %q", updates[0], first)
			}
			break
		}
		if len(updates) > 2 || time.Now().After(deadline) {
			t.Fatalf("ddns-ip-update action calls %q, want two ending with %q", updates, wantCall)
		}
		time.Sleep(100 * time.Millisecond) // polling a file another process writes
	}
}
