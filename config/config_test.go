package config_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"imon/config"
	"imon/internal/nettest"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t *testing.T, path string, data []byte) *config.Config {
	t.Helper()
	c, err := config.Parse(path, data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// probe is the original's default probe settings.
var probe = config.Probe{Interval: 10 * time.Second, PingCount: 2, PingWait: time.Second}

func enabled(p config.Probe) config.Probe { p.Enable = true; return p }

// checkSections compares every section of got with want.
func checkSections(t *testing.T, got, want *config.Config) {
	t.Helper()
	for _, s := range []struct {
		name      string
		got, want any
	}{
		{"global", got.Global, want.Global},
		{"ddns", got.DDNS, want.DDNS},
		{"updown", got.Updown, want.Updown},
		{"failover", got.Failover, want.Failover},
		{"ping", got.Ping, want.Ping},
		{"journal", got.Journal, want.Journal},
		{"homeassistant", got.HomeAssistant, want.HomeAssistant},
	} {
		if !reflect.DeepEqual(s.got, s.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", s.name, s.got, s.want)
		}
	}
	// The MQTT node id depends on the host name: compare the rest.
	gm, wm := got.MQTT, want.MQTT
	gm.NodeID, gm.ClientID, wm.NodeID, wm.ClientID = "", "", "", ""
	if !reflect.DeepEqual(gm, wm) {
		t.Errorf("mqtt:\n got %+v\nwant %+v", gm, wm)
	}
}

// defaultFailover is the failover section with every imon default.
func defaultFailover() config.Failover {
	return config.Failover{
		Probe: probe, Metric: 201, DownAfter: 6, UpAfter: 5,
		HoldTime: 30 * time.Second, HoldMax: 600 * time.Second, ProbeInterval: time.Second,
		FlushConntrack: true, TableBase: 201, RulePriority: 10100, FwmarkBase: 457, RouteProtocol: 201,
	}
}

func defaultTail(inst string) (config.Journal, config.MQTT, config.HomeAssistant) {
	return config.Journal{
			Path: "/var/lib/imon/" + inst + ".db", Socket: "/run/imon/" + inst + ".sock",
			MaxAge: 30 * 24 * time.Hour, MaxBytes: 64 << 20, HistoryDays: 365,
		},
		config.MQTT{TopicPrefix: "imon", Commands: true, KeepAlive: 30 * time.Second},
		config.HomeAssistant{DiscoveryPrefix: "homeassistant"}
}

func TestOriginalConfigureOutput(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "/etc/default/imon-demo", readFile(t, "testdata/imon-configure-output.json"))
	fo := defaultFailover()
	fo.Probe = enabled(probe)
	fo.Primary = config.WAN{If: "enxa0cec8003294", Name: "pnet", GW: netip.MustParseAddr("192.168.42.1")}
	fo.Standby = config.WAN{If: "enxa0cec80380a9", Name: "snet", GW: netip.MustParseAddr("192.168.62.1")}
	j, m, ha := defaultTail("demo")
	want := &config.Config{
		Global: config.Global{
			Action: "/usr/local/bin/imon-action", DateFmt: "%Y-%m-%d %H:%M:%S", Instance: "demo",
			Note:             "note to add to config file: one line of info. or not",
			ConfigureVersion: "V1.0", ConfigureCreated: "2026-11-23 18:41:40",
			ActionTimeout: 30 * time.Second, ActionMaxAge: time.Hour,
		},
		DDNS: config.DDNS{Probe: enabled(probe), Providers: config.DefaultDDNSProviders, Quorum: 2, Timeout: 2 * time.Second},
		Updown: config.Updown{
			Probe: enabled(probe), MonitorIP: "1.1.1.1", AddPing: []string{"192.168.92.1", "192.168.1.1"},
			DNSServer: "8.8.8.8", DNSLookup: "microsoft.com", DownInterval: time.Second,
		},
		Failover: fo,
		Ping:     config.Ping{Probe: enabled(probe), MonitorIP: "1.1.1.1"},
		Journal:  j, MQTT: m, HomeAssistant: ha,
	}
	checkSections(t, c, want)
	if c.Path != "/etc/default/imon-demo" {
		t.Errorf("Path = %q", c.Path)
	}
}

func wantReadmeExample() *config.Config {
	fo := defaultFailover()
	fo.Interval = time.Second
	fo.ProbeInterval = 100 * time.Millisecond // 1 s / (2*5)
	fo.PreferPrimary = true
	fo.Primary = config.WAN{If: "enxa0cec8003294", Name: "net42", GW: netip.MustParseAddr("192.168.42.1")}
	fo.Standby = config.WAN{If: "enxa0cec80380a9", Name: "net62", GW: netip.MustParseAddr("192.168.62.1")}
	j, m, ha := defaultTail("main")
	return &config.Config{
		Global: config.Global{
			Action: "/usr/local/bin/imon-action", DateFmt: "%Y-%m-%d %H:%M:%S", Instance: "main",
			Note: "all but failover", ConfigureVersion: "V1.0", ConfigureCreated: "2022-04-29 14:42:56",
			ActionTimeout: 30 * time.Second, ActionMaxAge: time.Hour,
		},
		DDNS: config.DDNS{Probe: probe, Providers: config.DefaultDDNSProviders, Quorum: 2, Timeout: 2 * time.Second},
		Updown: config.Updown{
			Probe: enabled(probe), MonitorIP: "1.1.1.1", AddPing: []string{"192.168.92.1", "192.168.1.1"},
			DNSServer: "1.1.1.1", DNSLookup: "google.com", DownInterval: time.Second,
		},
		Failover: fo,
		Ping:     config.Ping{Probe: probe, MonitorIP: "192.168.1.1"},
		Journal:  j, MQTT: m, HomeAssistant: ha,
	}
}

func TestReadmeAnnotatedExample(t *testing.T) {
	t.Parallel()
	// The file is named imon-demo, but its global.instance (main) wins.
	c := mustParse(t, "/etc/default/imon-demo", readFile(t, "testdata/readme-annotated-example.json"))
	checkSections(t, c, wantReadmeExample())
}

// The README prints the example with ### comment lines; it loads as printed.
func TestReadmeExampleWithComments(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "/etc/default/imon-main", readFile(t, "testdata/readme-annotated-commented.json"))
	checkSections(t, c, wantReadmeExample())
}

// writeScript writes an executable action script into dir.
func writeScript(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "imon-action")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil { // umask
		t.Fatal(err)
	}
	return p
}

// writeConfig writes data as dir/imon-NAME with mode.
func writeConfig(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "imon-"+name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadOriginalFiles(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"imon-configure-output.json", "readme-annotated-example.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script := writeScript(t, dir)
			data := strings.ReplaceAll(string(readFile(t, "testdata/"+name)), "/usr/local/bin/imon-action", script)
			path := writeConfig(t, dir, "demo", []byte(data), 0o644)
			c, err := config.Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Global.Action != script || c.Path != path {
				t.Errorf("Action = %q, Path = %q", c.Global.Action, c.Path)
			}
		})
	}
}

func TestLoadRefusesWritableConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o664, "config file is writable by group/others (mode 0664): run chmod go-w "},
		{0o646, "config file is writable by group/others (mode 0646): run chmod go-w "},
		{0o600, ""},
		{0o644, ""},
	} {
		path := writeConfig(t, dir, "perm", []byte(`{"global": {"note": "x"}}`), tc.mode)
		_, err := config.Load(path)
		if tc.want == "" {
			if err != nil {
				t.Errorf("mode %04o: %v", tc.mode, err)
			}
			continue
		}
		want := path + ": " + tc.want + path
		if err == nil || err.Error() != want {
			t.Errorf("mode %04o: got %v\nwant %s", tc.mode, err, want)
		}
	}
}

func TestLoadRefusesConfigOfOtherUser(t *testing.T) {
	t.Parallel()
	nettest.NeedRoot(t, "file ownership and modes")
	dir := t.TempDir()
	path := writeConfig(t, dir, "owner", []byte(`{}`), 0o644)
	if err := os.Chown(path, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	want := path + ": config file is owned by uid 1000, not root: run chown root " + path
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "imon-none"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

func TestLoadChecksFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	data := `{
  "global": {"action": "` + dir + `/no-such-script"},
  "mqtt": {"enable": true, "server": "mqtts://broker.lan", "password-file": "` + pw + `", "ca-file": "` + dir + `/ca.pem"}
}`
	path := writeConfig(t, dir, "files", []byte(data), 0o600)
	_, err := config.Load(path)
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want Problems", err)
	}
	want := []string{
		path + ":2: global.action: action script " + dir + "/no-such-script does not exist",
		path + ":3: mqtt.password-file: " + pw + " holds a secret but others may read or write it (mode 0644): run chmod o-rw " + pw,
		path + ":3: mqtt.ca-file: " + dir + "/ca.pem does not exist",
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLoadChecksSpecialFiles: a FIFO as mqtt.password-file, or a ca-file
// far bigger than a CA bundle, is a problem naming it; the check never
// blocks on the FIFO (it hung before, waiting for a writer).
func TestLoadChecksSpecialFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, make([]byte, config.MaxCAFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	data := `{
  "mqtt": {"enable": true, "server": "mqtts://broker.lan", "password-file": "` + fifo + `", "ca-file": "` + ca + `"}
}`
	path := writeConfig(t, dir, "special", []byte(data), 0o600)
	errc := make(chan error, 1)
	go func() { _, err := config.Load(path); errc <- err }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("config.Load blocked on a FIFO password-file")
	}
	want := []string{
		path + ":2: mqtt.password-file: " + fifo + " is not a regular file",
		path + ":2: mqtt.ca-file: " + ca + " holds 1048577 bytes, more than the 1048576 imon reads",
	}
	if err == nil {
		t.Fatal("Load accepted a FIFO password-file and a 1 MiB+1 ca-file")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckScript(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ok := writeScript(t, dir)
	noexec := filepath.Join(dir, "noexec")
	groupw := filepath.Join(dir, "groupw")
	for p, mode := range map[string]os.FileMode{noexec: 0o644, groupw: 0o775} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{ok, ""},
		{"imon-action", `action script "imon-action" is not an absolute path`},
		{dir + "/missing", "action script " + dir + "/missing does not exist"},
		{dir, "action script " + dir + " is not a regular file"},
		{noexec, "action script " + noexec + " is not executable: run chmod +x " + noexec},
		{groupw, "action script " + groupw + " is writable by group/others (mode 0775) and runs as root: run chmod go-w " + groupw},
	} {
		err := config.CheckScript(tc.path)
		if got := errString(err); got != tc.want {
			t.Errorf("CheckScript(%s) = %q\nwant %q", tc.path, got, tc.want)
		}
	}
}

// TestCheckScriptDirectories (issue 11.1a): a root-owned 0755 script in a
// directory owned by an unprivileged user (who could mv -f another file over
// it) is refused, like sshd's StrictModes; so is one below a world-writable
// directory. A sticky directory on the way is fine. Seen failing before:
// imon check said OK.
func TestCheckScriptDirectories(t *testing.T) {
	t.Parallel()
	nettest.NeedRoot(t, "file ownership and modes")
	dir := t.TempDir()
	mk := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	user := mk("user", 0o755, 4242)
	open := mk("open", 0o777, 0)
	sticky := mk("sticky", 0o777|os.ModeSticky, 0)
	for _, tc := range []struct{ dir, want string }{
		{user, "action script " + user + "/imon-action runs as root, but " + user +
			" is a directory owned by uid 4242, not root, so that user could replace what is in it: run chown root " + user},
		{open, "action script " + open + "/imon-action runs as root, but " + open +
			" is a directory writable by group/others (mode 0777), so they could replace what is in it: run chmod go-w " + open},
		{sticky, ""},
	} {
		s := writeScript(t, tc.dir)
		if got := errString(config.CheckScript(s)); got != tc.want {
			t.Errorf("CheckScript(%s) = %q\nwant %q", s, got, tc.want)
		}
	}
}

// TestLoadChecksRuntimeDirs (issue 11.8): a control socket or journal in a
// directory others may write is refused (a squatter could create the socket
// first); a sticky directory on the way is fine. Seen failing before: check
// said OK.
func TestLoadChecksRuntimeDirs(t *testing.T) {
	t.Parallel()
	nettest.NeedRoot(t, "file ownership and modes")
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	data := `{"journal": {"path": "` + open + `/main.db", "socket": "` + open + `/imon/main.sock"}}`
	path := writeConfig(t, dir, "dirs", []byte(data), 0o600)
	_, err := config.Load(path)
	want := []string{
		path + ":1: journal.path: " + open + "/main.db is not safe: " + open + " is writable by group/others (mode 1777), so another user could create or replace files in it: run chmod go-w " + open + ", or use a directory only root can write",
		path + ":1: journal.socket: " + open + "/imon/main.sock is not safe: " + open + " is writable by group/others (mode 1777), so another user could create " + open + "/imon first: run chmod go-w " + open + ", or use a directory only root can write",
	}
	if got := strings.Split(errString(err), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Below a root directory inside the sticky one: fine.
	safe := filepath.Join(open, "imon")
	if err := os.Mkdir(safe, 0o755); err != nil {
		t.Fatal(err)
	}
	data = `{"journal": {"path": "` + safe + `/main.db", "socket": "` + safe + `/run/main.sock"}}`
	path = writeConfig(t, dir, "dirs", []byte(data), 0o600)
	if _, err := config.Load(path); err != nil {
		t.Errorf("Load: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestInvalidFiles(t *testing.T) {
	t.Parallel()
	const f = "/etc/default/imon-x"
	tests := map[string]string{
		"action-relative":          f + `:3: global.action: "imon-action" is not an absolute path`,
		"addping-bad-name":         f + `:5: updown.addping: "my_router" is not a valid IP address or host name: character '_' is not allowed`,
		"dnslookup-without-server": f + `: updown.dnsserver: required when dnslookup is set (the server to look it up on)`,
		"dnsserver-bad-port":       f + `:5: updown.dnsserver: "9.9.9.9:99999": port "99999" is not a number 1..65535`,
		"dnsserver-without-lookup": f + `: updown.dnslookup: required when dnsserver is set (the name to look up there)`,
		"duplicate-key":            f + `:5: ping.monitorip: duplicate key (first at line 4)`,
		"duplicate-section":        f + `:3: ping: duplicate section (first at line 2)`,
		"empty":                    f + `: file is empty: want a JSON object`,
		"enable-string":            f + `:3: ddns.enable: want true or false, got string "yes"`,
		"gw-not-ip":                f + `:4: failover.primary-gw: "router.lan" is not an IP address`,
		"failover-ipv6": f + `:4: failover.primary-gw: fd00::1 is an IPv6 address: failover routes IPv4 only (IPv6 is left to router advertisements)` + "\n" +
			f + `:5: failover.standby-ping: 2001:db8::1 is an IPv6 address: failover probes each WAN over IPv4 only`,
		"journal-overwrites": f + `:3: journal.path: /usr/local/bin/imon-action is global.action: it would be overwritten` + "\n" +
			f + `:3: journal.socket: /etc/default/imon-x is the config file itself: it would be overwritten`,
		"nul-bytes": f + `:2: journal.path: "/var/lib/imon/a\x00b.db" holds a NUL byte` + "\n" +
			f + `:2: journal.socket: "/run/imon/\x00.sock" holds a NUL byte` + "\n" +
			f + `:3: mqtt.username: holds a NUL byte (MQTT forbids it)`,
		"providers-empty":            f + `:4: ddns.providers: is empty: ddns needs at least one provider (remove the key for the default list)`,
		"homeassistant-without-mqtt": f + `:3: homeassistant.enable: needs mqtt (set mqtt.enable to true)`,
		"instance-name":              f + `:3: global.instance: instance name "my instance" holds ' ': use letters, digits, '.', '_' and '-'`,
		"interval-string":            f + `:4: ddns.interval: want a number of seconds, got string "10"`,
		"interval-zero":              f + `:4: ddns.interval: must be at least 0.1 seconds, got 0`,
		// Lower bounds (issue 11.8): 0.001 used to pass and spin.
		"interval-too-small": f + `:3: ping.interval: must be at least 0.1 seconds, got 0.001`,
		"timings-too-small": f + `:5: ddns.timeout: must be at least 0.1 seconds, got 0.001` + "\n" +
			f + `:2: updown.pingwait: must be at least 0.1 seconds, got 0.05` + "\n" +
			f + `:3: updown.down-interval: must be at least 0.1 seconds, got 0.01` + "\n" +
			f + `:4: failover.probe-interval: must be at least 0.05 seconds, got 0.02`,
		"journal-relative":      f + `:3: journal.path: "imon.db" is not an absolute path`,
		"key-in-wrong-section":  f + `:3: ddns.debug: unknown key (it belongs in section "global")`,
		"metric-negative":       f + `:3: failover.metric: must be 0..2147483647, got -1`,
		"monitorip-bad-ip":      f + `:4: updown.monitorip: "192.168.1.256" is not a valid IP address`,
		"mqtt-ca-plain":         f + `:4: mqtt.ca-file: is set but server "mqtt://broker.lan" does not use TLS (use mqtts://)`,
		"mqtt-no-host":          f + `:4: mqtt.server: "mqtt://:1883" has no host (want e.g. mqtt://host:1883)`,
		"mqtt-no-server":        f + `: mqtt.server: required when mqtt is enabled`,
		"mqtt-node-id":          f + `:3: mqtt.node-id: node id "pi 4" holds ' ': use only letters, digits, '_' and '-'`,
		"mqtt-scheme":           f + `:4: mqtt.server: "http://broker.lan:1883": scheme "http" is not one of mqtt, mqtts, tcp, ssl, tls, unix (want e.g. mqtt://host:1883)`,
		"mqtt-topic-wildcard":   f + `:3: mqtt.topic-prefix: topic prefix "imon/#" holds a wildcard ('+', '#') or NUL`,
		"null-value":            f + `:3: global.action: want a string, got null`,
		"ping-no-monitorip":     f + `: ping.monitorip: required when ping is enabled`,
		"pingcount-fraction":    f + `:4: ping.pingcount: want an integer, got number 2.5`,
		"pingcount-range":       f + `:4: ping.pingcount: must be 1..100, got 0`,
		"pingwait-negative":     f + `:5: updown.pingwait: must be at least 0.1 seconds, got -1`,
		"provider-scheme":       f + `:3: ddns.providers: provider "ftp://example.com/ip": scheme "ftp" is not dns, http or https`,
		"provider-type":         f + `:3: ddns.providers: provider "dns://9.9.9.9/whoami.example?type=MX": type "MX" is not A, AAAA or TXT`,
		"providers-string":      f + `:3: ddns.providers: want a list of strings, got string "https://api.ipify.org"`,
		"quorum-zero":           f + `:3: ddns.quorum: must be at least 1, got 0`,
		"same-interface":        f + `:5: failover.standby-if: is "eth1", the same interface as primary-if`,
		"section-not-object":    f + `:2: ddns: want an object {...}, got true`,
		"syntax-trailing-comma": f + `:4:3: syntax error: invalid character '}' looking for beginning of object key string`,
		"syntax-truncated":      f + `:4:1: syntax error: unexpected end of JSON input`,
		"syntax-unquoted-key":   f + `:3:5: syntax error: invalid character 'e' looking for beginning of object key string`,
		"top-level-array":       f + `:1:1: want a JSON object {...} at the top level, got list`,
		"unknown-section":       f + `:2: updwon: unknown section (did you mean "updown"?)`,
		"updown-no-monitorip":   f + `:4: updown.monitorip: required when updown is enabled`,
		"wan-name-colon":        f + `:3: failover.primary-name: network name "isp:1" holds ':': it may hold neither ':' nor spaces`,
		// Several problems at once.
		"unknown-key": f + `:4: updown.monitorp: unknown key (did you mean "monitorip"?)` + "\n" +
			f + `: updown.monitorip: required when updown is enabled`,
		"failover-incomplete": f + `: failover.primary-gw: required when failover is enabled` + "\n" +
			f + `: failover.standby-name: required when failover is enabled` + "\n" +
			f + `: failover.standby-gw: required when failover is enabled`,
	}
	files, err := filepath.Glob("testdata/invalid-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d invalid-*.json files but %d test cases", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse(f, readFile(t, "testdata/invalid-"+name+".json"))
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err = %v (%T), want Problems", err, err)
			}
			if err.Error() != want {
				t.Errorf("got\n%s\nwant\n%s", err, want)
			}
			for _, p := range ps {
				if p.File != f || p.Msg == "" {
					t.Errorf("problem %+v lacks file or message", p)
				}
			}
		})
	}
}

func TestManyProblemsAtOnce(t *testing.T) {
	t.Parallel()
	data := `{
  "global": {"datefmt": "%H", "notes": "x"},
  "updown": {"enable": true, "pingcount": 0, "monitorip": "a..b"},
  "failover": {"enable": true, "metric": 2.5},
  "mqtt": {"enable": true, "server": "mqtt://broker.lan", "keepalive": 0},
  "homeassistant": {"enable": true}
}`
	c, err := config.Parse("imon-many", []byte(data))
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want Problems", err)
	}
	if c == nil {
		t.Fatal("no Config returned with the problems")
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Section+"."+p.Key)
	}
	want := []string{
		"global.notes", "failover.metric",
		"updown.pingcount", "updown.monitorip",
		"failover.primary-if", "failover.primary-name", "failover.primary-gw",
		"failover.standby-if", "failover.standby-name", "failover.standby-gw",
		"mqtt.keepalive",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at\n%v\nwant\n%v\n%s", got, want, err)
	}
	if ps[0].Line != 2 || ps[0].Col != 31 {
		t.Errorf("global.notes at %d:%d, want 2:31", ps[0].Line, ps[0].Col)
	}
	if !strings.Contains(ps[0].Msg, `did you mean "note"?`) {
		t.Errorf("no suggestion: %s", ps[0].Msg)
	}
}

func TestNumbersAndEmptyStrings(t *testing.T) {
	t.Parallel()
	data := `{
  "updown": {"enable": true, "interval": 0.5, "pingcount": 3.0, "pingwait": "", "monitorip": "host.lan",
             "addping": " 10.0.0.1 ,, fd00::1 ,", "dnsserver": "", "dnslookup": ""},
  "failover": {"interval": 2, "pingcount": 4, "primary-ping": "", "metric": 1e2}
}`
	c := mustParse(t, "x", []byte(data))
	u := c.Updown
	if u.Interval != 500*time.Millisecond || u.PingCount != 3 || u.PingWait != time.Second {
		t.Errorf("updown probe = %+v", u.Probe)
	}
	if !reflect.DeepEqual(u.AddPing, []string{"10.0.0.1", "fd00::1"}) {
		t.Errorf("addping = %q", u.AddPing)
	}
	if u.DownInterval != 500*time.Millisecond {
		t.Errorf("down-interval = %v, want min(interval, 1s)", u.DownInterval)
	}
	if c.Failover.Metric != 100 || c.Failover.Primary.Ping != "" {
		t.Errorf("failover = %+v", c.Failover)
	}
	if c.Failover.ProbeInterval != 100*time.Millisecond { // 2 s / (4*5)
		t.Errorf("probe-interval = %v", c.Failover.ProbeInterval)
	}
}

func TestAddPingAsList(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "x", []byte(`{"updown": {"addping": ["10.0.0.1", " r1.lan "]}}`))
	if !reflect.DeepEqual(c.Updown.AddPing, []string{"10.0.0.1", "r1.lan"}) {
		t.Errorf("addping = %q", c.Updown.AddPing)
	}
}

func TestDefaultProbeInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		interval time.Duration
		count    int
		want     time.Duration
	}{
		{10 * time.Second, 2, time.Second},
		{time.Second, 2, 100 * time.Millisecond},
		{100 * time.Millisecond, 2, 50 * time.Millisecond}, // clamped up
		{20 * time.Millisecond, 2, 20 * time.Millisecond},  // never above the interval
		{10 * time.Second, 0, 2 * time.Second},
	} {
		if got := config.DefaultProbeInterval(tc.interval, tc.count); got != tc.want {
			t.Errorf("DefaultProbeInterval(%v, %d) = %v, want %v", tc.interval, tc.count, got, tc.want)
		}
	}
}

func TestInstance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, data, want string }{
		{"/etc/default/imon-garage", `{}`, "garage"},
		{"/etc/default/imon-garage", `{"global": {"instance": "main"}}`, "main"},
		{"/etc/default/imon-garage", `{"global": {"instance": ""}}`, "garage"},
		{"/tmp/test.json", `{}`, "main"},
		{"/etc/default/imon-bad name", `{}`, "main"},
	} {
		c := mustParse(t, tc.path, []byte(tc.data))
		if c.Global.Instance != tc.want {
			t.Errorf("%s %s: instance %q, want %q", tc.path, tc.data, c.Global.Instance, tc.want)
		}
		if c.Journal.Path != "/var/lib/imon/"+tc.want+".db" {
			t.Errorf("journal path %q", c.Journal.Path)
		}
	}
}

func TestSetInstance(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "/etc/default/imon-a", []byte(`{"journal": {"socket": "/run/x.sock"}, "mqtt": {"client-id": "fixed"}}`))
	c.SetInstance("b")
	if c.Global.Instance != "b" || c.Journal.Path != "/var/lib/imon/b.db" || c.Journal.Socket != "/run/x.sock" {
		t.Errorf("after SetInstance: %+v %+v", c.Global, c.Journal)
	}
	if !strings.HasSuffix(c.MQTT.NodeID, "-b") && c.MQTT.NodeID != "b" || c.MQTT.ClientID != "fixed" {
		t.Errorf("mqtt ids %q %q", c.MQTT.NodeID, c.MQTT.ClientID)
	}
	var code config.Config
	code.SetInstance("c") // a Config built in code
	if code.Journal.Socket != "/run/imon/c.sock" {
		t.Errorf("socket %q", code.Journal.Socket)
	}
}

func TestDefaultNodeID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ host, inst, want string }{
		{"pi", "main", "pi-main"},
		{"pi.lan", "wan.2", "pi_lan-wan_2"},
		{"", "main", "main"},
	} {
		got := config.DefaultNodeID(tc.host, "", tc.inst)
		if got != tc.want {
			t.Errorf("DefaultNodeID(%q, %q) = %q, want %q", tc.host, tc.inst, got, tc.want)
		}
		if err := config.CheckNodeID(got); err != nil {
			t.Error(err)
		}
	}
}

func TestParseProvider(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want config.Provider
		err  string
	}{
		{in: "dns://1.1.1.1/whoami.cloudflare?type=TXT&class=CH",
			want: config.Provider{Scheme: "dns", Server: "1.1.1.1", Port: 53, Name: "whoami.cloudflare", Type: "TXT", Class: "CH"}},
		{in: "dns://208.67.222.222/myip.opendns.com",
			want: config.Provider{Scheme: "dns", Server: "208.67.222.222", Port: 53, Name: "myip.opendns.com", Type: "A", Class: "IN"}},
		{in: "dns://[2606:4700:4700::1111]:5353/whoami.cloudflare.?type=aaaa",
			want: config.Provider{Scheme: "dns", Server: "2606:4700:4700::1111", Port: 5353, Name: "whoami.cloudflare", Type: "AAAA", Class: "IN"}},
		{in: "dns://ns1.google.com/o-o.myaddr.l.google.com?type=TXT",
			want: config.Provider{Scheme: "dns", Server: "ns1.google.com", Port: 53, Name: "o-o.myaddr.l.google.com", Type: "TXT", Class: "IN"}},
		{in: "https://api.ipify.org", want: config.Provider{Scheme: "http", Server: "api.ipify.org"}},
		{in: "http://10.0.0.1:8080/ip", want: config.Provider{Scheme: "http", Server: "10.0.0.1", Port: 8080}},
		{in: "dns:///name", err: `provider "dns:///name" has no DNS server (want dns://SERVER[:PORT]/NAME?type=A|AAAA|TXT&class=IN|CH)`},
		{in: "dns://1.1.1.1", err: `provider "dns://1.1.1.1" has no name to query (want dns://SERVER/NAME)`},
		{in: "dns://1.1.1.1:0/x.y", err: `provider "dns://1.1.1.1:0/x.y": port "0" is not a number 1..65535`},
		{in: "dns://1.1.1.1/x.y?class=HS", err: `provider "dns://1.1.1.1/x.y?class=HS": class "HS" is not IN or CH`},
		{in: "dns://1.1.1.1/x.y?typ=A", err: `provider "dns://1.1.1.1/x.y?typ=A": unknown parameter "typ" (want type and class)`},
		{in: "dns://1.1.1.1/x.y?type=A&type=TXT", err: `provider "dns://1.1.1.1/x.y?type=A&type=TXT": type is given 2 times`},
		{in: "dns://1.1.1.1/bad..name", err: `provider "dns://1.1.1.1/bad..name": "bad..name" is not a valid DNS name: empty label`},
		{in: "https://", err: `provider "https://" has no host`},
		{in: "api.ipify.org", err: `provider "api.ipify.org": scheme "" is not dns, http or https`},
		{in: "https://u:p@x.org", err: `provider "https://u:p@x.org": user info is not supported`},
	} {
		got, err := config.ParseProvider(tc.in)
		if errString(err) != tc.err {
			t.Errorf("ParseProvider(%q) error %q\nwant %q", tc.in, errString(err), tc.err)
			continue
		}
		if tc.err == "" {
			tc.want.URL = tc.in
			if got != tc.want {
				t.Errorf("ParseProvider(%q) = %+v\nwant %+v", tc.in, got, tc.want)
			}
		}
	}
	for _, p := range config.DefaultDDNSProviders {
		if _, err := config.ParseProvider(p); err != nil {
			t.Errorf("default provider: %v", err)
		}
	}
}

func TestValueChecks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		check func(string) error
		in    string
		err   string
	}{
		{"target", config.CheckTarget, "1.1.1.1", ""},
		{"target", config.CheckTarget, "2001:db8::1", ""},
		{"target", config.CheckTarget, "fe80::1%eth0", ""},
		{"target", config.CheckTarget, "router", ""},
		{"target", config.CheckTarget, "one.one.one.one.", ""},
		{"target", config.CheckTarget, "1.1.1", `"1.1.1" is not a valid IP address`},
		{"target", config.CheckTarget, "2001:db8::g", `"2001:db8::g" is not a valid IP address`},
		{"target", config.CheckTarget, "-bad.lan", `"-bad.lan" is not a valid IP address or host name: label "-bad" starts or ends with '-'`},
		{"target", config.CheckTarget, "a b", `"a b" is not a valid IP address or host name: character ' ' is not allowed`},
		{"target", config.CheckTarget, "host.123", `"host.123" is not a valid IP address or host name: the last label is all digits`},
		{"target", config.CheckTarget, strings.Repeat("a", 64) + ".lan", `"` + strings.Repeat("a", 64) + `.lan" is not a valid IP address or host name: label "` + strings.Repeat("a", 64) + `" is longer than 63 characters`},
		{"dnsname", config.CheckDNSName, "_dmarc.example.com", ""},
		{"hostname", config.CheckHostName, "_dmarc.example.com", `"_dmarc.example.com" is not a valid host name: character '_' is not allowed`},
		{"dnsserver", config.CheckDNSServer, "9.9.9.9:53", ""},
		{"dnsserver", config.CheckDNSServer, "[2620:fe::fe]:53", ""},
		{"dnsserver", config.CheckDNSServer, "2620:fe::fe", ""},
		{"dnsserver", config.CheckDNSServer, "dns.quad9.net:853", ""},
		{"dnsserver", config.CheckDNSServer, "dns.quad9.net:x", `"dns.quad9.net:x": port "x" is not a number 1..65535`},
		{"ifname", config.CheckIfName, "enxa0cec8003294", ""},
		{"ifname", config.CheckIfName, "enxa0cec80032945", `interface name "enxa0cec80032945" is longer than 15 characters`},
		{"ifname", config.CheckIfName, "eth0/1", `interface name "eth0/1" holds a character '/' that is not allowed`},
		{"mqtt", config.CheckMQTTServer, "mqtt://broker.lan:1883", ""},
		{"mqtt", config.CheckMQTTServer, "mqtts://[fd00::1]:8883", ""},
		{"mqtt", config.CheckMQTTServer, "unix:///run/mosquitto.sock", ""},
		{"mqtt", config.CheckMQTTServer, "tcp://10.0.0.2", ""},
		{"mqtt", config.CheckMQTTServer, "broker.lan:1883", `"broker.lan:1883": scheme "broker.lan" is not one of mqtt, mqtts, tcp, ssl, tls, unix (want e.g. mqtt://host:1883)`},
		{"mqtt", config.CheckMQTTServer, "mqtt://u:p@broker", `"mqtt://u:p@broker": put the user name in username and the password in password-file, not in the URL`},
		{"mqtt", config.CheckMQTTServer, "mqtt://broker:99999", `"mqtt://broker:99999": port "99999" is not a number 1..65535`},
		{"mqtt", config.CheckMQTTServer, "unix://relative", `"unix://relative": want unix:///absolute/path`},
		{"topic", config.CheckTopicPrefix, "home/imon", ""},
		{"topic", config.CheckTopicPrefix, "imon/", `topic prefix "imon/" has an empty level (a leading, trailing or double '/')`},
		{"topic", config.CheckTopicPrefix, "$SYS", `topic prefix "$SYS" starts with '$' (reserved for the broker)`},
		{"topic", config.CheckTopicPrefix, "a+b", `topic prefix "a+b" holds a wildcard ('+', '#') or NUL`},
		{"instance", config.CheckInstance, "wan-2.test_x", ""},
		{"instance", config.CheckInstance, "../etc", `instance name "../etc" starts with '.'`},
		{"instance", config.CheckInstance, "a/b", `instance name "a/b" holds '/': use letters, digits, '.', '_' and '-'`},
		{"wanname", config.CheckWANName, "fiber", ""},
	} {
		if got := errString(tc.check(tc.in)); got != tc.err {
			t.Errorf("%s(%q) = %q\nwant %q", tc.name, tc.in, got, tc.err)
		}
	}
}

func TestCheckHostWith(t *testing.T) {
	t.Parallel()
	ifaces := map[string][]netip.Prefix{
		"eth1": {netip.MustParsePrefix("192.168.42.2/24"), netip.MustParsePrefix("fe80::2/64")},
		"eth2": {netip.MustParsePrefix("fe80::3/64")},
	}
	lookup := func(name string) ([]netip.Prefix, error) {
		a, ok := ifaces[name]
		if !ok {
			return nil, config.ErrNoInterface
		}
		return a, nil
	}
	data := `{
  "ddns": {"enable": true, "interface": "ppp0"},
  "failover": {"enable": true,
    "primary-if": "eth1", "primary-name": "a", "primary-gw": "192.168.43.1",
    "standby-if": "eth2", "standby-name": "b", "standby-gw": "192.168.62.1"}
}`
	c := mustParse(t, "f", []byte(data))
	want := []string{
		"f:4: failover.primary-gw: gateway 192.168.43.1 is not in a subnet of the interface (192.168.42.2/24) (interface eth1)",
		"f:5: failover.standby-gw: cannot check gateway 192.168.62.1: the interface has no address of the gateway's family (yet) (interface eth2)",
		`f:2: ddns.interface: interface "ppp0" does not exist`,
	}
	ps := config.CheckHostWith(c, lookup)
	if got := strings.Split(errString(ps.Err()), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c.Failover.Primary.GW = netip.MustParseAddr("192.168.42.1")
	c.Failover.Standby.GW = netip.MustParseAddr("fe80::1")
	c.DDNS.Interface = "eth1"
	if ps := config.CheckHostWith(c, lookup); len(ps) != 0 {
		t.Errorf("unexpected: %v", ps)
	}
	c.Failover.Primary.GW = netip.MustParseAddr("192.168.42.2")
	if ps := config.CheckHostWith(c, lookup); len(ps) != 1 || !strings.Contains(ps[0].Msg, "own address") {
		t.Errorf("own address: %v", ps)
	}
	// The real lookup finds loopback and not an absurd name.
	if _, err := config.SystemIfaceAddrs("lo"); err != nil {
		t.Errorf("lo: %v", err)
	}
	if _, err := config.SystemIfaceAddrs("imon-none0"); !errors.Is(err, config.ErrNoInterface) {
		t.Errorf("imon-none0: %v", err)
	}
}

func TestDump(t *testing.T) {
	t.Parallel()
	data := `{
  "global": {"action": "/usr/local/bin/imon-action"},
  "updown": {"enable": true, "monitorip": "1.1.1.1", "addping": "10.0.0.1"},
  "mqtt": {"enable": true, "server": "mqtts://broker.lan", "username": "imon", "password-file": "/etc/imon/mqtt.pw", "node-id": "pi-main"}
}`
	c := mustParse(t, "/etc/default/imon-main", []byte(data))
	got := strings.Join(c.Dump(), "\n") + "\n"
	for _, want := range []string{
		`file = "/etc/default/imon-main"` + "\n",
		`global.action = "/usr/local/bin/imon-action"` + "\n",
		"ddns.enable = false\n",
		"updown.interval = 10s\n",
		`updown.addping = ["10.0.0.1"]` + "\n",
		"updown.down-interval = 1s\n",
		`mqtt.password-file = "/etc/imon/mqtt.pw"` + "\n",
		`mqtt.client-id = "imon-pi-main"` + "\n",
		"mqtt.keepalive = 30s\n",
		"journal.max-bytes = 67108864\n",
		"homeassistant.enable = false\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dump lacks %q:\n%s", want, got)
		}
	}
	for _, absent := range []string{"ddns.interval", "failover.metric", "homeassistant.discovery-prefix"} {
		if strings.Contains(got, absent) {
			t.Errorf("dump of a disabled section has %s", absent)
		}
	}
}

// Every key of the schema is documented in docs/config.md, in its section.
func TestDocsListEveryKey(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, "../docs/config.md"))
	for _, s := range config.Sections() {
		_, rest, ok := strings.Cut(doc, "### "+s+"\n")
		if !ok {
			t.Errorf("docs/config.md has no section heading %q", "### "+s)
			continue
		}
		rest, _, _ = strings.Cut(rest, "\n### ")
		for _, k := range config.Keys(s) {
			if !strings.Contains(rest, "| `"+k+"` |") {
				t.Errorf("docs/config.md, section %s: no row for key %q", s, k)
			}
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/readme-annotated-commented.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := config.Parse("/etc/default/imon-main", data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLoadFIFO: a FIFO as the config is refused at once (opening it would
// block until a writer comes).
func TestLoadFIFO(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "imon-fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := config.Load(path); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(fifo) = %v, want not a regular file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load(fifo) blocked")
	}
}

// TestLoadRefusesHugeFile (issue 11.8): a config over MaxConfigBytes is
// refused before it is read or parsed (a 25 MB file of 2 million unknown
// keys took 24 s and 1.4 GB). Seen failing before: it was parsed.
func TestLoadRefusesHugeFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeConfig(t, dir, "huge", []byte(`{"global": {`), 0o600)
	if err := os.Truncate(path, 25<<20); err != nil { // sparse: NULs after the start
		t.Fatal(err)
	}
	_, err := config.Load(path)
	want := path + ": file is 26214400 bytes, more than the 1048576 bytes (1 MiB) a configuration may have: refused without parsing it"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = config.Parse(path, make([]byte, config.MaxConfigBytes+1))
	if err == nil || !strings.Contains(err.Error(), "refused without parsing it") {
		t.Errorf("Parse of %d bytes: %v", config.MaxConfigBytes+1, err)
	}
}

// manyUnknownKeys returns a config of n unknown keys in section global.
func manyUnknownKeys(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"global": {`)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `"k%d": 1`, i)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// TestProblemsCapped (issue 11.8): the problem list stops after
// MaxProblems entries with a count of the rest. Seen failing before: every
// problem was listed.
func TestProblemsCapped(t *testing.T) {
	t.Parallel()
	const n = 5000
	_, err := config.Parse("f", manyUnknownKeys(n))
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want Problems", err)
	}
	if len(ps) != config.MaxProblems+1 || ps.Count() != n {
		t.Fatalf("%d entries counting %d problems; want %d entries counting %d", len(ps), ps.Count(), config.MaxProblems+1, n)
	}
	if got, want := ps[0].Error(), `f:1: global.k0: unknown key`; got != want {
		t.Errorf("first = %q, want %q", got, want)
	}
	if got, want := ps[len(ps)-1].Error(), fmt.Sprintf("f: … and %d more problems", n-config.MaxProblems); got != want {
		t.Errorf("last = %q, want %q", got, want)
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != config.MaxProblems+1 {
		t.Errorf("Error() has %d lines, want %d", lines, config.MaxProblems+1)
	}
	// Capped merges counts and keeps a short list short.
	merged := append(ps, config.Problem{File: "f", Msg: "host problem"}).Capped()
	if merged.Count() != n+1 || len(merged) != config.MaxProblems+1 {
		t.Errorf("merged: %d entries counting %d", len(merged), merged.Count())
	}
	short := config.Problems{{Msg: "a"}, {Msg: "b"}}
	if c := short.Capped(); len(c) != 2 || c.Count() != 2 {
		t.Errorf("short list changed: %v", c)
	}
}

// BenchmarkParseWorstCase parses a file just under MaxConfigBytes made of
// unknown keys, the costliest input that is parsed at all (issue 11.8: a
// 25 MB one took 24 s and 1.4 GB before the size limit).
func BenchmarkParseWorstCase(b *testing.B) {
	data := manyUnknownKeys(80000)
	if len(data) > config.MaxConfigBytes {
		b.Fatalf("%d bytes: over the limit", len(data))
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for b.Loop() {
		if _, err := config.Parse("f", data); err == nil {
			b.Fatal("no problems")
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/parse")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/1e6, "MB-alloc/parse")
}
