package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"imon/config"
	"imon/internal/harness"
	"imon/internal/nettest"
)

// The imon configure sessions below run the real binary with --config in
// a temporary folder, and with a fake systemctl first on PATH, so that the
// final "Enable and start imon@NAME now?" can never touch the machine.

// step is one prompt of a configure session and the answer typed to it.
type step struct{ prompt, answer string }

const readmeNote = "Note to add to config file: one line of info. Or not"

// readmeSteps is the README session of the original imon-configure
// (../shared/original/imon-configure-session-answers.txt, copied into
// config/configure/testdata), prompt by prompt, with:
//   - the action script at script (it must exist and be executable);
//   - each interface name given twice: the README's interfaces do not exist
//     here, and configure takes a missing interface when it is repeated;
//   - blank answers (the defaults) for the four new prompts (journal path,
//     days kept, size, MQTT).
//
// The last two prompts, "Write configuration file" and "Enable and start",
// are left to the caller.
func readmeSteps(script, path string) []step {
	probe := []step{
		{"Interval between checks (interval) [10]: ", ""},
		{"Ping count (pingcount) [2]: ", ""},
		{"Ping wait time (pingwait) [1]: ", ""},
	}
	var s []step
	add := func(steps ...step) { s = append(s, steps...) }
	// The default instance is the file's imon-NAME.
	inst, _ := config.InstanceFromPath(path)
	add(step{"Instance name [" + inst + "]: ", "demo"},
		step{"Note to add to config file: ", readmeNote},
		step{"Full path to action script (action): ", script},
		step{"* Enable the 'ddns' monitor? [y/N]: ", "y"})
	add(probe...)
	add(step{"* Enable the 'updown' monitor? [y/N]: ", "y"})
	add(probe...)
	add(step{"Name/IP address to monitor (monitorip): ", "1.1.1.1"},
		step{"Additional IP addresses to ping (addping): ", "192.168.92.1,192.168.1.1"},
		step{"Name/IP address of DNS server (dnsserver): ", "8.8.8.8"},
		step{"DNS name to lookup (dnslookup): ", "microsoft.com"},
		step{"* Enable the 'failover' monitor? [y/N]: ", "y"})
	add(probe...)
	add(step{"Prefer primary network (prefer-primary) [N]: ", ""},
		step{"Network default route metric (metric) [201]: ", "201"})
	for _, w := range []struct{ title, key, ifName, name, gw string }{
		{"Primary", "primary", "enxa0cec8003294", "pnet", "192.168.42.1"},
		{"Standby", "standby", "enxa0cec80380a9", "snet", "192.168.62.1"},
	} {
		ifPrompt := w.title + " network interface name (" + w.key + "-if): "
		add(step{ifPrompt, w.ifName},
			step{fmt.Sprintf(`%% Interface %q does not exist (enter it again to use it anyway)`, w.ifName), ""},
			step{ifPrompt, w.ifName},
			step{"% Using '" + w.ifName + "' anyway", ""},
			step{w.title + " network name (" + w.key + "-name): ", w.name},
			step{w.title + " network gateway IP Address (" + w.key + "-gw): ", w.gw},
			step{"Name/IP Address to check if " + w.title + " network is up (" + w.key + "-ping): ", ""},
			step{"Name/IP Address to ping after failover to " + w.title + " (" + w.key + "-postping): ", ""})
	}
	add(step{"* Enable the 'ping' monitor? [y/N]: ", "y"},
		step{"Interval between pings (interval) [10]: ", ""},
		step{"Ping count (pingcount) [2]: ", ""},
		step{"Ping wait time (pingwait) [1]: ", ""},
		step{"Name/IP Address to ping (monitorip): ", "1.1.1.1"},
		// The new prompts: defaults.
		step{"Journal database file (path) [/var/lib/imon/demo.db]: ", ""},
		step{"Days to keep journal events (max-age) [30]: ", ""},
		step{"Maximum journal size in MiB (max-bytes) [64]: ", ""},
		step{"* Enable MQTT? [y/N]: ", ""})
	return s
}

// isMessage tells a "% ..." message (no answer) from a prompt.
func (s step) isMessage() bool { return strings.HasPrefix(s.prompt, "% ") }

// pipedAnswers is the stdin of a piped session: one answer a line.
func pipedAnswers(steps []step) string {
	var b strings.Builder
	for _, s := range steps {
		if !s.isMessage() {
			b.WriteString(s.answer + "\n")
		}
	}
	return b.String()
}

// wantInOrder checks that every prompt and message of steps appears in out,
// in order.
func wantInOrder(t *testing.T, out string, steps []step) {
	t.Helper()
	pos := 0
	for i, s := range steps {
		j := strings.Index(out[pos:], s.prompt)
		if j < 0 {
			t.Fatalf("step %d: %q not found after offset %d of the output:\n%s", i, s.prompt, pos, out)
		}
		pos += j + len(s.prompt)
	}
}

// readmeOriginal is the file the original imon-configure wrote from the
// README session.
const readmeOriginal = "../config/testdata/imon-configure-output.json"

// wantReadmeFile checks that the file configure wrote holds the values of
// the original's, section by section (as JSON values: 2 == 2.0), but for
// the action script (answered differently), the note (whose case the
// original lost), the configure version and creation time, plus the new
// sections with their defaults.
func wantReadmeFile(t *testing.T, path, script string, before, after time.Time) {
	t.Helper()
	var got, orig map[string]map[string]any
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("configure wrote no file: %v", err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	ob, err := os.ReadFile(readmeOriginal)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ob, &orig); err != nil {
		t.Fatal(err)
	}
	newSections := map[string]map[string]any{
		"journal":       {"path": "/var/lib/imon/demo.db", "max-age": 30 * 86400.0, "max-bytes": 64.0 * (1 << 20)},
		"mqtt":          {"enable": false},
		"homeassistant": {"enable": false},
	}
	var sections []string
	for sec := range got {
		sections = append(sections, sec)
	}
	sort.Strings(sections)
	if want := []string{"ddns", "failover", "global", "homeassistant", "journal", "mqtt", "ping", "updown"}; !reflect.DeepEqual(sections, want) {
		t.Errorf("sections %q, want %q", sections, want)
	}
	for sec, want := range newSections {
		if !reflect.DeepEqual(got[sec], want) {
			t.Errorf("section %s = %v, want %v", sec, got[sec], want)
		}
	}
	for sec, o := range orig {
		g := got[sec]
		for k, ov := range o {
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s.%s missing (original: %v)", sec, k, ov)
				continue
			}
			switch sec + "." + k {
			case "global.action":
				if gv != script {
					t.Errorf("global.action = %v, want %s", gv, script)
				}
			case "global.note":
				if gv != readmeNote || !strings.EqualFold(gv.(string), ov.(string)) {
					t.Errorf("global.note = %q, want %q (the answer's case kept)", gv, readmeNote)
				}
			case "global.imon-configure-version":
				if s, _ := gv.(string); s == "" {
					t.Errorf("global.imon-configure-version = %v", gv)
				}
			case "global.imon-configure-created":
				s, _ := gv.(string)
				c, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
				if err != nil || c.Before(before.Truncate(time.Second)) || c.After(after) {
					t.Errorf("global.imon-configure-created = %v, want the session's time (%v)", gv, err)
				}
			default:
				if !reflect.DeepEqual(gv, ov) {
					t.Errorf("%s.%s = %#v, want %#v", sec, k, gv, ov)
				}
			}
		}
		for k, gv := range g {
			if _, ok := o[k]; !ok {
				t.Errorf("%s.%s = %v: not in the original's file", sec, k, gv)
			}
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("mode %04o: writable by group or others", fi.Mode().Perm())
	}
}

// configureEnv is the environment of a configure session: a fake systemctl
// (which records its arguments to the returned log) first on PATH.
func configureEnv(t *testing.T, dir string) (env []string, systemctlLog string) {
	t.Helper()
	bin := filepath.Join(dir, "fakebin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	systemctlLog = filepath.Join(dir, "systemctl.log")
	harness.WriteFile(t, bin, "systemctl", fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\n", systemctlLog), 0o755)
	return append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH")), systemctlLog
}

// noFile fails when path exists or dir holds anything but keep (a temp
// file left behind).
func noFile(t *testing.T, dir, path string, keep ...string) {
	t.Helper()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s was written (stat: %v)", path, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !contains(keep, e.Name()) {
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestConfigurePiped: the README session's answers piped on stdin (with a
// blank line for each new prompt) produce the original's file, which
// `imon check` accepts but for the interfaces that do not exist here.
func TestConfigurePiped(t *testing.T) {
	dir := t.TempDir()
	env, sysLog := configureEnv(t, dir)
	script := harness.WriteFile(t, dir, "imon-action", "#!/bin/sh\n", 0o755)
	path := filepath.Join(dir, "imon-demo")
	steps := append(readmeSteps(script, path), step{"Write configuration file '" + path + "'? [Y/n] ", "y"})
	before := time.Now()
	// No answer for "Enable and start imon@demo now? [y/N]": the input
	// ends there, which means no.
	r := runIn(t, harness.Binary(t), env, strings.NewReader(pipedAnswers(steps)), "configure", "--config", path)
	wantExit(t, r, 0, "imon configure with the README answers")
	wantInOrder(t, r.stdout, append(steps,
		step{"Wrote '" + path + "'\n", ""},
		step{"Enable and start imon@demo now? [y/N] ", ""}))
	wantReadmeFile(t, path, script, before, time.Now())
	if _, err := os.Stat(sysLog); !os.IsNotExist(err) {
		t.Errorf("systemctl was called")
	}
	wantHostProblemsOnly(t, imon(t, "check", "--config", path), path)

	// Blank answers for every new prompt, the service one included.
	path2 := filepath.Join(dir, "imon-demo2")
	steps[len(steps)-1] = step{"Write configuration file '" + path2 + "'? [Y/n] ", ""}
	r = runIn(t, harness.Binary(t), env, strings.NewReader(pipedAnswers(steps)+"\n"), "configure", "--config", path2)
	wantExit(t, r, 0, "imon configure with the README answers and blank lines")
	wantReadmeFile(t, path2, script, before, time.Now())
}

// TestConfigureNetns: where the README's interfaces exist (a network
// namespace the test builds), the README answers go through verbatim, a
// gateway outside the interface's subnet is re-asked, and `imon check`
// says OK.
func TestConfigureNetns(t *testing.T) {
	nettest.NeedRoot(t, "network namespaces")
	dir := t.TempDir()
	env, _ := configureEnv(t, dir)
	script := harness.WriteFile(t, dir, "imon-action", "#!/bin/sh\n", 0o755)
	path := filepath.Join(dir, "imon-demo")
	router, isp := harness.NewNS(t, "cfg"), harness.NewNS(t, "isp")
	harness.Link(t, router, "enxa0cec8003294", "192.168.42.2/24", isp, "p0", "192.168.42.1/24")
	harness.Link(t, router, "enxa0cec80380a9", "192.168.62.2/24", isp, "p1", "192.168.62.1/24")

	var steps []step
	for _, s := range readmeSteps(script, path) {
		switch {
		case s.isMessage():
			continue // no complaint about the interfaces here
		case len(steps) > 0 && s == steps[len(steps)-1]:
			continue // nor a repeated answer
		case s.prompt == "Primary network gateway IP Address (primary-gw): ":
			steps = append(steps, step{s.prompt, "192.168.43.1"},
				step{"% Gateway 192.168.43.1 is not in a subnet of the interface (192.168.42.2/24) (enxa0cec8003294) (enter it again to use it anyway)", ""})
		}
		steps = append(steps, s)
	}
	steps = append(steps, step{"Write configuration file '" + path + "'? [Y/n] ", ""},
		step{"Enable and start imon@demo now? [y/N] ", "n"})
	before := time.Now()
	cmd := exec.Command("ip", "netns", "exec", router.Name, harness.Binary(t), "configure", "--config", path)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(pipedAnswers(steps))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("configure in %s: %v\n%s", router.Name, err, out)
	}
	wantInOrder(t, string(out), steps)
	if strings.Contains(string(out), "does not exist") {
		t.Errorf("configure complained about an interface that exists:\n%s", out)
	}
	wantReadmeFile(t, path, script, before, time.Now())

	check := exec.Command("ip", "netns", "exec", router.Name, harness.Binary(t), "check", "--config", path)
	if out, err := check.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), path+": OK (instance demo; monitors: [ddns updown failover ping])") {
		t.Errorf("check in %s: %v\n%s", router.Name, err, out)
	}
}

// TestConfigureBadAnswers: each bad answer is refused with the reason and
// the question asked again; the file holds the corrected answers.
func TestConfigureBadAnswers(t *testing.T) {
	dir := t.TempDir()
	env, _ := configureEnv(t, dir)
	script := harness.WriteFile(t, dir, "imon-action", "#!/bin/sh\n", 0o755)
	notExec := harness.WriteFile(t, dir, "not-executable", "#!/bin/sh\n", 0o644)
	path := filepath.Join(dir, "imon-bad")
	const (
		instQ   = "Instance name [bad]: "
		actionQ = "Full path to action script (action): "
		enableQ = "* Enable the 'ddns' monitor? [y/N]: "
		ivalQ   = "Interval between checks (interval) [10]: "
		countQ  = "Ping count (pingcount) [2]: "
		lookupQ = "DNS name to lookup (dnslookup): "
		gwQ     = "Primary network gateway IP Address (primary-gw): "
		ifQ     = "Primary network interface name (primary-if): "
		sifQ    = "Standby network interface name (standby-if): "
	)
	steps := []step{
		{instQ, "bad name!"}, {"% ", ""}, {instQ, "bad"},
		{"Note to add to config file: ", ""},
		{actionQ, "relative/script"}, {"% ", ""},
		{actionQ, notExec}, {"% Action script " + notExec + " is not executable: run chmod +x " + notExec + "\n", ""},
		{actionQ, filepath.Join(dir, "missing")}, {"% Action script " + filepath.Join(dir, "missing") + " does not exist\n", ""},
		{actionQ, script},
		{enableQ, "maybe"}, {"% Answer y or n\n", ""}, {enableQ, "Y"},
		{ivalQ, "abc"}, {"% Enter an integer or floating point number\n", ""},
		{ivalQ, "-1"}, {"% Must be greater than 0.0\n", ""},
		{ivalQ, "2.5"},
		{countQ, "abc"}, {"% Enter an integer\n", ""},
		{countQ, "0"}, {"% Must be greater than 0\n", ""},
		{countQ, "1000"}, {"% Must be 1..100\n", ""},
		{countQ, "3"},
		{"Ping wait time (pingwait) [1]: ", ""},
		{"* Enable the 'updown' monitor? [y/N]: ", "y"},
		{ivalQ, ""}, {countQ, ""}, {"Ping wait time (pingwait) [1]: ", ""},
		{"Name/IP address to monitor (monitorip): ", ""}, {"% Value required\n", ""},
		{"Name/IP address to monitor (monitorip): ", "10.0.0.300"}, {"% ", ""},
		{"Name/IP address to monitor (monitorip): ", "127.0.0.1"},
		{"Additional IP addresses to ping (addping): ", "127.0.0.2,not an ip"}, {"% ", ""},
		{"Additional IP addresses to ping (addping): ", "127.0.0.2, 127.0.0.3"},
		{"Name/IP address of DNS server (dnsserver): ", ""},
		{lookupQ, "example.com"}, {"% Leave it empty: there is no DNS server (dnsserver) to look it up on\n", ""},
		{lookupQ, ""},
		{"* Enable the 'failover' monitor? [y/N]: ", "y"},
		{ivalQ, ""}, {countQ, ""}, {"Ping wait time (pingwait) [1]: ", ""},
		{"Prefer primary network (prefer-primary) [N]: ", ""},
		{"Network default route metric (metric) [201]: ", "-5"}, {"% Must be 0..2147483647\n", ""},
		{"Network default route metric (metric) [201]: ", ""},
		{ifQ, "imbad0"}, {`% Interface "imbad0" does not exist (enter it again to use it anyway)` + "\n", ""},
		{ifQ, "imbad0"}, {"% Using 'imbad0' anyway\n", ""},
		{"Primary network name (primary-name): ", "p"},
		{gwQ, "192.168.42.256"}, {"% IP Address required\n", ""},
		{gwQ, "not-an-ip"}, {"% IP Address required\n", ""},
		{gwQ, "192.168.42.1"},
		{"Name/IP Address to check if Primary network is up (primary-ping): ", ""},
		{"Name/IP Address to ping after failover to Primary (primary-postping): ", ""},
		{sifQ, "imbad0"}, {"% ", ""},
		{sifQ, "imbad1"}, {sifQ, "imbad1"},
		{"Standby network name (standby-name): ", "s"},
		{"Standby network gateway IP Address (standby-gw): ", "192.168.62.1"},
		{"Name/IP Address to check if Standby network is up (standby-ping): ", ""},
		{"Name/IP Address to ping after failover to Standby (standby-postping): ", ""},
		{"* Enable the 'ping' monitor? [y/N]: ", ""},
		{"Journal database file (path) [/var/lib/imon/bad.db]: ", "journal.db"}, {`% "journal.db" is not an absolute path` + "\n", ""},
		{"Journal database file (path) [/var/lib/imon/bad.db]: ", filepath.Join(dir, "bad.db")},
		{"Days to keep journal events (max-age) [30]: ", "0"}, {"% Must be greater than 0.0\n", ""},
		{"Days to keep journal events (max-age) [30]: ", "7"},
		{"Maximum journal size in MiB (max-bytes) [64]: ", "lots"}, {"% Enter an integer\n", ""},
		{"Maximum journal size in MiB (max-bytes) [64]: ", "16"},
		{"* Enable MQTT? [y/N]: ", ""},
		{"Write configuration file '" + path + "'? [Y/n] ", "perhaps"}, {"% Answer y or n\n", ""},
		{"Write configuration file '" + path + "'? [Y/n] ", "yes"},
		{"Enable and start imon@bad now? [y/N] ", "no"},
	}
	r := runIn(t, harness.Binary(t), env, strings.NewReader(pipedAnswers(steps)), "configure", "--config", path)
	wantExit(t, r, 0, "configure with bad answers")
	wantInOrder(t, r.stdout, steps)
	if !strings.Contains(strings.ToLower(r.stdout), "% imbad0 is the primary network's interface already\n") {
		t.Errorf("no reason given for the standby interface that is the primary's:\n%s", r.stdout)
	}

	var got map[string]map[string]any
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"global.instance": "bad", "global.action": script,
		"ddns.enable": true, "ddns.interval": 2.5, "ddns.pingcount": 3.0,
		"updown.monitorip": "127.0.0.1", "updown.addping": "127.0.0.2,127.0.0.3", "updown.dnslookup": "",
		"failover.metric": 201.0, "failover.primary-if": "imbad0", "failover.primary-gw": "192.168.42.1", "failover.standby-if": "imbad1",
		"ping.enable":  false,
		"journal.path": filepath.Join(dir, "bad.db"), "journal.max-age": 7 * 86400.0, "journal.max-bytes": 16.0 * (1 << 20),
	} {
		sec, key, _ := strings.Cut(k, ".")
		if v := got[sec][key]; !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %#v, want %#v", k, v, want)
		}
	}
	r = imon(t, "check", "--config", path)
	wantExit(t, r, 1, "check of the file with missing interfaces")
	if got := lines(r.stderr); len(got) != 3 || !strings.Contains(got[0], `"imbad0" does not exist`) || !strings.Contains(got[1], `"imbad1" does not exist`) {
		t.Errorf("check:\n%s", r.stderr)
	}
}

// TestConfigureAbort: input that ends (Ctrl-D) or a SIGINT before the file
// is confirmed writes nothing and exits 1; input that ends after the file
// was written (at the service question) is a no.
func TestConfigureAbort(t *testing.T) {
	dir := t.TempDir()
	env, sysLog := configureEnv(t, dir)
	script := harness.WriteFile(t, dir, "imon-action", "#!/bin/sh\n", 0o755)
	keep := []string{"fakebin", "imon-action"}
	path := filepath.Join(dir, "imon-demo")
	steps := readmeSteps(script, path)
	answers := strings.Split(strings.TrimSuffix(pipedAnswers(steps), "\n"), "\n")

	for _, n := range []int{0, 1, 11, len(answers)} { // len: EOF at "Write configuration file"
		r := runIn(t, harness.Binary(t), env, strings.NewReader(strings.Join(answers[:n], "\n")), "configure", "--config", path)
		if r.code != 1 || !strings.Contains(r.stderr, "not written") {
			t.Errorf("input ending after %d answers: want exit 1 and 'not written', got %s", n, r)
		}
		noFile(t, dir, path, keep...)
	}

	// SIGINT while a question waits for its answer.
	stderr, code := sigintAt(t, env, path, strings.Join(answers[:5], "\n")+"\n", "Ping count (pingcount) [2]: ")
	if code != 1 || !strings.Contains(stderr, "not written") {
		t.Errorf("configure after SIGINT: exit %d, stderr %q; want exit 1 and 'not written'", code, stderr)
	}
	noFile(t, dir, path, keep...)

	// Input ends at "Enable and start imon@demo now? [y/N]", after the file
	// was written: that is a no, and a success.
	all := pipedAnswers(append(steps, step{"Write", "y"}))
	r := runIn(t, harness.Binary(t), env, strings.NewReader(all), "configure", "--config", path)
	wantExit(t, r, 0, "configure with input ending at the service question")
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file not written: %v", err)
	}
	if strings.Contains(r.stderr+r.stdout, "not written") {
		t.Errorf("configure says 'not written' after writing the file:\n%s", r)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	// SIGINT at the service question: the file is written, and said so.
	stderr, code = sigintAt(t, env, path, all, "Enable and start imon@demo now? [y/N] ")
	if want := "wrote '" + path + "', then interrupted before enabling imon@demo"; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("configure after SIGINT at the service question: exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file not written: %v", err)
	}
	if _, err := os.Stat(sysLog); !os.IsNotExist(err) {
		t.Errorf("systemctl was called")
	}
}

// sigintAt runs imon configure --config path with answers on a pipe that
// stays open, sends SIGINT once prompt is shown, and returns its stderr
// and exit code.
func sigintAt(t *testing.T, env []string, path, answers, prompt string) (string, int) {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), "configure", "--config", path)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := startPiped(t, cmd)
	defer stdin.Close()
	if _, err := io.WriteString(stdin, answers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, bufio.NewReader(stdout), prompt)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drain until exit
	if err := waitExit(cmd, 10*time.Second); err != nil && cmd.ProcessState.ExitCode() < 0 {
		t.Fatalf("configure after SIGINT: %v", err)
	}
	return stderr.String(), cmd.ProcessState.ExitCode()
}

// waitFor reads r until s was read.
func waitFor(t *testing.T, r *bufio.Reader, s string) {
	t.Helper()
	found := make(chan error, 1)
	go func() {
		var seen []byte
		for {
			b, err := r.ReadByte()
			if err != nil {
				found <- fmt.Errorf("output ended before %q: %w; got %q", s, err, seen)
				return
			}
			seen = append(seen, b)
			if strings.HasSuffix(string(seen), s) {
				found <- nil
				return
			}
		}
	}()
	select {
	case err := <-found:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(cliTimeout):
		t.Fatalf("no %q within %s", s, cliTimeout)
	}
}

// waitExit waits for cmd to exit, killing it after timeout.
func waitExit(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %s: killed", timeout)
	}
}

// TestConfigureSymlink: invoked as imon-configure, the binary runs
// configure; answering yes to the last question runs systemctl enable
// --now imon@NAME (a fake here).
func TestConfigureSymlink(t *testing.T) {
	dir := t.TempDir()
	env, sysLog := configureEnv(t, dir)
	link := filepath.Join(dir, "imon-configure")
	if err := os.Symlink(harness.Binary(t), link); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "imon-short")
	steps := []step{
		{"Instance name [short]: ", "short"},
		{"Note to add to config file: ", ""},
		{"Full path to action script (action): ", ""},
		{"* Enable the 'ddns' monitor? [y/N]: ", ""},
		{"* Enable the 'updown' monitor? [y/N]: ", ""},
		{"* Enable the 'failover' monitor? [y/N]: ", ""},
		{"* Enable the 'ping' monitor? [y/N]: ", ""},
		{"Journal database file (path) [/var/lib/imon/short.db]: ", ""},
		{"Days to keep journal events (max-age) [30]: ", ""},
		{"Maximum journal size in MiB (max-bytes) [64]: ", ""},
		{"* Enable MQTT? [y/N]: ", ""},
		{"Write configuration file '" + path + "'? [Y/n] ", ""},
		{"Enable and start imon@short now? [y/N] ", "y"},
	}
	r := runIn(t, link, env, strings.NewReader(pipedAnswers(steps)), "--config", path)
	wantExit(t, r, 0, "imon-configure")
	wantInOrder(t, r.stdout, steps)
	r = imon(t, "check", "--config", path)
	wantExit(t, r, 0, "check of the imon-configure file")
	b, err := os.ReadFile(sysLog)
	if err != nil || string(b) != "enable --now imon@short\n" {
		t.Errorf("systemctl got %q (%v), want enable --now imon@short", b, err)
	}
}

// pty is a pseudo-terminal running a command, driven as a user would:
// wait for the prompt, type the answer.
type pty struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	exited chan struct{}
	read   chan struct{} // closed when the output ended

	mu  sync.Mutex // guards the following
	out []byte
	pos int // consumed by expect
	new chan struct{}
}

// openPTY opens a pseudo-terminal pair with golang.org/x/sys/unix. It
// skips the test (fails it with CI=true) when the machine has none.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		nettest.Unavailable(t, "no pseudo-terminal: /dev/ptmx: %v", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx") // non-blocking: Close ends a Read
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	// TIOCGPTPEER opens the slave without a path lookup (works whatever
	// devpts instance /dev/pts is); fall back to the name.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno == 0 {
		return master, os.NewFile(sfd, "pty-slave")
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	return master, slave
}

// startPTY runs bin args on a new pseudo-terminal, as its controlling
// terminal (so that ^C sends SIGINT).
func startPTY(t *testing.T, env []string, bin string, args ...string) *pty {
	t.Helper()
	master, slave := openPTY(t)
	p := &pty{t: t, master: master, exited: make(chan struct{}), read: make(chan struct{}), new: make(chan struct{}, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	go func() {
		defer close(p.read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.out = append(p.out, buf[:n]...)
				p.mu.Unlock()
				select {
				case p.new <- struct{}{}:
				default:
				}
			}
			if err != nil { // EIO once the command and its terminal are gone
				return
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("terminal output:\n%s", p.output())
		}
	})
	return p
}

func (p *pty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.out)
}

// expect waits until s appears in the output after what was consumed.
func (p *pty) expect(s string) {
	p.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		p.mu.Lock()
		i := strings.Index(string(p.out[p.pos:]), s)
		if i >= 0 {
			p.pos += i + len(s)
		}
		p.mu.Unlock()
		if i >= 0 {
			return
		}
		select {
		case <-p.new:
		case <-p.read:
			p.mu.Lock()
			done := !strings.Contains(string(p.out[p.pos:]), s)
			p.mu.Unlock()
			if done {
				p.t.Fatalf("terminal closed before %q", s)
			}
		case <-deadline:
			p.t.Fatalf("no %q on the terminal within 20 s", s)
		}
	}
}

// send types s.
func (p *pty) send(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		p.t.Fatalf("typing %q: %v", s, err)
	}
}

// exitCode waits for the command to end.
func (p *pty) exitCode() int {
	p.t.Helper()
	select {
	case <-p.exited:
		<-p.read
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		p.t.Fatal("command still running 20 s after the session")
		return -1
	}
}

// play types each answer once its prompt is on the terminal (Enter is a
// carriage return, as a keyboard sends it).
func (p *pty) play(steps []step) {
	p.t.Helper()
	for _, s := range steps {
		p.expect(s.prompt)
		if !s.isMessage() {
			p.send(s.answer + "\r")
		}
	}
}

// TestConfigurePTY: the README session typed on a terminal, then ^D and
// ^C in the middle of a session.
func TestConfigurePTY(t *testing.T) {
	dir := t.TempDir()
	env, sysLog := configureEnv(t, dir)
	script := harness.WriteFile(t, dir, "imon-action", "#!/bin/sh\n", 0o755)
	keep := []string{"fakebin", "imon-action"}

	t.Run("readme", func(t *testing.T) {
		path := filepath.Join(dir, "imon-demo")
		before := time.Now()
		p := startPTY(t, env, harness.Binary(t), "configure", "--config", path)
		p.play(append(readmeSteps(script, path),
			step{"Write configuration file '" + path + "'? [Y/n] ", "Y"},
			step{"Wrote '" + path + "'", ""},
			step{"Enable and start imon@demo now? [y/N] ", ""}))
		if code := p.exitCode(); code != 0 {
			t.Fatalf("exit %d", code)
		}
		// The terminal echoed what was typed.
		if !strings.Contains(p.output(), "Note to add to config file: "+readmeNote+"\r\n") {
			t.Errorf("the note typed was not echoed")
		}
		wantReadmeFile(t, path, script, before, time.Now())
		wantHostProblemsOnly(t, imon(t, "check", "--config", path), path)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name, typed string
	}{
		{"ctrl-d", "\x04"},      // at the start of a line: end of input
		{"ctrl-c", "8.8.8\x03"}, // while typing an answer
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "imon-"+tc.name)
			p := startPTY(t, env, harness.Binary(t), "configure", "--config", path)
			p.play(readmeSteps(script, path)[:13])
			p.expect("Name/IP address of DNS server (dnsserver): ")
			p.send(tc.typed)
			if tc.name == "ctrl-d" {
				// (^C makes the terminal flush its output queue, which
				// may swallow what the program printed right after the
				// signal: the message is checked on a pipe in
				// TestConfigureAbort.)
				p.expect("not written")
			}
			if code := p.exitCode(); code != 1 {
				t.Errorf("exit %d after %s, want 1", code, tc.name)
			}
			noFile(t, dir, path, keep...)
		})
	}

	// ^C at the service question: the file is written, and said so.
	t.Run("ctrl-c after writing", func(t *testing.T) {
		path := filepath.Join(dir, "imon-late")
		p := startPTY(t, env, harness.Binary(t), "configure", "--config", path)
		p.play(append(readmeSteps(script, path), step{"Write configuration file '" + path + "'? [Y/n] ", ""}))
		p.expect("Enable and start imon@demo now? [y/N] ")
		p.send("\x03")
		if code := p.exitCode(); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if strings.Contains(p.output(), "not written") {
			t.Errorf("configure says 'not written' after writing the file")
		}
		wantReadmeFile(t, path, script, time.Now().Add(-time.Minute), time.Now())
	})
	if _, err := os.Stat(sysLog); !os.IsNotExist(err) {
		t.Errorf("systemctl was called")
	}
}
