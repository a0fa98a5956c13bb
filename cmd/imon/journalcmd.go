package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"imon/agent"
	"imon/config"
	"imon/event"
	"imon/journal"
)

// journalFilter selects events for `imon journal`.
type journalFilter struct {
	since   time.Time
	monitor string
	kind    string
}

func (f journalFilter) match(ev event.Event) bool {
	if !f.since.IsZero() && ev.Time.Before(f.since) {
		return false
	}
	if f.monitor != "" && ev.Monitor != f.monitor {
		return false
	}
	if f.kind != "" && ev.Kind != f.kind {
		return false
	}
	return true
}

// parseSince accepts a duration back from now ("10m", "2h", "3d") or a time
// (RFC 3339, "2006-01-02 15:04:05" or "2006-01-02", local time).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasSuffix(s, "d") {
		var days float64
		if _, err := fmt.Sscanf(s, "%gd", &days); err == nil && days >= 0 {
			return now.Add(-time.Duration(days * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: negative duration", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (10m, 2h, 3d) or a time (2006-01-02 15:04:05, RFC 3339)", s)
}

func cmdJournal(args []string) error {
	var c commonFlags
	fs := newFlagSet("journal", &c)
	since := fs.String("since", "", "only events since `DUR|TIME` (10m, 2h, 3d, 2026-01-02 15:04:05)")
	mon := fs.String("monitor", "", "only events of monitor `M`")
	kind := fs.String("kind", "", "only events of kind `K`")
	followF := fs.Bool("follow", false, "keep printing new events")
	asJSON := fs.Bool("json", false, "print JSON lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *mon != "" && !slices.Contains(knownMonitors, *mon) {
		return usagef("--monitor %q: want one of %s", *mon, strings.Join(knownMonitors, ", "))
	}
	f := journalFilter{monitor: *mon, kind: *kind}
	var err error
	if f.since, err = parseSince(*since, time.Now()); err != nil {
		return usagef("%v", err)
	}
	cfg, err := c.loadForClient()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	print := func(ev event.Event) error {
		if !f.match(ev) {
			return nil
		}
		if *asJSON {
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			out.Write(b)
			out.WriteByte('\n')
			return nil
		}
		_, err := fmt.Fprintln(out, formatEvent(ev))
		return err
	}
	return replay(ctx, cfg, f.since, *followF, out, print)
}

// formatEvent is the text form of an event: TIME #SEQ MONITOR KIND MESSAGE.
func formatEvent(ev event.Event) string {
	return fmt.Sprintf("%s #%d %s %s %s", ev.Time.Local().Format("2006-01-02 15:04:05.000"), ev.Seq, ev.Monitor, ev.Kind, agent.LogText(ev))
}

// knownMonitors are the values of an event's monitor field.
var knownMonitors = []string{event.MonitorUpdown, event.MonitorPing, event.MonitorDDNS, event.MonitorFailover,
	event.MonitorAgent, event.MonitorMQTT, event.MonitorAction}

// replay prints the journal through the running agent's control socket, or
// straight from the file when no agent runs. With follow it keeps going,
// waiting for an agent to start when none runs.
func replay(ctx context.Context, cfg *config.Config, since time.Time, follow bool, out *bufio.Writer, print func(event.Event) error) error {
	var next uint64 = 1
	lockedTries := 0
	req := agent.Request{Cmd: "journal", Follow: follow}
	if !since.IsZero() {
		req.Since = since.UTC().Format(time.RFC3339Nano)
	}
	for {
		req.From = next
		conn, err := agent.Dial(ctx, cfg.Journal.Socket, req)
		if err == nil {
			// The scanner blocks in a read on the socket: closing the
			// connection is what makes Ctrl-C (ctx) end it.
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			n, err := streamFrom(ctx, conn, out, follow, print)
			stop()
			conn.Close()
			if n > 0 {
				next = n + 1
			}
			if err != nil || !follow || ctx.Err() != nil {
				return err
			}
			continue // the agent stopped: wait for it to come back
		}
		if !errors.Is(err, agent.ErrNoAgent) {
			return err
		}
		last, err := readFile(cfg, since, next, print)
		if last > 0 {
			next = last + 1
		}
		if errors.Is(err, journal.ErrLocked) && !follow && lockedTries < 50 {
			// An agent took the file (it is starting): go on through its
			// socket as soon as it listens.
			lockedTries++
			out.Flush()
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil && !(follow && (errors.Is(err, journal.ErrLocked) || errors.Is(err, errNoJournal))) {
			return err
		}
		if !follow {
			return nil
		}
		out.Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func streamFrom(ctx context.Context, conn io.Reader, out *bufio.Writer, follow bool, print func(event.Event) error) (uint64, error) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var last uint64
	for sc.Scan() {
		line := sc.Bytes()
		var probe struct {
			Error   string           `json:"error"`
			OK      *bool            `json:"ok"`
			Damaged *agent.DamageMsg `json:"damaged"`
		}
		if err := json.Unmarshal(line, &probe); err == nil && probe.OK != nil {
			return last, fmt.Errorf("agent: %s", probe.Error)
		}
		if probe.Damaged != nil {
			out.Flush()
			d := probe.Damaged
			reportDamage(&journal.Damage{Path: d.Path, First: d.FirstSeq, Last: d.LastSeq, Err: errors.New(d.Error)})
			last = d.LastSeq
			continue
		}
		var ev event.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return last, fmt.Errorf("agent sent a bad event: %w", err)
		}
		if err := print(ev); err != nil {
			return last, err
		}
		last = ev.Seq
		if follow {
			out.Flush()
		}
	}
	if ctx.Err() != nil {
		return last, nil
	}
	if err := sc.Err(); follow && errors.As(err, new(*net.OpError)) {
		return last, nil // the agent went away mid-stream (stopping): follow on
	}
	return last, sc.Err()
}

// errNoJournal: neither an agent nor a journal file exists (yet); --follow
// waits for them.
var errNoJournal = errors.New("there is no journal yet")

// readBatch is how many events readFile reads while it holds the file.
const readBatch = 2048

// readFile prints events from the journal file (no agent running). It
// holds the file (a shared lock) only while it reads a batch, never while
// it prints: a reader whose output is not drained (imon journal | less)
// must not keep the agent from starting. The agent may take the file
// between two batches: then it returns an error wrapping ErrLocked with
// the last seq printed, and replay goes on through the agent.
func readFile(cfg *config.Config, since time.Time, from uint64, print func(event.Event) error) (uint64, error) {
	var last uint64
	for first := true; ; first = false {
		evs, damage, err := readBatchFile(cfg, since, from, first)
		if err != nil {
			if first && errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("no agent answers on %s and %w at %s", cfg.Journal.Socket, errNoJournal, cfg.Journal.Path)
			}
			return last, permissionHint(err, cfg.Journal.Path)
		}
		for _, ev := range evs {
			if err := print(ev); err != nil {
				return last, err
			}
			last = ev.Seq
		}
		if damage != nil {
			reportDamage(damage)
			last = damage.Last
		}
		if len(evs) == 0 && damage == nil {
			return last, nil
		}
		from = last + 1
	}
}

// readBatchFile opens the journal read-only, reads one batch from seq
// from (from since, on the first batch), and closes it. A damaged range
// met at the start of the batch is returned instead of events.
func readBatchFile(cfg *config.Config, since time.Time, from uint64, first bool) ([]event.Event, *journal.Damage, error) {
	j, err := journal.Open(cfg.Journal.Path, journal.Options{ReadOnly: true})
	if err != nil {
		return nil, nil, err
	}
	defer j.Close()
	if first && !since.IsZero() {
		s, err := j.SeqAt(since)
		if err != nil {
			return nil, nil, err
		}
		from = max(from, s)
	}
	evs, err := j.ReadPast(from, readBatch)
	var d *journal.Damage
	if errors.As(err, &d) {
		return nil, d, nil
	}
	return evs, nil, err
}

// reportDamage tells the user, on stderr, which events could not be read.
func reportDamage(d *journal.Damage) {
	fmt.Fprintf(os.Stderr, "imon: %v: skipped\n", d)
}
