package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	t.Parallel()
	keys := []string{"enable", "interval", "pingcount", "pingwait", "monitorip", "addping", "dnsserver", "dnslookup", "down-interval"}
	for _, tc := range []struct{ word, want string }{
		{"monitorp", "monitorip"},
		{"MonitorIP", "monitorip"},
		{"intervall", "interval"},
		{"ping-count", "pingcount"},
		{"dns-server", "dnsserver"},
		{"enabled", "enable"},
		{"downinterval", "down-interval"},
		{"colour", ""},
		{"x", ""},
	} {
		got := suggest(tc.word, keys)
		want := ""
		if tc.want != "" {
			want = ` (did you mean "` + tc.want + `"?)`
		}
		if got != want {
			t.Errorf("suggest(%q) = %q, want %q", tc.word, got, want)
		}
	}
}

func TestLevenshtein(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"monitorp", "monitorip", 1}, {"abc", "abc", 0}} {
		if d := levenshtein(tc.a, tc.b); d != tc.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func TestNodeIDFromHostname(t *testing.T) {
	t.Parallel()
	c, err := parse("/etc/default/imon-wan2", []byte(`{}`), func() (string, error) { return "rpi.home", nil }, noMachineID)
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.NodeID != "rpi_home-wan2" || c.MQTT.ClientID != "imon-rpi_home-wan2" {
		t.Errorf("node id %q, client id %q", c.MQTT.NodeID, c.MQTT.ClientID)
	}
}

func TestPositions(t *testing.T) {
	t.Parallel()
	data := []byte("{\n\t\"global\": {\"note\": \"é\"}, \"ping\": {\"enable\": 5}\n}")
	_, err := parse("f", data, os.Hostname, noMachineID)
	ps, ok := err.(Problems)
	if !ok || len(ps) != 1 {
		t.Fatalf("err = %v", err)
	}
	if p := ps[0]; p.Line != 2 || p.Col != 36 || p.Key != "enable" {
		t.Errorf("problem at %d:%d key %s, want 2:36 enable", p.Line, p.Col, p.Key)
	}
}

func TestStripComments(t *testing.T) {
	t.Parallel()
	in := "{\n### comment\n  # another\n\"a\": \"#not\"\n}"
	want := "{\n           \n           \n\"a\": \"#not\"\n}"
	if got := string(stripComments([]byte(in))); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// FuzzParse: Parse never panics, reports only non-empty Problems, and its
// tree parser accepts exactly the JSON that encoding/json accepts (after
// comment lines); whatever it returns can be dumped and host-checked.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"updown": {"addping": ["a", 1]}}`))
	f.Add([]byte(`{"a": [[[[[[[[[]]]]]]]]]}`))
	f.Add([]byte("\xef\xbb\xbf{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse("/etc/default/imon-fuzz", data, func() (string, error) { return "host", nil }, noMachineID)
		if err != nil {
			ps, ok := err.(Problems)
			if !ok || len(ps) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty Problems", err, err)
			}
			for _, p := range ps {
				if p.Msg == "" || p.Error() == "" {
					t.Fatalf("empty problem %+v", p)
				}
			}
		}
		stripped := stripComments([]byte(strings.TrimPrefix(string(data), "\xef\xbb\xbf")))
		_, treeErr := parseTree(stripped)
		if valid := json.Valid(stripped); valid != (treeErr == nil) && len(strings.TrimSpace(string(stripped))) > 0 {
			if strings.Count(string(stripped), "[")+strings.Count(string(stripped), "{") <= maxDepth {
				t.Fatalf("json.Valid = %v but parseTree error = %v", valid, treeErr)
			}
		}
		if c != nil {
			_ = c.Dump()
			_ = CheckHostWith(c, SystemIfaceAddrs)
		}
	})
}

func noMachineID() string { return "" }

// TestNodeIDFromMachineID: the default node id carries a tag of the
// machine id, so two Raspberry Pis both named raspberrypi differ; explicit
// node-id and client-id are kept.
func TestNodeIDFromMachineID(t *testing.T) {
	t.Parallel()
	host := func() (string, error) { return "raspberrypi", nil }
	ids := map[string]bool{}
	for _, mid := range []string{"3d1219c7c4c5404aaa1f6d2a48adfda4", "0b5f1fd7a6e54d5c9b8a3f0e0f7c2d11"} {
		c, err := parse("/etc/imon/imon.json", []byte(`{}`), host, func() string { return mid })
		if err != nil {
			t.Fatal(err)
		}
		want := "raspberrypi-" + MachineTag(mid) + "-main"
		if c.MQTT.NodeID != want || c.MQTT.ClientID != "imon-"+want || len(MachineTag(mid)) != 6 {
			t.Errorf("machine %s: node id %q, client id %q; want %q", mid, c.MQTT.NodeID, c.MQTT.ClientID, want)
		}
		ids[c.MQTT.NodeID] = true
	}
	if len(ids) != 2 {
		t.Errorf("two machines share the node id %v", ids)
	}
	c, err := parse("f", []byte(`{"mqtt": {"node-id": "pi", "client-id": "me"}}`), host, func() string { return "3d1219c7c4c5404aaa1f6d2a48adfda4" })
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.NodeID != "pi" || c.MQTT.ClientID != "me" {
		t.Errorf("explicit ids replaced: %q %q", c.MQTT.NodeID, c.MQTT.ClientID)
	}
}
