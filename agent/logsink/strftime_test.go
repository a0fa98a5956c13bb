package logsink

import (
	"testing"
	"time"
)

func TestStrftime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tm := time.Date(2026, 3, 5, 14, 7, 9, 123456789, cet) // a Thursday
	midnight := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		pattern string
		t       time.Time
		want    string
	}{
		{"%Y-%m-%d %H:%M:%S", tm, "2026-03-05 14:07:09"}, // the original's default datefmt
		{"%y %e|%I %p %f", tm, "26  5|02 PM 123456"},
		{"%a %A %b %h %B %j", tm, "Thu Thursday Mar Mar March 064"},
		{"%z %Z %s", tm, "+0100 CET " + "1772716029"},
		{"%F %T", tm, "2026-03-05 14:07:09"},
		{"%I %p %j", midnight, "12 AM 365"},
		{"100%% %Q %", tm, "100% %Q %"}, // %% is a percent; unknown directives and a trailing % pass through
		{"", tm, ""},
	} {
		if got := Strftime(c.pattern, c.t); got != c.want {
			t.Errorf("Strftime(%q) = %q, want %q", c.pattern, got, c.want)
		}
	}
}

func BenchmarkStrftimeDefault(b *testing.B) {
	tm := time.Date(2026, 3, 5, 14, 7, 9, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		Strftime("%Y-%m-%d %H:%M:%S", tm)
	}
}
