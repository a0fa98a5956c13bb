package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
)

// cliReport is the part of `imon report --json` the tests read.
type cliReport struct {
	Agent    string `json:"agent"`
	Subjects []struct {
		Subject string `json:"subject"`
		Status  string `json:"status"`
		Window  struct {
			UpS      float64 `json:"up_s"`
			UnknownS float64 `json:"unknown_s"`
		} `json:"window"`
		Cells []json.RawMessage `json:"cells"`
	} `json:"subjects"`
	Latency *struct {
		Rounds int `json:"rounds"`
	} `json:"latency"`
}

func report(t *testing.T, cfg string, args ...string) cliReport {
	t.Helper()
	r := imon(t, append([]string{"report", "--config", cfg, "--json"}, args...)...)
	wantExit(t, r, 0, "imon report --json")
	var rep cliReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("imon report --json: %v\n%s", err, r.stdout)
	}
	return rep
}

// TestCLIReport: imon report through the running agent (its rollups) and
// without it (the rollup file, then the journal alone once the rollup
// file is gone), as text, JSON and an HTML page; a bad flag is a usage
// error.
func TestCLIReport(t *testing.T) {
	nettest.NeedRoot(t, "network namespaces")
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "rep", "", `"updown": {"enable": true, "interval": 1, "pingcount": 1, "pingwait": 1, "monitorip": "127.0.0.1"},
  "ping": {"enable": true, "interval": 1, "pingcount": 1, "pingwait": 1, "monitorip": "127.0.0.1"}`)
	a := harness.Start(t, "", cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "updown state", func(ev event.Event) bool {
		return ev.Monitor == event.MonitorUpdown && len(ev.State) > 0
	})
	w.WaitFor(20*time.Second, "ping-result", harness.Kind(event.KindPingResult))
	w.Next(20*time.Second, "a second ping-result", harness.Kind(event.KindPingResult))

	rep := report(t, cfg)
	if rep.Agent != "running" || len(rep.Subjects) != 1 || rep.Subjects[0].Subject != "internet" || rep.Subjects[0].Status != "up" {
		t.Fatalf("report while running: %+v", rep)
	}
	if len(rep.Subjects[0].Cells) < 24 || rep.Latency == nil || rep.Latency.Rounds < 2 {
		t.Errorf("report while running: %d cells, latency %+v", len(rep.Subjects[0].Cells), rep.Latency)
	}
	page := filepath.Join(dir, "r.html")
	r := imon(t, "report", "--config", cfg, "--since", "7d", "--html", page)
	wantExit(t, r, 0, "imon report --html")
	if !strings.Contains(r.stdout, "internet (127.0.0.1)") || !strings.Contains(r.stdout, "LATENCY (ping 127.0.0.1)") {
		t.Errorf("text report:\n%s", r.stdout)
	}
	html, err := os.ReadFile(page)
	if err != nil || strings.Count(string(html), `<rect class="cell"`) != 8 {
		t.Errorf("html report (%v): want 8 day cells:\n%.2000s", err, html)
	}

	if err := a.Stop(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	stopped := report(t, cfg)
	if stopped.Agent != "stopped" || stopped.Subjects[0].Status != "unknown" || stopped.Latency.Rounds < rep.Latency.Rounds {
		t.Errorf("report after the stop: %+v", stopped)
	}
	if _, err := os.Stat(filepath.Join(dir, "rep.db.history")); err != nil {
		t.Errorf("rollup file: %v", err)
	}
	// without the rollup file, from the journal alone: the same figures
	if err := os.Remove(filepath.Join(dir, "rep.db.history")); err != nil {
		t.Fatal(err)
	}
	again := report(t, cfg)
	if again.Latency.Rounds != stopped.Latency.Rounds || again.Subjects[0].Window.UpS != stopped.Subjects[0].Window.UpS {
		t.Errorf("report from the journal alone %+v, from the rollups %+v", again, stopped)
	}
	wantExit(t, imon(t, "report", "--config", cfg, "--monitor", "bogus"), 2, "imon report --monitor bogus")
	wantExit(t, imon(t, "report", "--config", cfg, "--since", "soon"), 2, "imon report --since soon")
}
