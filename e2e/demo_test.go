package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imon/internal/harness"
	"imon/internal/testbed"
)

// TestDemo runs `make demo` as the README's first command does (the
// deploy/demo/demo.sh entry with the e2e/demo program, as root): the
// journal it prints must show a failover, an outage with its duration and
// an external IP change, the action script's arguments, within about a
// minute, and every namespace it made must be gone afterwards.
func TestDemo(t *testing.T) {
	testbed.Require(t)
	imon := harness.Binary(t)
	dir := t.TempDir()
	demoBin := filepath.Join(dir, "imon-demo")
	if out, err := exec.Command("go", "build", "-o", demoBin, "./demo").CombinedOutput(); err != nil {
		t.Fatalf("go build ./demo: %v\n%s", err, out)
	}
	cmd := exec.Command("sh", "../deploy/demo/demo.sh")
	cmd.Env = append(os.Environ(), "IMON="+imon, "DEMO_BIN="+demoBin, "DEMO_DIR="+filepath.Join(dir, "run"), "DEMO=")
	start := time.Now()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the demo ran for more than 3 minutes:\n%s", out)
	}
	took := time.Since(start)
	text := string(out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, text)
	}
	t.Logf("the demo took %v", took)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`failover failover-standby Network Failover to Standby Network LTE \(wan1\)`),
		regexp.MustCompile(`on the standby [0-9.]+ s after the cut`),
		regexp.MustCompile(`failover failover-primary Network Failover to Primary Network Fibre \(wan0\)`),
		regexp.MustCompile(`ddns ddns-ip-update External IP Address changed from 198\.51\.100\.2 to 198\.51\.100\.10`),
		regexp.MustCompile(`updown updown-offline Monitored IP 203\.0\.113\.2 offline`),
		regexp.MustCompile(`updown updown-online Monitored IP 203\.0\.113\.2 online\. Outage Duration: 0 days 0 hours, 0 minutes [0-9]+ seconds`),
		regexp.MustCompile(`action script got: demo 1 failover-standby LTE:Standby:wan1:192\.0\.2\.10`),
		regexp.MustCompile(`failover-mode Failover mode set to standby \(cli\)`),
		regexp.MustCompile(`running again [0-9.]+ s after the signal, same process`),
		regexp.MustCompile(`failover failover-adopted Adopted default route`),
		regexp.MustCompile(`(?m)^demo: OK`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if took > 2*time.Minute {
		t.Errorf("the demo took %v, want about a minute", took)
	}
	// Its namespaces (imh-PID-N-ROLE, PID the demo's: sh execs it) are gone.
	if ns, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		prefix := fmt.Sprintf("imh-%d-", cmd.Process.Pid%100000)
		for _, l := range strings.Split(string(ns), "\n") {
			if strings.HasPrefix(l, prefix) {
				t.Errorf("namespace left behind: %s", l)
			}
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}
