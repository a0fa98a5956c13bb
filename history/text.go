package history

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// FormatDuration is a short human duration: "45s", "3m 05s", "2h 03m",
// "4d 02h".
func FormatDuration(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second && d > 0:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// FormatPercent is "99.95%", or "–" without data.
func FormatPercent(p *float64) string {
	if p == nil {
		return "–"
	}
	if *p >= 99.995 && *p < 100 {
		return "99.99%" // never round an outage away to 100%
	}
	return fmt.Sprintf("%.2f%%", *p)
}

const stamp = "2006-01-02 15:04:05"

// WriteText prints the report for people.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "imon report %s: %s to %s (%s), agent %s\n", r.Instance,
		r.From.Format("2006-01-02 15:04"), r.To.Format("2006-01-02 15:04"), r.Zone, r.Agent)
	if !r.HistoryFrom.IsZero() {
		fmt.Fprintf(&b, "history since %s\n", r.HistoryFrom.Format(stamp))
	}
	if len(r.Subjects) > 0 {
		fmt.Fprintf(&b, "\n%-24s %-28s %8s %8s %8s %8s  %s\n", "AVAILABILITY", "NOW", "TODAY", "7 DAYS", "30 DAYS", "WINDOW", "UNKNOWN")
		for _, s := range r.Subjects {
			st := s.Status
			if s.Standby {
				st += " (standby)"
			}
			now := st + " since " + s.Since.Format("01-02 15:04")
			unk := "-"
			if s.Window.UnknownS > 0 {
				unk = FormatDuration(s.Window.UnknownS)
			}
			fmt.Fprintf(&b, "%-24s %-28s %8s %8s %8s %8s  %s\n", s.Label, now, FormatPercent(s.Today.Percent),
				FormatPercent(s.Days7.Percent), FormatPercent(s.Days30.Percent), FormatPercent(s.Window.Percent), unk)
			if s.Subject == SubjectActive && s.Window.StandbyS > 0 {
				fmt.Fprintf(&b, "%-24s on the standby WAN for %s in the window\n", "", FormatDuration(s.Window.StandbyS))
			}
		}
	}
	fmt.Fprintf(&b, "\nOUTAGES (%d)\n", len(r.Outages))
	for _, o := range r.Outages {
		end := "ongoing"
		if o.End != nil {
			end = "until " + o.End.Format("15:04:05")
		}
		fmt.Fprintf(&b, "  %s  %-12s %-9s %s", o.Start.Format(stamp), o.Subject, FormatDuration(o.DurationS), end)
		if o.Reason != "" {
			fmt.Fprintf(&b, "  (%s)", o.Reason)
		}
		if len(o.Addping) > 0 {
			var parts []string
			for _, a := range o.Addping {
				st := "down"
				if a.Alive {
					st = "up"
				}
				parts = append(parts, a.IP+" "+st)
			}
			fmt.Fprintf(&b, "  addping: %s", strings.Join(parts, ", "))
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\nFAILOVERS (%d)\n", len(r.Failovers))
	for _, f := range r.Failovers {
		fmt.Fprintf(&b, "  %s  %s -> %s", f.At.Format(stamp), f.From, f.To)
		if f.To == "standby" && f.StandbyS > 0 {
			if f.Ongoing {
				fmt.Fprintf(&b, ", on the standby for %s (still)", FormatDuration(f.StandbyS))
			} else {
				fmt.Fprintf(&b, ", on the standby for %s", FormatDuration(f.StandbyS))
			}
		}
		if f.Reason != "" {
			fmt.Fprintf(&b, "  (%s)", f.Reason)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\nIP CHANGES (%d)\n", len(r.IPChanges))
	for _, c := range r.IPChanges {
		fmt.Fprintf(&b, "  %s  %s (was %s)\n", c.At.Format(stamp), c.New, c.Old)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, "\nLATENCY (ping %s)\n", l.Target)
		if l.Rounds == 0 {
			b.WriteString("  no rounds in the window\n")
		} else {
			fmt.Fprintf(&b, "  %d rounds, loss %.2f%%, mean %.1f ms, p50 %.1f ms, p95 %.1f ms, jitter %.1f ms, max %.1f ms\n",
				l.Rounds, l.LossPct, l.MeanMs, l.P50Ms, l.P95Ms, l.JitterMs, l.MaxMs)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
