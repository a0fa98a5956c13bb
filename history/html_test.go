package history

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imon/internal/nettest"
)

// chromium returns the headless browser, skipping the test without one
// (failing under CI=true: .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	nettest.Unavailable(t, "chromium is not installed (apt-get install chromium)")
	return ""
}

// runChromium runs a headless chromium on page with extra arguments and
// returns stdout and stderr.
func runChromium(t *testing.T, bin, page string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	home := t.TempDir() // chromium writes its profile and crash dumps there
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-extensions", "--disable-background-networking", "--user-data-dir=" + filepath.Join(home, "profile"),
		"--enable-logging=stderr", "--v=0"}, args...)
	all = append(all, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleErrors are the console messages and page errors chromium logged
// (with --enable-logging=stderr: "INFO:CONSOLE:1] \"Uncaught Error: x\"").
// The page has no script, so any console message is a fault.
var consoleErrors = regexp.MustCompile(`(?i)(:CONSOLE[:(]\d+|Uncaught|Failed to load resource|net::ERR_)[^\n]*`)

// WriteHTMLFile writes the report page of r to path.
func writeHTMLFile(t *testing.T, r *Report, path string) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	// self-contained: no script, no external resource
	for _, bad := range []string{"<script", "src=", "href=", "http://", "https://", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Fatalf("the page is not self-contained: it contains %q", bad)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHTMLReportInBrowser renders the report of a month of a two-WAN home
// in a real headless chromium: no console error, one uptime cell per day
// (30 days) or hour (24 hours) per subject in the rendered DOM, and
// screenshots at phone and desktop width. REPORT_DEMO_DIR keeps the page
// and the screenshots (make report-demo).
func TestHTMLReportInBrowser(t *testing.T) {
	bin := chromium(t)
	dir := os.Getenv("REPORT_DEMO_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, _ = filepath.Abs(dir)
	loc := goldenEnd.Location()
	for _, c := range []struct {
		name  string
		since time.Duration
		cells int
	}{{"30d", 30 * 24 * time.Hour, 31}, {"24h", 24 * time.Hour, 24}} { // goldenEnd is on the hour: 24 whole hours
		r := homeReport(loc, goldenEnd, c.since, time.Minute)
		page := filepath.Join(dir, "report-"+c.name+".html")
		writeHTMLFile(t, r, page)
		dom, logs := runChromium(t, bin, page, "--dump-dom")
		if m := consoleErrors.FindAllString(logs, -1); len(m) > 0 {
			t.Errorf("%s: console errors: %q", c.name, m)
		}
		if len(r.Subjects) != 4 {
			t.Fatalf("%s: %d subjects, want 4", c.name, len(r.Subjects))
		}
		for _, s := range r.Subjects {
			i := strings.Index(dom, `data-subject="`+s.Subject+`"`)
			if i < 0 {
				t.Fatalf("%s: no uptime bar for %s in the rendered page", c.name, s.Subject)
			}
			bar := dom[i:]
			bar = bar[:strings.Index(bar, "</svg>")]
			if n := strings.Count(bar, `<rect class="cell"`); n != c.cells {
				t.Errorf("%s: %s: %d cells rendered, want %d", c.name, s.Subject, n, c.cells)
			}
		}
		for _, id := range []string{`id="timeline"`, `id="latency"`, `id="events"`} {
			if !strings.Contains(dom, id) {
				t.Errorf("%s: the rendered page has no %s", c.name, id)
			}
		}
		for _, shot := range []struct{ name, size string }{{"phone", "412,1900"}, {"desktop", "1100,1500"}} {
			png := filepath.Join(dir, "report-"+c.name+"-"+shot.name+".png")
			runChromium(t, bin, page, "--hide-scrollbars", "--window-size="+shot.size, "--screenshot="+png)
			fi, err := os.Stat(png)
			if err != nil || fi.Size() < 10000 {
				t.Fatalf("%s: no screenshot at %s (%v)", c.name, png, err)
			}
		}
	}
	if os.Getenv("REPORT_DEMO_DIR") != "" {
		t.Logf("report pages and screenshots in %s", dir)
	}
}
