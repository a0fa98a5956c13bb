// Package deptest guards imon's architecture: which package may depend on
// which. It runs `go list -deps` over the module and fails when a rule
// below is broken, in the spirit of tailscale's tstest/deptest.
//
// The rules, in one place (a newcomer reads these first):
//
//   - The monitors (imon/agent/monitor/...) decide and probe. They never
//     import the journal, MQTT, Home Assistant or the outbox: they emit
//     events through an interface the agent gives them, and the agent
//     decides where events go.
//   - imon/event (the record) and imon/homeassistant (pure discovery
//     payloads) link none of the heavy I/O libraries: bbolt, paho, netlink,
//     pro-bing. Anything can import them cheaply, and their tests are pure.
//     imon/event imports nothing else of imon either.
//   - imon/internal/backoff (the one retry schedule) imports nothing of
//     imon, so that every retry loop, the generic mqtt client included,
//     can use it.
//   - imon/agent/command (the one Mode type, its parser, the command
//     budget) is pure too: the CLI, MQTT, failover and discovery share it.
//   - imon/journal imports no imon/agent package: the store knows events,
//     not the agent that writes them.
//   - Nothing under imon/agent (the agent, the action runner, the outbox,
//     the monitors) imports imon/journal or bbolt: they read the journal
//     through the interface they use (journal.Journal.Follow, cursors) and
//     write through the agent's Emit; journal errors they tell apart are
//     event.ErrInvalid and event.ErrNoSpace. cmd/imon wires the journal in.
//   - imon/mqtt imports nothing of imon but the dependency-free retry
//     schedule (imon/internal/backoff): it is a generic MQTT v5 client.
//   - No production package imports imon/e2e/... or the test helpers
//     (imon/internal/testbed, imon/internal/harness, imon/internal/nettest,
//     and the fakes next to what they fake: probetest, extiptest,
//     journaltest, mqtttest). A package that imports "testing" is a test
//     helper and must be listed as one (TestHelpersListed).
//   - No unit test imports imon/e2e/...: what tests share lives under
//     imon/internal (TestUnitTestsOutsideE2E).
//
// A rule is checked on the transitive dependencies of the package's
// non-test build (go list -deps), so an indirect path breaks it too.
package deptest

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// rule forbids packages matching `from` to depend on packages matching any
// of `deny`. A pattern ending in "/..." matches the path and everything
// below it.
type rule struct {
	why    string
	from   string
	except []string // packages matching from that the rule does not cover
	deny   []string
	allow  []string // dependencies matching deny that are allowed all the same
}

var rules = []rule{
	{
		why:  "monitors emit through the agent; they never reach the journal, MQTT, Home Assistant or the outbox",
		from: "imon/agent/monitor/...",
		deny: []string{"imon/journal/...", "imon/mqtt/...", "imon/homeassistant/...", "imon/agent/outbox/..."},
	},
	{
		why:   "the event record stays free of I/O libraries and of the rest of imon: everything imports it",
		from:  "imon/event/...",
		deny:  append([]string{"imon/..."}, heavy...),
		allow: []string{"imon/event/..."},
	},
	{
		why:  "the one retry schedule is dependency-free: mqtt and every retry loop import it",
		from: "imon/internal/backoff",
		deny: []string{"imon/..."},
	},
	{
		why:  "the command road (Mode, parser, budget) is shared by the CLI, MQTT, failover and discovery: pure",
		from: "imon/agent/command",
		deny: append([]string{"imon/journal/...", "imon/mqtt/...", "imon/agent/outbox/...", "imon/agent/monitor/..."}, heavy...),
	},
	{
		why:  "discovery payloads are pure",
		from: "imon/homeassistant/...",
		deny: heavy,
	},
	{
		why:  "the agent and its consumers see the journal through the interfaces they use (Follow, cursors, the agent's Emit); only the composition root opens it",
		from: "imon/agent/...",
		deny: []string{"imon/journal/...", "go.etcd.io/bbolt/..."},
	},
	{
		why:  "the journal knows events, not the agent",
		from: "imon/journal/...",
		deny: []string{"imon/agent/...", "imon/cmd/...", "imon/mqtt/...", "imon/homeassistant/..."},
	},
	{
		why:   "mqtt is a generic client",
		from:  "imon/mqtt",
		deny:  []string{"imon/..."},
		allow: []string{"imon/internal/backoff"},
	},
	{
		why:    "the e2e suite, the harness, the testbed and the test helpers are for tests only",
		from:   "imon/...",
		except: append([]string{"imon/e2e/..."}, testOnly...),
		deny:   append([]string{"imon/e2e/..."}, testOnly...),
	},
}

// testOnly are the packages shared by the tests (unit and end-to-end):
// every package outside e2e that imports "testing" (TestHelpersListed).
var testOnly = []string{
	"imon/internal/testbed", "imon/internal/harness", "imon/internal/nettest",
	"imon/agent/probe/probetest", "imon/agent/probe/extip/extiptest",
	"imon/journal/journaltest", "imon/mqtt/mqtttest",
}

var heavy = []string{
	"go.etcd.io/bbolt/...",
	"github.com/eclipse/paho.golang/...",
	"github.com/vishvananda/netlink/...",
	"github.com/prometheus-community/pro-bing/...",
}

func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// deps returns every package of the module (test-only packages and the e2e
// packages themselves excluded) with its transitive dependencies.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "imon/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		m[f[0]] = f[1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading go list output: %v", err)
	}
	if len(m) < 10 {
		t.Fatalf("go list found only %d packages: is the module root right?", len(m))
	}
	return m
}

func covers(r rule, pkg string) bool {
	if !match(r.from, pkg) {
		return false
	}
	for _, e := range r.except {
		if match(e, pkg) {
			return false
		}
	}
	return true
}

func TestImportRules(t *testing.T) {
	all := deps(t)
	for _, r := range rules {
		for pkg, ds := range all {
			if !covers(r, pkg) {
				continue
			}
			for _, d := range ds {
				for _, deny := range r.deny {
					if match(deny, d) && !slices.ContainsFunc(r.allow, func(a string) bool { return match(a, d) }) {
						t.Errorf("%s depends on %s: %s", pkg, d, r.why)
					}
				}
			}
		}
	}
}

// TestRulesMatch keeps the rules honest: each "from" pattern matches at
// least one package, so a renamed package cannot silently escape its rule.
func TestRulesMatch(t *testing.T) {
	all := deps(t)
	for _, r := range rules {
		n := 0
		for pkg := range all {
			if covers(r, pkg) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("rule %q matches no package", r.from)
		}
	}
}

// TestUnitTestsOutsideE2E: a package's tests (outside e2e) never import
// imon/e2e/...; the testbed, the harness and the helpers they share live
// under imon/internal.
func TestUnitTestsOutsideE2E(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}", "imon/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || match("imon/e2e/...", f[0]) {
			continue
		}
		for _, imp := range f[1:] {
			if match("imon/e2e/...", imp) {
				t.Errorf("tests of %s import %s: move what they need under imon/internal", f[0], imp)
			}
		}
	}
}

// TestHelpersListed: every package outside e2e whose build imports
// "testing" is a test helper and is listed in testOnly, so that the rule
// keeping test helpers out of production covers it too.
func TestHelpersListed(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "imon/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || match("imon/e2e/...", f[0]) || !slices.Contains(f[1:], "testing") {
			continue
		}
		if !slices.Contains(testOnly, f[0]) {
			t.Errorf("%s imports testing but is not in testOnly: list it (a test helper) or drop the import", f[0])
		}
	}
}
