// Package logsink writes imon's log lines where the original imon wrote
// them: to syslog by default (through journald's stderr stream with priority
// prefixes when run by systemd, else the syslog socket), or to the terminal
// with the configured datefmt when --nosyslog is given.
//
// Every line has the original's shape, "imon [INSTANCE-MONITOR] message", so
// habits like `journalctl -b | grep -i imon` keep working.
package logsink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
	"sync"
	"time"
)

// Priority of a log line (syslog severities).
type Priority int

// Priorities used by imon.
const (
	Err     Priority = 3
	Warning Priority = 4
	Info    Priority = 6
	Debug   Priority = 7
)

// Sink writes complete log lines. It is safe for concurrent use.
type Sink struct {
	instance string
	mu       sync.Mutex // guards the following
	w        io.Writer
	syslog   *syslog.Writer
	datefmt  string // terminal mode when non-empty
	prefixed bool   // journald stream: "<N>" priority prefixes
	now      func() time.Time
	debug    bool
}

// Options configure a Sink.
type Options struct {
	Instance string
	NoSyslog bool   // terminal output with DateFmt
	DateFmt  string // strftime pattern (original "datefmt")
	Debug    bool   // also write debug lines
	// Stderr is where terminal and journald output goes (default os.Stderr).
	Stderr io.Writer
	Now    func() time.Time
}

// New opens a sink. Without NoSyslog it writes to journald through stderr
// when systemd connected stderr to the journal (JOURNAL_STREAM), else to the
// local syslog socket, else (no syslog daemon) to stderr with priorities.
func New(opt Options) *Sink {
	s := &Sink{instance: opt.Instance, w: opt.Stderr, now: opt.Now, debug: opt.Debug}
	if s.w == nil {
		s.w = os.Stderr
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case opt.NoSyslog:
		s.datefmt = opt.DateFmt
		if s.datefmt == "" {
			s.datefmt = "%Y-%m-%d %H:%M:%S"
		}
	case os.Getenv("JOURNAL_STREAM") != "" && opt.Stderr == nil:
		s.prefixed = true
	default:
		if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "imon"); err == nil {
			s.syslog = w
		} else {
			s.prefixed = true
		}
	}
	return s
}

// Line formats the original's line shape: "imon [INSTANCE-MONITOR] msg".
func Line(instance, monitor, msg string) string {
	if monitor == "" {
		return fmt.Sprintf("imon [%s] %s", instance, msg)
	}
	return fmt.Sprintf("imon [%s-%s] %s", instance, monitor, msg)
}

// Write logs msg for monitor at priority p, dated now. Multi-line messages
// are split so that every line carries the prefix.
func (s *Sink) Write(p Priority, monitor, msg string) { s.WriteAt(time.Time{}, p, monitor, msg) }

// WriteAt is Write for something that happened at t (an event's time): the
// terminal output shows t; syslog dates lines itself.
func (s *Sink) WriteAt(t time.Time, p Priority, monitor, msg string) {
	if p >= Debug && !s.debug {
		return
	}
	if t.IsZero() {
		t = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, part := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		line := Line(s.instance, monitor, part)
		switch {
		case s.datefmt != "":
			fmt.Fprintf(s.w, "%s %s\n", Strftime(s.datefmt, t.Local()), line)
		case s.syslog != nil:
			var err error
			switch p {
			case Err:
				err = s.syslog.Err(line)
			case Warning:
				err = s.syslog.Warning(line)
			case Debug:
				err = s.syslog.Debug(line)
			default:
				err = s.syslog.Info(line)
			}
			if err != nil { // syslog went away: do not lose the line
				fmt.Fprintf(s.w, "<%d>%s\n", p, line)
			}
		default:
			fmt.Fprintf(s.w, "<%d>%s\n", p, line)
		}
	}
}

// Close releases the syslog connection.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syslog != nil {
		return s.syslog.Close()
	}
	return nil
}

// Handler returns a slog.Handler that writes records through the sink as
// "imon [INSTANCE-COMPONENT] msg key=value ...", where COMPONENT is the
// "monitor" attribute added with Logger.With (or empty).
func (s *Sink) Handler() slog.Handler { return &handler{sink: s} }

type handler struct {
	sink    *Sink
	monitor string
	attrs   []slog.Attr
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return l > slog.LevelDebug || h.sink.debug
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) {
		if a.Key == "" {
			return
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Resolve())
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(func(a slog.Attr) bool { write(a); return true })
	p := Info
	switch {
	case r.Level >= slog.LevelError:
		p = Err
	case r.Level >= slog.LevelWarn:
		p = Warning
	case r.Level < slog.LevelInfo:
		p = Debug
	}
	h.sink.Write(p, h.monitor, b.String())
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if a.Key == "monitor" {
			n.monitor = a.Value.String()
			continue
		}
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *handler) WithGroup(string) slog.Handler { return h }
