package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"imon/config"
)

// foConfig is a config with failover enabled over interfaces ifs, with
// extra failover keys.
func foConfig(ifs [2]string, extra string) string {
	return fmt.Sprintf(`{"failover": {"enable": true,
  "primary-if": %q, "primary-name": "p", "primary-gw": "192.0.2.1",
  "standby-if": %q, "standby-name": "s", "standby-gw": "192.0.2.9"%s}}`, ifs[0], ifs[1], extra)
}

// distinct are keys that keep a second instance out of the first's ranges.
const distinct = `, "metric": 301, "table-base": 211, "rule-priority": 10200, "fwmark-base": 713, "route-protocol": 202`

func keysOf(ps config.Problems) []string {
	var ks []string
	for _, p := range ps {
		ks = append(ks, p.Section+"."+p.Key)
	}
	return ks
}

func TestOverlaps(t *testing.T) {
	t.Parallel()
	a := mustParse(t, "/etc/default/imon-a", []byte(foConfig([2]string{"wan0", "wan1"}, "")))
	for _, tc := range []struct {
		name string
		b    string
		want []string // keys of b's problems
	}{
		{"defaults, swapped WANs", foConfig([2]string{"wan1", "wan0"}, ""), []string{
			"failover.primary-if", "failover.standby-if", "failover.table-base", "failover.rule-priority",
			"failover.fwmark-base", "failover.metric", "failover.route-protocol"}},
		{"own ranges, same WANs", foConfig([2]string{"wan1", "wan0"}, distinct), []string{"failover.primary-if", "failover.standby-if"}},
		{"one shared WAN", foConfig([2]string{"wan2", "wan0"}, distinct), []string{"failover.standby-if"}},
		{"distinct", foConfig([2]string{"wan2", "wan3"}, distinct), nil},
		// The ranges touch but do not overlap: tables 203..204 after
		// 201..202, priorities 10106.. after ..10105, fwmarks 0x1cb.. after
		// ..0x1ca.
		{"adjacent ranges", foConfig([2]string{"wan2", "wan3"}, `, "metric": 202, "table-base": 203, "rule-priority": 10106, "fwmark-base": 459, "route-protocol": 202`), nil},
		{"overlapping by one", foConfig([2]string{"wan2", "wan3"}, `, "metric": 202, "table-base": 202, "rule-priority": 10105, "fwmark-base": 458, "route-protocol": 202`),
			[]string{"failover.table-base", "failover.rule-priority", "failover.fwmark-base"}},
		{"ranges below", foConfig([2]string{"wan2", "wan3"}, `, "metric": 202, "table-base": 200, "rule-priority": 10095, "fwmark-base": 456, "route-protocol": 202`),
			[]string{"failover.table-base", "failover.rule-priority", "failover.fwmark-base"}},
		// Two WANs may have the same gateway on different interfaces (ppp
		// peers such as 10.64.64.64): not a shared WAN.
		{"same gateway, other interfaces", foConfig([2]string{"ppp0", "ppp1"}, distinct), nil},
		{"failover disabled", `{"failover": {"enable": false, "primary-if": "wan0"}}`, nil},
	} {
		b := mustParseLoose(t, "/etc/default/imon-b", tc.b)
		ps := config.Overlaps(b, a)
		if got := keysOf(ps); !slices.Equal(got, tc.want) {
			t.Errorf("%s: problems at %q, want %q:\n%v", tc.name, got, tc.want, ps)
		}
		for _, p := range ps {
			s := p.Error()
			if !strings.HasPrefix(s, "/etc/default/imon-b:") {
				t.Errorf("%s: %q is not on imon-b", tc.name, s)
			}
			for _, want := range []string{`instance "b"`, `instance "a" (/etc/default/imon-a)`} {
				if !strings.Contains(s, want) {
					t.Errorf("%s: %q does not name %s", tc.name, s, want)
				}
			}
		}
		// Symmetric: A sees the same overlaps with B.
		if n := len(config.Overlaps(a, b)); n != len(ps) {
			t.Errorf("%s: A has %d problems with B, B %d with A", tc.name, n, len(ps))
		}
	}
}

// mustParseLoose parses data; problems of the file itself (not its
// overlaps) do not matter here.
func mustParseLoose(t *testing.T, path, data string) *config.Config {
	t.Helper()
	c, _ := config.Parse(path, []byte(data))
	if c == nil {
		t.Fatalf("%s does not parse", data)
	}
	return c
}

func TestOverlapMessage(t *testing.T) {
	t.Parallel()
	a := mustParse(t, "/etc/default/imon-a", []byte(foConfig([2]string{"wan0", "wan1"}, "")))
	b := mustParseLoose(t, "/etc/default/imon-b", foConfig([2]string{"wan1", "wan2"}, `, "metric": 301, "table-base": 202, "rule-priority": 10200, "fwmark-base": 713, "route-protocol": 202`))
	got := config.Overlaps(b, a).Error()
	want := `/etc/default/imon-b:2: failover.primary-if: instance "b" and instance "a" (/etc/default/imon-a) both use WAN interface wan1 (there as standby-if): two failover instances must not share a WAN
/etc/default/imon-b:3: failover.table-base: instance "b" uses routing tables 202..203 and instance "a" (/etc/default/imon-a) uses 201..202: two failover instances must not share routing tables; choose a table-base outside the other's range`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestIsInstanceFile(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"imon-main": true, "imon-wan2": true, "imon-home.lan": true,
		"imon-main.dpkg-old": false, "imon-main.dpkg-dist": false, "imon-main.ucf-old": false, "imon-main.bak": false,
		"imon-main.orig": false, "imon-main~": false, "imon-": false, "imon": false, "dhcpcd": false, ".imon-main.swp": false,
	} {
		if got := config.IsInstanceFile(name); got != want {
			t.Errorf("IsInstanceFile(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestCheckInstances reads the other instances from the config's
// directory: it skips backups, non-JSON files, FIFOs, its own file under
// another name, and instances without failover.
func TestCheckInstances(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	own := write("imon-b", foConfig([2]string{"wan1", "wan0"}, distinct))
	if err := os.Symlink(own, filepath.Join(dir, "imon-b2")); err != nil { // the same file
		t.Fatal(err)
	}
	write("imon-b.dpkg-old", foConfig([2]string{"wan1", "wan0"}, distinct))
	write("imon-action", "#!/bin/sh\n")
	write("imon-off", `{"failover": {"enable": false, "primary-if": "wan0"}}`)
	write("imon-c", foConfig([2]string{"wan4", "wan5"}, `, "metric": 401, "table-base": 221, "rule-priority": 10300, "fwmark-base": 813, "route-protocol": 203`))
	if err := syscall.Mkfifo(filepath.Join(dir, "imon-fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, own, readFile(t, own))
	if ps := config.CheckInstances(c); len(ps) != 0 {
		t.Fatalf("problems without another instance on its WANs: %v", ps)
	}
	// A second instance on wan0 (broken otherwise: its own check reports
	// that, the overlap is still found).
	a := write("imon-a", foConfig([2]string{"wan0", "wan9"}, `, "metric": 501, "table-base": 231, "rule-priority": 10400, "fwmark-base": 913, "route-protocol": 204, "down-after": 0`))
	ps := config.CheckInstances(c)
	if got := keysOf(ps); !slices.Equal(got, []string{"failover.standby-if"}) || !strings.Contains(ps.Error(), a) {
		t.Errorf("CheckInstances = %v", ps)
	}
	// Failover disabled in c: nothing to check.
	c.Failover.Enable = false
	if ps := config.CheckInstances(c); len(ps) != 0 {
		t.Errorf("CheckInstances without failover = %v", ps)
	}
}

func TestRouteProtocol(t *testing.T) {
	t.Parallel()
	for p, want := range map[int]string{
		201: "", 202: "", 5: "", 255: "",
		0:   "must be 1..255, got 0",
		256: "must be 1..255, got 256",
		4:   "4 is the route protocol of static routes",
		16:  "16 is the route protocol of DHCP clients",
		186: "186 is the route protocol of FRR (186..197)",
		42:  "42 is the route protocol of babel",
	} {
		_, err := config.Parse("/etc/default/imon-x", []byte(fmt.Sprintf(`{"failover": {"route-protocol": %d}}`, p)))
		got := errString(err)
		if want == "" && got != "" || want != "" && !strings.Contains(got, "failover.route-protocol: "+want) {
			t.Errorf("route-protocol %d: %q, want %q", p, got, want)
		}
	}
}
