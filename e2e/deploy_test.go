package e2e

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
)

// deployRoot is the repository root (the Makefile's directory).
func deployRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// deployRun runs a command in dir and returns its combined output; it fails
// the test on an error.
func deployRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// deployHeavy skips a slow packaging test under -short, except in CI.
func deployHeavy(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("slow packaging test (-short)")
	}
}

// TestDeployInstall: `make install DESTDIR=... PREFIX=/usr/local` lays out
// the binary, the imon-configure link, the unit (pointing at the installed
// binary), the sample action script and the docs.
func TestDeployInstall(t *testing.T) {
	nettest.NeedCmd(t, "make", "install")
	bin := harness.Binary(t)
	dest := t.TempDir()
	// -o build: install the already built binary (INSTALL_BIN), never
	// rebuild bin/imon under other tests that may be running it.
	deployRun(t, deployRoot(t), nil, "make", "-s", "-o", "build", "install",
		"DESTDIR="+dest, "PREFIX=/usr/local", "INSTALL_BIN="+bin)

	want := map[string]string{ // path -> mode, or "-> target" for a symlink
		"usr/local/bin/imon":                            "-rwxr-xr-x",
		"usr/local/bin/imon-configure":                  "-> imon",
		"usr/local/bin/imon-action.sample":              "-rwxr-xr-x",
		"etc/systemd/system/imon@.service":              "-rw-r--r--",
		"usr/local/share/doc/imon/deploy.md":            "-rw-r--r--",
		"usr/local/share/doc/imon/imon-unconfined.conf": "-rw-r--r--",
	}
	var got []string
	err := filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		got = append(got, rel)
		w, ok := want[rel]
		switch {
		case !ok:
			t.Errorf("unexpected file %s", rel)
		case strings.HasPrefix(w, "-> "):
			if target, err := os.Readlink(p); err != nil || target != w[3:] {
				t.Errorf("%s: symlink to %q (%v), want %q", rel, target, err, w[3:])
			}
		case fi.Mode().String() != w:
			t.Errorf("%s: mode %s, want %s", rel, fi.Mode(), w)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("installed %q, want %d files", got, len(want))
	}
	binBytes, _ := os.ReadFile(bin)
	if inst, _ := os.ReadFile(filepath.Join(dest, "usr/local/bin/imon")); !bytes.Equal(inst, binBytes) {
		t.Errorf("installed binary differs from %s", bin)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/imon@.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/usr/local/bin/imon run --instance %i\n") {
		t.Errorf("installed unit does not run /usr/local/bin/imon:\n%s", unit)
	}
	// The installed command answers under both names.
	out := deployRun(t, dest, nil, filepath.Join(dest, "usr/local/bin/imon"), "version")
	if !strings.Contains(out, "imon") {
		t.Errorf("imon version: %q", out)
	}

	deployRun(t, deployRoot(t), nil, "make", "-s", "uninstall", "DESTDIR="+dest, "PREFIX=/usr/local")
	left := 0
	_ = filepath.Walk(dest, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			left++
		}
		return nil
	})
	if left != 0 {
		t.Errorf("make uninstall left %d files", left)
	}
}

// TestDeployUnit: the unit passes `systemd-analyze verify` without a
// warning, alone and with the unconfined drop-in, and its exposure score
// stays at 3.0 or lower.
func TestDeployUnit(t *testing.T) {
	nettest.NeedCmd(t, "systemd-analyze")
	bin := harness.Binary(t)
	root := deployRoot(t)
	unit, err := os.ReadFile(filepath.Join(root, "deploy", "imon@.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/imon run --instance %i\n") {
		t.Fatalf("the unit must run /usr/bin/imon (the .deb's path)")
	}
	// verify checks that ExecStart exists: point it at the built binary.
	dir := t.TempDir()
	unit = bytes.ReplaceAll(unit, []byte("ExecStart=/usr/bin/imon "), []byte("ExecStart="+bin+" "))
	if err := os.WriteFile(filepath.Join(dir, "imon@.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"SYSTEMD_UNIT_PATH=" + dir + ":"} // ours first, then the defaults
	verify := func(name string) {
		t.Helper()
		out := deployRun(t, dir, env, "systemd-analyze", "verify", name)
		if strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s warns:\n%s", name, out)
		}
	}
	score := func(name string) float64 {
		t.Helper()
		cmd := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", name)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput() // exits non-zero above its --threshold only
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: no score in\n%s", name, out)
		}
		f, _ := strconv.ParseFloat(string(m[1]), 64)
		return f
	}

	verify("imon@.service")
	verify("imon@main.service")
	hardened := score("imon@main.service")
	t.Logf("systemd-analyze security imon@main.service: exposure %.1f", hardened)
	if hardened > 3.0 {
		t.Errorf("exposure %.1f, want at most 3.0", hardened)
	}

	dropin := filepath.Join(dir, "imon@.service.d")
	if err := os.Mkdir(dropin, 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "imon-unconfined.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropin, "unconfined.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	verify("imon@main.service")
	relaxed := score("imon@main.service")
	t.Logf("with imon-unconfined.conf: exposure %.1f", relaxed)
	if relaxed <= hardened+3 {
		t.Errorf("the unconfined drop-in barely changes the exposure (%.1f -> %.1f): is it applied?", hardened, relaxed)
	}
}

// TestDeployDist: `make dist` cross-compiles static binaries for amd64,
// arm64, armv6 and armv7 with the version stamped in, and a .deb for each
// with the expected files and maintainer scripts.
func TestDeployDist(t *testing.T) {
	deployHeavy(t)
	nettest.NeedCmd(t, "make", "go", "dpkg-deb", "sha256sum")
	root := deployRoot(t)
	dist := filepath.Join(t.TempDir(), "dist")
	deployRun(t, root, nil, "make", "-s", "dist", "DIST="+dist, "VERSION=v1.2.3-4-gabcdef0", "COMMIT=abcdef0")

	bins := []struct {
		name    string
		machine elf.Machine
		goarm   string
	}{
		{"imon-linux-amd64", elf.EM_X86_64, ""},
		{"imon-linux-arm64", elf.EM_AARCH64, ""},
		{"imon-linux-armv6", elf.EM_ARM, "6"},
		{"imon-linux-armv7", elf.EM_ARM, "7"},
	}
	for _, b := range bins {
		p := filepath.Join(dist, b.name)
		f, err := elf.Open(p)
		if err != nil {
			t.Errorf("%s: %v", b.name, err)
			continue
		}
		if f.Machine != b.machine {
			t.Errorf("%s: machine %s, want %s", b.name, f.Machine, b.machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s: dynamically linked (has an ELF interpreter)", b.name)
			}
		}
		f.Close()
		info := deployRun(t, root, nil, "go", "version", "-m", p)
		if !strings.Contains(info, "CGO_ENABLED=0") {
			t.Errorf("%s: not built with CGO_ENABLED=0:\n%s", b.name, info)
		}
		if b.goarm != "" && !regexp.MustCompile(`\bGOARM=`+b.goarm+`\b`).MatchString(info) {
			t.Errorf("%s: not built with GOARM=%s:\n%s", b.name, b.goarm, info)
		}
	}
	out := deployRun(t, dist, nil, filepath.Join(dist, "imon-linux-amd64"), "version")
	if !strings.Contains(out, "v1.2.3-4-gabcdef0") || !strings.Contains(out, "abcdef0") {
		t.Errorf("version and commit not stamped: %q", out)
	}

	debs := map[string]string{ // file -> Debian architecture
		"imon_1.2.3.4.gabcdef0_amd64.deb":       "amd64",
		"imon_1.2.3.4.gabcdef0_arm64.deb":       "arm64",
		"imon_1.2.3.4.gabcdef0_armhf-armv6.deb": "armhf",
		"imon_1.2.3.4.gabcdef0_armhf-armv7.deb": "armhf",
	}
	for name, arch := range debs {
		p := filepath.Join(dist, name)
		fields := deployRun(t, dist, nil, "dpkg-deb", "-f", p, "Package", "Version", "Architecture")
		want := "Package: imon\nVersion: 1.2.3.4.gabcdef0\nArchitecture: " + arch + "\n"
		if fields != want {
			t.Errorf("%s control fields:\n%s\nwant:\n%s", name, fields, want)
		}
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil || strings.Count(string(sums), "\n") != len(bins)+len(debs) {
		t.Errorf("SHA256SUMS: %v\n%s", err, sums)
	}

	amd64 := filepath.Join(dist, "imon_1.2.3.4.gabcdef0_amd64.deb")
	listing := deployRun(t, dist, nil, "dpkg-deb", "-c", amd64)
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue
		}
		files[strings.TrimPrefix(f[5], ".")] = strings.Join(append([]string{f[0], f[1]}, f[6:]...), " ")
	}
	wantFiles := map[string]string{
		"/usr/bin/imon":                            "-rwxr-xr-x root/root",
		"/usr/bin/imon-configure":                  "lrwxrwxrwx root/root -> imon",
		"/lib/systemd/system/imon@.service":        "-rw-r--r-- root/root",
		"/usr/share/doc/imon/imon-action.sample":   "-rwxr-xr-x root/root",
		"/usr/share/doc/imon/imon-unconfined.conf": "-rw-r--r-- root/root",
		"/usr/share/doc/imon/deploy.md":            "-rw-r--r-- root/root",
	}
	for p, w := range wantFiles {
		g, ok := files[p]
		// dpkg-deb shows a symlink's mode as l--------- or lrwxrwxrwx.
		if ok && strings.HasPrefix(w, "l") {
			g = "lrwxrwxrwx" + g[10:]
		}
		if g != w {
			t.Errorf("%s in the .deb: %q, want %q", p, g, w)
		}
	}
	if len(files) != len(wantFiles) {
		t.Errorf("the .deb holds %d files, want %d:\n%s", len(files), len(wantFiles), listing)
	}

	ctl := t.TempDir()
	deployRun(t, dist, nil, "dpkg-deb", "-e", amd64, ctl)
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		got, err := os.ReadFile(filepath.Join(ctl, s))
		src, _ := os.ReadFile(filepath.Join(root, "deploy", s))
		if err != nil || !bytes.Equal(got, src) {
			t.Errorf("maintainer script %s missing or different from deploy/%s (%v)", s, s, err)
		}
	}
	x := t.TempDir()
	deployRun(t, dist, nil, "dpkg-deb", "-x", amd64, x)
	unit, _ := os.ReadFile(filepath.Join(x, "lib/systemd/system/imon@.service"))
	src, _ := os.ReadFile(filepath.Join(root, "deploy", "imon@.service"))
	if !bytes.Equal(unit, src) {
		t.Errorf("packaged unit differs from deploy/imon@.service")
	}
}

// TestDeployMaintainerScripts runs postinst, prerm and postrm in a private
// mount namespace with a tmpfs /run (so /run/systemd/system can be faked)
// and a fake systemctl that records its calls: daemon-reload on install,
// try-restart of running instances on upgrade, stop on removal, and never
// a start or an enable.
func TestDeployMaintainerScripts(t *testing.T) {
	nettest.NeedRoot(t, "network namespaces")
	nettest.NeedCmd(t, "unshare", "mount", "sh")
	root := deployRoot(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	fake := filepath.Join(dir, "bin")
	if err := os.Mkdir(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fake, "systemctl"), []byte("#!/bin/sh\necho \"systemctl $*\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(systemd bool, script string, args ...string) []string {
		t.Helper()
		os.Remove(log)
		setup := "mount -t tmpfs imon-test /run"
		if systemd {
			setup += " && mkdir -p /run/systemd/system"
		}
		sh := setup + ` && exec "$0" "$@"`
		argv := append([]string{"--mount", "--propagation", "private", "sh", "-c", sh,
			filepath.Join(root, "deploy", script)}, args...)
		cmd := exec.Command("unshare", argv...)
		cmd.Env = append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %q: %v\n%s", script, args, err, out)
		}
		b, _ := os.ReadFile(log)
		var calls []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				calls = append(calls, l)
			}
		}
		return calls
	}
	tests := []struct {
		systemd bool
		script  string
		args    []string
		want    []string
	}{
		{true, "postinst", []string{"configure", ""}, []string{"systemctl daemon-reload"}},
		{true, "postinst", []string{"configure", "0.9.0"},
			[]string{"systemctl daemon-reload", "systemctl try-restart imon@*.service"}},
		{false, "postinst", []string{"configure", ""}, nil}, // no systemd running (chroot, container)
		{true, "prerm", []string{"remove"}, []string{"systemctl stop imon@*.service"}},
		{true, "prerm", []string{"upgrade", "1.0.0"}, nil},
		{false, "prerm", []string{"remove"}, nil},
		{true, "postrm", []string{"remove"}, []string{"systemctl daemon-reload"}},
	}
	for _, tc := range tests {
		got := run(tc.systemd, tc.script, tc.args...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %q (systemd running: %v): calls %q, want %q", tc.script, tc.args, tc.systemd, got, tc.want)
		}
		for _, c := range got {
			if strings.Contains(c, " start") || strings.Contains(c, " enable") || strings.Contains(c, " restart") {
				t.Errorf("%s %q starts or enables an instance: %q", tc.script, tc.args, c)
			}
		}
	}
}

// TestDeployActionSample runs the sample action script for every action
// command: each is recognised and logged (to stdout with SYSLOGFLAG 1), an
// unknown one is reported, and ddns-ip-update runs $(hostname)-ip-update
// NEWIP OLDIP when it exists.
func TestDeployActionSample(t *testing.T) {
	nettest.NeedCmd(t, "bash", "hostname")
	sample := filepath.Join(deployRoot(t), "deploy", "imon-action.sample")
	dir := t.TempDir()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	hookLog := filepath.Join(dir, "hook.log")
	if err := os.WriteFile(filepath.Join(dir, host+"-ip-update"),
		[]byte("#!/bin/sh\necho \"$*\" > "+hookLog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := "PATH=" + dir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	netinfo := "pnet:Primary:eth1:192.168.42.1"
	calls := []struct {
		args []string
		want string
	}{
		{[]string{"updown-online", "192.0.2.1", "0:00:01:02"}, "updown-online: 192.0.2.1 is online again after an outage of 0:00:01:02"},
		{[]string{"updown-offline", "192.0.2.1"}, "updown-offline: 192.0.2.1 is offline"},
		{[]string{"ddns-ip-update", "203.0.113.7", "unknown"}, "Running " + filepath.Join(dir, host+"-ip-update") + " 203.0.113.7 unknown"},
		{[]string{"ddns-ip6-update", "2001:db8::7", "unknown"}, "ddns-ip6-update: external IPv6 address changed from unknown to 2001:db8::7"},
		{[]string{"ddns-no-update"}, "ddns-no-update: the external IP address could not be obtained"},
		{[]string{"failover-initial", netinfo, "online"}, "failover-initial: name:pnet ename:Primary ifname:eth1 ip:192.168.42.1 state:online"},
		{[]string{"failover-primary", netinfo}, "failover-primary: now on the primary, name:pnet"},
		{[]string{"failover-standby", "snet:Standby:eth2:192.168.62.1"}, "failover-standby: now on the standby, name:snet ename:Standby ifname:eth2 ip:192.168.62.1"},
		{[]string{"failover-bothdown", netinfo, "snet:Standby:eth2:192.168.62.1"}, "failover-bothdown: both networks are down"},
		{[]string{"failover-postping", netinfo, "offline"}, "failover-postping: name:pnet ename:Primary ifname:eth1 ip:192.168.42.1 postping:offline"},
		{[]string{"failover-wan-up", netinfo}, "failover-wan-up: name:pnet ename:Primary ifname:eth1 ip:192.168.42.1 is up"},
		{[]string{"failover-wan-down", netinfo}, "failover-wan-down: name:pnet ename:Primary ifname:eth1 ip:192.168.42.1 is down"},
		{[]string{"ping-result", "2001:db8::1:True:1.500:2.000:3.250:0.0:0.400"},
			"ping-result: ipaddr:2001:db8::1 online:True minrtt:1.500 avgrtt:2.000 maxrtt:3.250 pktloss:0.0 jitter:0.400"},
		{[]string{"no-such-command"}, "%% Unrecognized imon action command 'no-such-command'"},
	}
	seen := map[string]bool{}
	for _, c := range calls {
		cmd := exec.Command(sample, append([]string{"main", "1"}, c.args...)...)
		cmd.Env = []string{p, "HOME=/", "LANG=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", c.args[0], err, out)
			continue
		}
		if !strings.Contains(string(out), "imon action [main] "+c.want) {
			t.Errorf("%s: output\n%s\nwant a line with %q", c.args[0], out, c.want)
		}
		if c.args[0] != "no-such-command" && strings.Contains(string(out), "Unrecognized") {
			t.Errorf("%s not recognised by the sample", c.args[0])
		}
		seen[c.args[0]] = true
	}
	hook, err := os.ReadFile(hookLog)
	if err != nil || string(hook) != "203.0.113.7 unknown\n" {
		t.Errorf("$(hostname)-ip-update called with %q (%v), want NEWIP OLDIP", hook, err)
	}
	for _, k := range event.ActionKinds() {
		if !seen[k] {
			t.Errorf("the sample test does not cover action command %s", k)
		}
	}
	if _, err := exec.LookPath("shellcheck"); err == nil || os.Getenv("CI") == "true" {
		root := deployRoot(t)
		deployRun(t, root, nil, "shellcheck", "deploy/imon-action.sample", "deploy/postinst", "deploy/prerm", "deploy/postrm")
	}
}
