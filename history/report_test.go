package history

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Errorf("%s differs from the golden file at line %d (run with -update after checking):\n got %s\nwant %s", name, i+1, g[i], w[i])
				return
			}
		}
		t.Errorf("%s differs from the golden file in length: %d lines, want %d", name, len(g), len(w))
	}
}

var goldenEnd = time.Date(2026, 12, 6, 12, 0, 0, 0, mustLocP("Europe/Berlin"))

func mustLocP(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func TestReportGolden(t *testing.T) {
	loc := goldenEnd.Location()
	for _, c := range []struct {
		name  string
		since time.Duration
	}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}} {
		r := homeReport(loc, goldenEnd, c.since, 5*time.Minute)
		var txt bytes.Buffer
		if err := WriteText(&txt, r); err != nil {
			t.Fatal(err)
		}
		golden(t, "report-"+c.name+".txt", txt.Bytes())
		js, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "report-"+c.name+".json", append(js, '\n'))
	}
}
