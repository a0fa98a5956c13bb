package history

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Colours of the availability scale (also in the legend).
func availColor(a Avail) string {
	switch p := a.Percent; {
	case p == nil:
		return "#9ca3af"
	case *p >= 99.9:
		return "#16a34a"
	case *p >= 99:
		return "#84cc16"
	case *p >= 95:
		return "#f59e0b"
	}
	return "#dc2626"
}

type htmlCell struct {
	X, W  float64
	Color string
	Title string
}

type htmlBar struct {
	Subject, Label, Status, StatusClass string
	Today, Days7, Days30, Window        string
	ViewW                               int
	Cells                               []htmlCell
	First, Last                         string
}

type htmlRect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type htmlLane struct {
	Label string
	Rects []htmlRect
}

type htmlTimeline struct {
	Lanes []*htmlLane
	Ticks []string
}

type htmlLatency struct {
	Summary  string
	Hover    []htmlRect
	Polyline string
	LossBars []htmlRect
	YMax     string
	First    string
	Last     string
}

type htmlRow struct {
	Day, Clock, Kind, Subject, Detail, Duration, Class string
}

type htmlView struct {
	R        *Report
	Title    string
	Bars     []htmlBar
	Timeline *htmlTimeline
	Latency  *htmlLatency
	Rows     []htmlRow
}

func cellTitle(unit string, c Cell) string {
	var start string
	if unit == "hour" {
		start = c.Start.Format("Mon 2 Jan 15:00")
	} else {
		start = c.Start.Format("Mon 2 Jan 2006")
	}
	parts := []string{start + ": " + FormatPercent(c.Percent)}
	if c.UpS > 0 {
		parts = append(parts, "up "+FormatDuration(c.UpS))
	}
	if c.DownS > 0 {
		parts = append(parts, "down "+FormatDuration(c.DownS))
	}
	if c.UnknownS > 0 {
		parts = append(parts, "unknown "+FormatDuration(c.UnknownS))
	}
	if c.StandbyS > 0 {
		parts = append(parts, "on standby "+FormatDuration(c.StandbyS))
	}
	if c.UpS+c.DownS+c.UnknownS == 0 {
		parts = append(parts, "no data")
	}
	return strings.Join(parts, ", ")
}

func statusClass(s SubjectReport) string {
	switch {
	case s.Status == Up && s.Standby:
		return "standby"
	case s.Status == Up:
		return "up"
	case s.Status == Down:
		return "down"
	}
	return "unknown"
}

// WriteHTML writes the report as one self-contained page: inline CSS and
// SVG, no script, no external resource.
func WriteHTML(w io.Writer, r *Report) error {
	v := &htmlView{R: r, Title: "imon report " + r.Instance}
	const cw = 10
	for _, s := range r.Subjects {
		b := htmlBar{Subject: s.Subject, Label: s.Label, Status: s.Status, StatusClass: statusClass(s),
			Today: FormatPercent(s.Today.Percent), Days7: FormatPercent(s.Days7.Percent),
			Days30: FormatPercent(s.Days30.Percent), Window: FormatPercent(s.Window.Percent), ViewW: cw * len(s.Cells)}
		if s.Standby {
			b.Status = "up (standby)"
		}
		for i, c := range s.Cells {
			b.Cells = append(b.Cells, htmlCell{X: float64(i*cw) + 1, W: cw - 2, Color: availColor(c.Avail), Title: cellTitle(r.CellUnit, c)})
		}
		if len(s.Cells) > 0 {
			layout := "2 Jan"
			if r.CellUnit == "hour" {
				layout = "15:00"
			}
			b.First, b.Last = s.Cells[0].Start.Format(layout), s.Cells[len(s.Cells)-1].Start.Format(layout)
		}
		v.Bars = append(v.Bars, b)
	}
	v.Timeline = timelineOf(r)
	v.Latency = latencyChart(r)
	v.Rows = rowsOf(r)
	return htmlTmpl.Execute(w, v)
}

func timelineOf(r *Report) *htmlTimeline {
	from, to := r.From, r.To
	span := to.Sub(from).Seconds()
	if span <= 0 {
		return nil
	}
	const W = 1000.0
	x := func(t time.Time) float64 { return math.Max(0, math.Min(W, t.Sub(from).Seconds()/span*W)) }
	tl := &htmlTimeline{}
	lanes := map[string]*htmlLane{}
	for _, s := range r.Subjects {
		l := &htmlLane{Label: s.Label}
		lanes[s.Subject] = l
		tl.Lanes = append(tl.Lanes, l)
	}
	if len(r.IPChanges) > 0 {
		l := &htmlLane{Label: "external IP"}
		lanes[SubjectIP] = l
		tl.Lanes = append(tl.Lanes, l)
	}
	if len(tl.Lanes) == 0 {
		return nil
	}
	span2 := func(l *htmlLane, a, b time.Time, class, title string) {
		x0, x1 := x(a), x(b)
		l.Rects = append(l.Rects, htmlRect{X: x0, Y: 2, W: math.Max(x1-x0, 3), H: 18, Class: class, Title: title})
	}
	if l, ok := lanes[SubjectActive]; ok {
		for _, f := range r.Failovers {
			if f.To == "standby" && f.StandbyS > 0 {
				span2(l, f.At, f.At.Add(time.Duration(f.StandbyS*float64(time.Second))), "sb",
					fmt.Sprintf("on the standby from %s for %s", f.At.Format(stamp), FormatDuration(f.StandbyS)))
			}
		}
		for _, f := range r.Failovers {
			l.Rects = append(l.Rects, htmlRect{X: math.Min(x(f.At), W-2), Y: 0, W: 2, H: 22, Class: "fo",
				Title: fmt.Sprintf("failover %s: %s → %s %s", f.At.Format(stamp), f.From, f.To, f.Reason)})
		}
	}
	for _, o := range r.Outages {
		l, ok := lanes[o.Subject]
		if !ok {
			continue
		}
		end := to
		if o.End != nil {
			end = *o.End
		}
		span2(l, o.Start, end, "out", fmt.Sprintf("outage %s, %s", o.Start.Format(stamp), FormatDuration(o.DurationS)))
	}
	if l, ok := lanes[SubjectIP]; ok {
		for _, c := range r.IPChanges {
			l.Rects = append(l.Rects, htmlRect{X: math.Min(x(c.At), W-3), Y: 0, W: 3, H: 22, Class: "ip",
				Title: fmt.Sprintf("%s: %s (was %s)", c.At.Format(stamp), c.New, c.Old)})
		}
	}
	layout := "2 Jan 15:04"
	if to.Sub(from) > 72*time.Hour {
		layout = "2 Jan"
	}
	for i := 0; i <= 4; i++ {
		tl.Ticks = append(tl.Ticks, from.Add(time.Duration(float64(to.Sub(from))*float64(i)/4)).Format(layout))
	}
	return tl
}

func latencyChart(r *Report) *htmlLatency {
	l := r.Latency
	if l == nil || l.Rounds == 0 || len(l.Series) == 0 {
		return nil
	}
	c := &htmlLatency{Summary: fmt.Sprintf("%s · %d rounds · loss %.2f%% · mean %.1f ms · p50 %.1f ms · p95 %.1f ms · jitter %.1f ms",
		l.Target, l.Rounds, l.LossPct, l.MeanMs, l.P50Ms, l.P95Ms, l.JitterMs)}
	// viewBox 1000×200: latency in 0..150, loss in 160..200
	const W, plotH, lossTop, lossH = 1000.0, 150.0, 160.0, 40.0
	yMax := 1.0
	for _, p := range l.Series {
		yMax = math.Max(yMax, p.MeanMs)
	}
	yMax = niceCeil(yMax * 1.1)
	c.YMax = fmt.Sprintf("%g ms", yMax)
	span := r.To.Sub(r.From).Seconds()
	step := 3600.0
	layout := "2 Jan 15:00"
	if r.CellUnit == "day" {
		step, layout = 86400, "2 Jan"
	}
	bw := math.Max(step/span*W, 1)
	x := func(t time.Time) float64 { return math.Max(0, t.Sub(r.From).Seconds()/span*W) }
	var pts []string
	for _, p := range l.Series {
		x0 := x(p.Start)
		title := fmt.Sprintf("%s: mean %.1f ms, jitter %.1f ms, max %.1f ms, loss %.2f%% (%d rounds)",
			p.Start.Format(layout), p.MeanMs, p.JitterMs, p.MaxMs, p.LossPct, p.Rounds)
		if p.MeanMs > 0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", math.Min(x0+bw/2, W), plotH-p.MeanMs/yMax*(plotH-5)))
		}
		if p.LossPct > 0 {
			h := math.Max(p.LossPct/100*lossH, 2)
			c.LossBars = append(c.LossBars, htmlRect{X: x0, Y: lossTop + lossH - h, W: math.Max(bw-1, 1), H: h, Class: "loss", Title: title})
		}
		c.Hover = append(c.Hover, htmlRect{X: x0, Y: 0, W: bw, H: 200, Class: "hov", Title: title})
	}
	c.Polyline = strings.Join(pts, " ")
	c.First, c.Last = l.Series[0].Start.Format(layout), l.Series[len(l.Series)-1].Start.Format(layout)
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func rowsOf(r *Report) []htmlRow {
	type row struct {
		t time.Time
		htmlRow
	}
	var rows []row
	for _, o := range r.Outages {
		d := FormatDuration(o.DurationS)
		detail := "until " + "now"
		if o.End != nil {
			detail = "until " + o.End.Format(stamp)
		} else {
			d += " (ongoing)"
		}
		if o.Reason != "" {
			detail += "; " + o.Reason
		}
		for _, a := range o.Addping {
			st := "down"
			if a.Alive {
				st = "up"
			}
			detail += "; " + a.IP + " " + st
		}
		rows = append(rows, row{o.Start, htmlRow{Day: o.Start.Format("2006-01-02"), Clock: o.Start.Format("15:04:05"), Kind: "outage", Subject: o.Subject, Detail: detail, Duration: d, Class: "out"}})
	}
	for _, f := range r.Failovers {
		d := ""
		if f.To == "standby" && f.StandbyS > 0 {
			d = "standby " + FormatDuration(f.StandbyS)
			if f.Ongoing {
				d += " (ongoing)"
			}
		}
		rows = append(rows, row{f.At, htmlRow{Day: f.At.Format("2006-01-02"), Clock: f.At.Format("15:04:05"), Kind: "failover", Subject: SubjectActive,
			Detail: f.From + " → " + f.To + ": " + f.Reason, Duration: d, Class: "fo"}})
	}
	for _, c := range r.IPChanges {
		rows = append(rows, row{c.At, htmlRow{Day: c.At.Format("2006-01-02"), Clock: c.At.Format("15:04:05"), Kind: "IP change", Subject: SubjectIP,
			Detail: c.New + " (was " + c.Old + ")", Class: "ip"}})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].t.After(rows[j].t) })
	out := make([]htmlRow, len(rows))
	for i, r := range rows {
		out[i] = r.htmlRow
	}
	return out
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root{--bg:#f8fafc;--fg:#0f172a;--mut:#64748b;--card:#fff;--line:#e2e8f0}
@media (prefers-color-scheme:dark){:root{--bg:#0f172a;--fg:#e2e8f0;--mut:#94a3b8;--card:#1e293b;--line:#334155}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:960px;margin:0 auto;padding:12px}
h1{font-size:1.3em;margin:.3em 0}
h2{font-size:1.05em;margin:0 0 .5em}
.meta{color:var(--mut);font-size:.9em}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px;margin:12px 0}
.subj{margin:0 0 14px}
.subj:last-child{margin-bottom:0}
.head{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 10px}
.name{font-weight:600}
.pill{font-size:.8em;padding:1px 8px;border-radius:999px;color:#fff;background:#6b7280}
.pill.up{background:#16a34a}.pill.down{background:#dc2626}.pill.standby{background:#d97706}
.figs{display:grid;grid-template-columns:repeat(4,1fr);gap:4px;margin:6px 0;font-size:.85em;color:var(--mut)}
.figs b{display:block;color:var(--fg);font-size:1.15em}
svg{display:block;width:100%}
.bar{height:34px}
.axis{display:flex;justify-content:space-between;color:var(--mut);font-size:.75em}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:.8em;color:var(--mut);margin-top:8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.lanelbl{font-size:.8em;color:var(--mut);margin-top:6px}
svg.lane{height:22px}
.bg{fill:var(--line)}
.out{fill:#dc2626}.sb{fill:#f59e0b}.fo{fill:#2563eb}.ip{fill:#7c3aed}.loss{fill:#dc2626;opacity:.75}
.chart{position:relative;margin-top:8px}
.ymax,.yloss{position:absolute;left:4px;font-size:.7em;color:var(--mut)}
.ymax{top:0}.yloss{top:78%}
svg.lat{height:170px}
.grid{stroke:var(--line);stroke-width:1;vector-effect:non-scaling-stroke}
.rtt{fill:none;stroke:#2563eb;stroke-width:2;vector-effect:non-scaling-stroke;stroke-linejoin:round}
.hov{fill:transparent}.hov:hover{fill:rgba(37,99,235,.12)}
.tbl{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.85em}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}
td.t{white-space:nowrap;font-variant-numeric:tabular-nums}
tr.out td:nth-child(2){color:#dc2626}tr.fo td:nth-child(2){color:#2563eb}tr.ip td:nth-child(2){color:#7c3aed}
.empty{color:var(--mut)}
@media (max-width:520px){main{padding:8px}section{padding:10px}.figs{grid-template-columns:repeat(2,1fr)}th.d,td.d{display:none}}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<div class="meta">{{.R.From.Format "Mon 2 Jan 2006 15:04"}} – {{.R.To.Format "Mon 2 Jan 2006 15:04"}} ({{.R.Zone}}) · agent {{.R.Agent}}{{if not .R.HistoryFrom.IsZero}} · history since {{.R.HistoryFrom.Format "2 Jan 2006"}}{{end}}</div>

<section id="uptime">
<h2>Availability</h2>
{{range .Bars}}<div class="subj" data-subject="{{.Subject}}">
<div class="head"><span class="name">{{.Label}}</span><span class="pill {{.StatusClass}}">{{.Status}}</span></div>
<div class="figs"><span>today<b>{{.Today}}</b></span><span>7 days<b>{{.Days7}}</b></span><span>30 days<b>{{.Days30}}</b></span><span>window<b>{{.Window}}</b></span></div>
<svg class="bar" viewBox="0 0 {{.ViewW}} 34" preserveAspectRatio="none" role="img" aria-label="uptime of {{.Label}}">
{{range .Cells}}<rect class="cell" x="{{.X}}" y="2" width="{{.W}}" height="30" rx="1.5" fill="{{.Color}}"><title>{{.Title}}</title></rect>
{{end}}</svg>
<div class="axis"><span>{{.First}}</span><span>{{.Last}}</span></div>
</div>
{{else}}<p class="empty">No availability data in this window.</p>
{{end}}<div class="legend"><span><i style="background:#16a34a"></i>≥ 99.9%</span><span><i style="background:#84cc16"></i>≥ 99%</span><span><i style="background:#f59e0b"></i>≥ 95%</span><span><i style="background:#dc2626"></i>&lt; 95%</span><span><i style="background:#9ca3af"></i>no data</span></div>
</section>

{{with .Timeline}}<section id="timeline">
<h2>Timeline</h2>
{{range .Lanes}}<div class="lanelbl">{{.Label}}</div>
<svg class="lane" viewBox="0 0 1000 22" preserveAspectRatio="none" role="img" aria-label="timeline of {{.Label}}"><rect class="bg" x="0" y="2" width="1000" height="18" rx="3"/>
{{range .Rects}}<rect class="{{.Class}}" x="{{printf "%.1f" .X}}" y="{{.Y}}" width="{{printf "%.1f" .W}}" height="{{.H}}"><title>{{.Title}}</title></rect>
{{end}}</svg>
{{end}}<div class="axis">{{range .Ticks}}<span>{{.}}</span>{{end}}</div>
<div class="legend"><span><i style="background:#dc2626"></i>outage</span><span><i style="background:#f59e0b"></i>on the standby WAN</span><span><i style="background:#2563eb"></i>failover</span><span><i style="background:#7c3aed"></i>IP change</span></div>
</section>
{{end}}
{{with .Latency}}<section id="latency">
<h2>Latency and loss</h2>
<div class="meta">{{.Summary}}</div>
<div class="chart"><span class="ymax">{{.YMax}}</span><span class="yloss">loss</span>
<svg class="lat" viewBox="0 0 1000 200" preserveAspectRatio="none" role="img" aria-label="latency and loss">
<line class="grid" x1="0" x2="1000" y1="5" y2="5"/><line class="grid" x1="0" x2="1000" y1="77.5" y2="77.5"/><line class="grid" x1="0" x2="1000" y1="150" y2="150"/><line class="grid" x1="0" x2="1000" y1="200" y2="200"/>
<polyline class="rtt" points="{{.Polyline}}"/>
{{range .LossBars}}<rect class="loss" x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}"/>
{{end}}{{range .Hover}}<rect class="hov" x="{{printf "%.1f" .X}}" y="0" width="{{printf "%.2f" .W}}" height="200"><title>{{.Title}}</title></rect>
{{end}}</svg></div>
<div class="axis"><span>{{.First}}</span><span>{{.Last}}</span></div>
<div class="legend"><span><i style="background:#2563eb"></i>mean RTT</span><span><i style="background:#dc2626"></i>loss (bottom band, 0–100%)</span></div>
</section>
{{end}}
<section id="events">
<h2>Events</h2>
{{if .Rows}}<div class="tbl"><table>
<thead><tr><th>time</th><th>what</th><th class="d">subject</th><th>detail</th><th>duration</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="{{.Class}}"><td class="t">{{.Day}}<br>{{.Clock}}</td><td>{{.Kind}}</td><td class="d">{{.Subject}}</td><td>{{.Detail}}</td><td class="t">{{.Duration}}</td></tr>
{{end}}</tbody></table></div>
{{else}}<p class="empty">No outages, failovers or IP changes in this window.</p>{{end}}
</section>
<div class="meta">Generated by imon at {{.R.Generated.Format "2006-01-02 15:04:05"}}.</div>
</main>
</body>
</html>
`))
