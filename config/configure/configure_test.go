package configure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"imon/config"
	"imon/config/configure"
)

var created = time.Date(2026, 11, 24, 9, 30, 0, 0, time.Local)

func now() time.Time { return created }

// fakeIfaces accepts the README's two interface names.
func fakeIfaces(name string) error {
	if name == "enxa0cec8003294" || name == "enxa0cec80380a9" {
		return nil
	}
	return errors.New("interface " + name + " does not exist")
}

func writeScript(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "imon-action")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// readmeAnswers returns the README session's answers with the action
// script replaced by script, and blank answers for the four new prompts
// before the final "Write configuration file" y.
func readmeAnswers(t *testing.T, script string) []string {
	t.Helper()
	data, err := os.ReadFile("testdata/imon-configure-session-answers.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[2] != "/usr/local/bin/imon-action" || lines[len(lines)-1] != "y" {
		t.Fatalf("unexpected answers file: %q", lines)
	}
	lines[2] = script
	last := len(lines) - 1
	return append(append(lines[:last:last], "", "", "", ""), "y")
}

// The prompts of the README session, in order (piped answers are not
// echoed, so the output is the prompts end to end).
var readmePrompts = []string{
	"Instance name [main]: ",
	"Note to add to config file: ",
	"Full path to action script (action): ",
	"* Enable the 'ddns' monitor? [y/N]: ",
	"Interval between checks (interval) [10]: ",
	"Ping count (pingcount) [2]: ",
	"Ping wait time (pingwait) [1]: ",
	"* Enable the 'updown' monitor? [y/N]: ",
	"Interval between checks (interval) [10]: ",
	"Ping count (pingcount) [2]: ",
	"Ping wait time (pingwait) [1]: ",
	"Name/IP address to monitor (monitorip): ",
	"Additional IP addresses to ping (addping): ",
	"Name/IP address of DNS server (dnsserver): ",
	"DNS name to lookup (dnslookup): ",
	"* Enable the 'failover' monitor? [y/N]: ",
	"Interval between checks (interval) [10]: ",
	"Ping count (pingcount) [2]: ",
	"Ping wait time (pingwait) [1]: ",
	"Prefer primary network (prefer-primary) [N]: ",
	"Network default route metric (metric) [201]: ",
	"Primary network interface name (primary-if): ",
	"Primary network name (primary-name): ",
	"Primary network gateway IP Address (primary-gw): ",
	"Name/IP Address to check if Primary network is up (primary-ping): ",
	"Name/IP Address to ping after failover to Primary (primary-postping): ",
	"Standby network interface name (standby-if): ",
	"Standby network name (standby-name): ",
	"Standby network gateway IP Address (standby-gw): ",
	"Name/IP Address to check if Standby network is up (standby-ping): ",
	"Name/IP Address to ping after failover to Standby (standby-postping): ",
	"* Enable the 'ping' monitor? [y/N]: ",
	"Interval between pings (interval) [10]: ",
	"Ping count (pingcount) [2]: ",
	"Ping wait time (pingwait) [1]: ",
	"Name/IP Address to ping (monitorip): ",
	// imon sections
	"Journal database file (path) [/var/lib/imon/demo.db]: ",
	"Days to keep journal events (max-age) [30]: ",
	"Maximum journal size in MiB (max-bytes) [64]: ",
	"* Enable MQTT? [y/N]: ",
}

const header = "\nBuild imon configuration file\nSee https://github.com/gitbls/imon for configuration details\n\n"

func run(t *testing.T, answers []string, opt configure.Options) (string, error) {
	t.Helper()
	var out bytes.Buffer
	in := strings.NewReader(strings.Join(answers, "\n") + "\n")
	err := configure.Run(context.Background(), in, &out, opt)
	return out.String(), err
}

func TestREADMESession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := writeScript(t, dir)
	path := filepath.Join(dir, "imon-demo")
	out, err := run(t, readmeAnswers(t, script), configure.Options{Path: path, Now: now, LookupIface: fakeIfaces})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	wantOut := header + strings.Join(readmePrompts, "") +
		"\nWrite configuration file '" + path + "'? [Y/n] " + "Wrote '" + path + "'\n"
	if out != wantOut {
		t.Errorf("output\n%q\nwant\n%q", out, wantOut)
	}

	// The file is the original's, but for the case of the note, the action
	// script, the version and date, and the imon sections at the end.
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile("../testdata/imon-configure-output.json")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		"/usr/local/bin/imon-action", script,
		"note to add to config file: one line of info. or not", "Note to add to config file: one line of info. Or not",
		`"V1.0"`, `"V2.0"`,
		"2026-11-23 18:41:40", "2026-11-24 09:30:00",
	).Replace(string(orig))
	want = strings.TrimSuffix(want, "    }\n}\n") + `    },
    "journal": {
        "path": "/var/lib/imon/demo.db",
        "max-age": 2592000,
        "max-bytes": 67108864
    },
    "mqtt": {
        "enable": false
    },
    "homeassistant": {
        "enable": false
    }
}
`
	if string(got) != want {
		t.Errorf("file\n%s\nwant\n%s", got, want)
	}
	sameValues(t, got, orig)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %04o, want 0644", fi.Mode().Perm())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("the written file does not load: %v", err)
	}
	if c.Global.Instance != "demo" || !c.Failover.Enable || c.Failover.Primary.GW != netip.MustParseAddr("192.168.42.1") {
		t.Errorf("loaded %+v", c)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want the script and the config (no temp file)", len(entries))
	}
}

// sameValues compares every value of orig with got, as JSON values (2 ==
// 2.0), but the note (case), action, version and creation date.
func sameValues(t *testing.T, got, orig []byte) {
	t.Helper()
	var g, o map[string]map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(orig, &o); err != nil {
		t.Fatal(err)
	}
	for section, keys := range o {
		for k, ov := range keys {
			gv := g[section][k]
			switch section + "." + k {
			case "global.action", "global.imon-configure-version", "global.imon-configure-created":
				continue
			case "global.note":
				gv, ov = strings.ToLower(gv.(string)), strings.ToLower(ov.(string))
			}
			if !reflect.DeepEqual(gv, ov) {
				t.Errorf("%s.%s = %#v, want %#v", section, k, gv, ov)
			}
		}
		if len(g[section]) != len(keys) {
			t.Errorf("section %s has %d keys, want %d", section, len(g[section]), len(keys))
		}
	}
}

func TestBadAnswersAreAskedAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := writeScript(t, dir)
	ifaces := map[string][]netip.Prefix{
		"eth1": {netip.MustParsePrefix("192.168.42.2/24")},
		"eth2": {netip.MustParsePrefix("192.168.62.2/24")},
	}
	addrs := func(name string) ([]netip.Prefix, error) {
		a, ok := ifaces[name]
		if !ok {
			return nil, config.ErrNoInterface
		}
		return a, nil
	}
	answers := []string{
		"my instance", "Garage", // instance
		"Keep Case", // note
		"/nonexistent", "imon-action", script,
		"maybe", "y", // ddns
		"abc", "0", "2.5", // interval
		"x", "0", "3", // pingcount
		"-1", "0.5", // pingwait
		"yes", "", "", "", // updown
		"", "1.1.1", "one.one.one.one",
		"10.0.0.1,bad_name", " 10.0.0.1 , router.lan ,",
		"", // dnsserver
		"example.com", "",
		"Y", "", "", "", // failover
		"perhaps", "n",
		"-5", "100",
		"nope0", "nope0", // accepted on repeat
		"isp:1", "fiber",
		"router.lan", "192.168.43.1", "192.168.42.1",
		"", "",
		"nope0", "eth2",
		"lte",
		"192.168.63.1", "192.168.63.1", // off the subnet, accepted on repeat
		"", "8.8.8.8",
		"N", // ping
		"var/lib/imon.db", "",
		"0", "7",
		"0", "16",
		"", // mqtt
		"",
	}
	path := filepath.Join(dir, "imon-garage")
	out, err := run(t, answers, configure.Options{Path: path, Now: now, IfaceAddrs: addrs})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	for _, msg := range []string{
		`Instance name [main]: % Instance name "my instance" holds ' ': use letters, digits, '.', '_' and '-'` + "\nInstance name [main]: ",
		"% Action script /nonexistent does not exist\n",
		`% Action script "imon-action" is not an absolute path` + "\n",
		"* Enable the 'ddns' monitor? [y/N]: % Answer y or n\n* Enable the 'ddns' monitor? [y/N]: ",
		"% Enter an integer or floating point number\nInterval between checks (interval) [10]: % Must be greater than 0.0\n",
		"% Enter an integer\nPing count (pingcount) [2]: % Must be greater than 0\n",
		"Ping wait time (pingwait) [1]: % Must be greater than 0.0\n",
		"Name/IP address to monitor (monitorip): % Value required\n",
		`% "1.1.1" is not a valid IP address` + "\n",
		`% "bad_name" is not a valid IP address or host name: character '_' is not allowed` + "\n",
		"% Leave it empty: there is no DNS server (dnsserver) to look it up on\n",
		"Prefer primary network (prefer-primary) [N]: % Answer y or n\n",
		"% Must be 0..2147483647\n",
		`% Interface "nope0" does not exist (enter it again to use it anyway)` + "\n",
		"% Using 'nope0' anyway\n",
		`% Network name "isp:1" holds ':': it may hold neither ':' nor spaces` + "\n",
		"% IP Address required\n",
		"% Nope0 is the primary network's interface already\n",
		"% Gateway 192.168.63.1 is not in a subnet of the interface (192.168.62.2/24) (eth2) (enter it again to use it anyway)\n",
		"% Using '192.168.63.1' anyway\n",
		`% "var/lib/imon.db" is not an absolute path` + "\n",
		"Days to keep journal events (max-age) [30]: % Must be greater than 0.0\n",
		"Maximum journal size in MiB (max-bytes) [64]: % Must be greater than 0\n",
	} {
		if !strings.Contains(out, msg) {
			t.Errorf("output lacks %q", msg)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	c, err := config.Parse(path, mustRead(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if c.Global.Instance != "Garage" || c.Global.Note != "Keep Case" || c.Global.Action != script {
		t.Errorf("global %+v", c.Global)
	}
	if d := c.DDNS; !d.Enable || d.Interval != 2500*time.Millisecond || d.PingCount != 3 || d.PingWait != 500*time.Millisecond {
		t.Errorf("ddns %+v", d.Probe)
	}
	if u := c.Updown; u.MonitorIP != "one.one.one.one" || !reflect.DeepEqual(u.AddPing, []string{"10.0.0.1", "router.lan"}) || u.DNSLookup != "" {
		t.Errorf("updown %+v", u)
	}
	f := c.Failover
	if f.PreferPrimary || f.Metric != 100 || f.Primary.If != "nope0" || f.Primary.Name != "fiber" || f.Standby.If != "eth2" ||
		f.Standby.GW != netip.MustParseAddr("192.168.63.1") || f.Standby.PostPing != "8.8.8.8" {
		t.Errorf("failover %+v", f)
	}
	if c.Ping.Enable || c.Journal.Path != "/var/lib/imon/Garage.db" || c.Journal.MaxAge != 7*24*time.Hour || c.Journal.MaxBytes != 16<<20 {
		t.Errorf("ping %v, journal %+v", c.Ping.Enable, c.Journal)
	}
	if !strings.Contains(string(mustRead(t, path)), `"interval": 2.5,`) {
		t.Error("interval not written as a float")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Ending the input at any answer leaves without writing anything.
func TestEOFWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := writeScript(t, dir)
	answers := readmeAnswers(t, script)
	path := filepath.Join(dir, "imon-demo")
	for n := 0; n < len(answers); n++ {
		var out bytes.Buffer
		in := strings.NewReader(strings.Join(answers[:n], "\n"))
		if n > 0 {
			in = strings.NewReader(strings.Join(answers[:n], "\n") + "\n")
		}
		err := configure.Run(context.Background(), in, &out, configure.Options{Path: path, Now: now, LookupIface: fakeIfaces})
		if !errors.Is(err, configure.ErrAborted) {
			t.Fatalf("after %d answers: err = %v, want ErrAborted", n, err)
		}
		if !strings.HasSuffix(out.String(), ": \n") && !strings.HasSuffix(out.String(), "] \n") {
			t.Errorf("after %d answers: output does not end with the prompt and a newline: %q", n, out.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only the script", len(entries))
	}
}

func TestAnswerNoWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	answers := readmeAnswers(t, writeScript(t, dir))
	answers[len(answers)-1] = "n"
	path := filepath.Join(dir, "imon-demo")
	if out, err := run(t, answers, configure.Options{Path: path, Now: now, LookupIface: fakeIfaces}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file written: %v", err)
	}
}

// promptWriter records the output and signals each time it grows.
type promptWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func newPromptWriter() *promptWriter { return &promptWriter{written: make(chan struct{}, 1)} }

func (w *promptWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.written <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *promptWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor blocks until the output ends with suffix.
func (w *promptWriter) waitFor(t *testing.T, suffix string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !strings.HasSuffix(w.String(), suffix) {
		select {
		case <-w.written:
		case <-timeout:
			t.Fatalf("output %q never ended with %q", w.String(), suffix)
		}
	}
}

// An interactive session: each answer is typed only once its prompt is
// out, without a newline; here it enables MQTT and Home Assistant and
// starts the service.
func TestInteractiveMQTTSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "mqtt.pw")
	ca := filepath.Join(dir, "ca.pem")
	for _, f := range []string{pw, ca} {
		if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "imon-ha")
	inR, inW := io.Pipe()
	out := newPromptWriter()
	var started []string
	done := make(chan error, 1)
	go func() {
		done <- configure.Run(context.Background(), inR, out, configure.Options{
			Path: path, Instance: "ha", Now: now, LookupIface: fakeIfaces,
			OfferService: func(inst string) error { started = append(started, inst); return nil },
		})
	}()
	for _, qa := range [][2]string{
		{"Instance name [ha]: ", ""},
		{"Note to add to config file: ", ""},
		{"Full path to action script (action): ", ""},
		{"* Enable the 'ddns' monitor? [y/N]: ", "n"},
		{"* Enable the 'updown' monitor? [y/N]: ", "y"},
		{"Interval between checks (interval) [10]: ", "1"},
		{"Ping count (pingcount) [2]: ", ""},
		{"Ping wait time (pingwait) [1]: ", ""},
		{"Name/IP address to monitor (monitorip): ", "192.0.2.1"},
		{"Additional IP addresses to ping (addping): ", ""},
		{"Name/IP address of DNS server (dnsserver): ", ""},
		{"DNS name to lookup (dnslookup): ", ""},
		{"* Enable the 'failover' monitor? [y/N]: ", ""},
		{"* Enable the 'ping' monitor? [y/N]: ", ""},
		{"Journal database file (path) [/var/lib/imon/ha.db]: ", ""},
		{"Days to keep journal events (max-age) [30]: ", ""},
		{"Maximum journal size in MiB (max-bytes) [64]: ", ""},
		{"* Enable MQTT? [y/N]: ", "y"},
		{"MQTT broker URL, e.g. mqtt://host:1883 or mqtts://host:8883 (server): ", "broker.lan"},
		{"MQTT broker URL, e.g. mqtt://host:1883 or mqtts://host:8883 (server): ", "mqtts://Broker.lan:8883"},
		{"MQTT user name (username): ", "Imon"},
		{"File holding the MQTT password (password-file): ", pw},
		{"CA certificate file (ca-file): ", ca},
		{"* Enable Home Assistant discovery? [y/N]: ", "y"},
		{"Home Assistant discovery prefix (discovery-prefix) [homeassistant]: ", ""},
		{"\nWrite configuration file '" + path + "'? [Y/n] ", ""},
		{"Enable and start imon@ha now? [y/N] ", "y"},
	} {
		out.waitFor(t, qa[0])
		if _, err := io.WriteString(inW, qa[1]+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !reflect.DeepEqual(started, []string{"ha"}) {
		t.Errorf("OfferService calls %q", started)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600 with MQTT", fi.Mode().Perm())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	m := c.MQTT
	if !m.Enable || m.Server != "mqtts://Broker.lan:8883" || m.Username != "Imon" || m.PasswordFile != pw || m.CAFile != ca {
		t.Errorf("mqtt %+v", m)
	}
	if !c.HomeAssistant.Enable || c.HomeAssistant.DiscoveryPrefix != "homeassistant" || c.Updown.Interval != time.Second {
		t.Errorf("homeassistant %+v, updown %+v", c.HomeAssistant, c.Updown)
	}
}

func TestCancelWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inR, inW := io.Pipe()
	defer inW.Close()
	out := newPromptWriter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- configure.Run(ctx, inR, out, configure.Options{Path: filepath.Join(dir, "imon-x"), Now: now})
	}()
	out.waitFor(t, "Instance name [main]: ")
	io.WriteString(inW, "x\n") //nolint:errcheck // read by Run
	out.waitFor(t, "Note to add to config file: ")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("dir holds %d entries", len(entries))
	}
}

// TestReplaceKeepsBackup: configure over an existing file says so before
// the write question, and keeps the old file as FILE.bak.
func TestReplaceKeepsBackup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	answers := readmeAnswers(t, writeScript(t, dir))
	path := filepath.Join(dir, "imon-demo")
	old := "{\"global\": {\"instance\": \"demo\"}, \"journal\": {\"socket\": \"/run/imon/x.sock\"}}\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, answers, configure.Options{Path: path, Now: now, LookupIface: fakeIfaces})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	warn := "% '" + path + "' exists: it will be replaced, and kept as '" + path + ".bak'"
	if i, j := strings.Index(out, warn), strings.Index(out, "Write configuration file"); i < 0 || j < i {
		t.Errorf("no %q before the write question in:\n%s", warn, out)
	}
	if !strings.Contains(out, "The previous file is kept as '"+path+".bak'") {
		t.Errorf("not told where the previous file is:\n%s", out)
	}
	if b, err := os.ReadFile(path + ".bak"); err != nil || string(b) != old {
		t.Errorf("backup = %q, %v; want the old file", b, err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) == old {
		t.Errorf("the file was not replaced (%v)", err)
	}
}

// TestUnwritableTargetBeforeQuestions: a --config that cannot be written
// (a directory, a missing folder) fails before the first question.
func TestUnwritableTargetBeforeQuestions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, path := range []string{dir, filepath.Join(dir, "no", "such", "imon-x")} {
		out, err := run(t, nil, configure.Options{Path: path, Now: now, LookupIface: fakeIfaces})
		if err == nil || !strings.Contains(err.Error(), "cannot write "+path) {
			t.Errorf("%s: err = %v, want cannot write", path, err)
		}
		if strings.Contains(out, "Instance name") {
			t.Errorf("%s: asked questions first:\n%s", path, out)
		}
	}
}
