package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"imon/agent"
	"imon/config"
	"imon/history"
)

// reportMonitors are the values of imon report --monitor.
var reportMonitors = []string{"updown", "failover", "ping", "ddns"}

func cmdReport(args []string) error {
	var c commonFlags
	fs := newFlagSet("report", &c)
	since := fs.String("since", "24h", "report the window since `DUR|DATE` (24h, 7d, 30d, 2026-01-02)")
	mon := fs.String("monitor", "", "only the subjects of monitor `M` (updown, failover, ping, ddns)")
	asJSON := fs.Bool("json", false, "print the report as a JSON document")
	htmlFile := fs.String("html", "", "also write the report as a self-contained HTML page to `FILE`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	var subjects []string
	if *mon != "" {
		if !slices.Contains(reportMonitors, *mon) {
			return usagef("--monitor %q: want one of %s", *mon, strings.Join(reportMonitors, ", "))
		}
		subjects, _ = history.SubjectsOfMonitor(*mon)
	}
	now := time.Now()
	from, err := parseSince(*since, now)
	if err != nil {
		return usagef("%v", err)
	}
	if !from.Before(now) {
		return usagef("--since %q: the window is empty (it starts now or later)", *since)
	}
	cfg, err := c.loadForClient()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	snap, err := fetchHistory(ctx, cfg, reportFetchFrom(from, now), now)
	if err != nil {
		return err
	}
	loc := history.LoadZone(snap.Zone)
	snap.Finalize(loc)
	rep := history.BuildReport(snap, loc, history.ReportOptions{Instance: cfg.Global.Instance, From: from, Subjects: subjects})

	if *htmlFile != "" {
		if err := writeFileAtomic(*htmlFile, func(w io.Writer) error { return history.WriteHTML(w, rep) }); err != nil {
			return fmt.Errorf("--html %s: %w", *htmlFile, err)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return history.WriteText(out, rep)
}

// reportFetchFrom is the first moment the report needs: the window's
// start, or 30 local days back for the 30-day figures.
func reportFetchFrom(from, now time.Time) time.Time {
	y, m, d := now.Date()
	d30 := time.Date(y, m, d-29, 0, 0, 0, 0, now.Location())
	if from.Before(d30) {
		return from
	}
	return d30
}

// fetchHistory asks the running agent for its rollups, or reads the files
// when no agent runs.
func fetchHistory(ctx context.Context, cfg *config.Config, from, now time.Time) (*history.Snapshot, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := agent.Call(cctx, cfg.Journal.Socket, agent.Request{Cmd: "history", Since: from.UTC().Format(time.RFC3339Nano)})
	if err == nil {
		if !r.OK {
			return nil, fmt.Errorf("agent: %s", r.Error)
		}
		snap := new(history.Snapshot)
		if err := json.Unmarshal(r.History, snap); err != nil {
			return nil, fmt.Errorf("agent sent bad rollups: %w", err)
		}
		return snap, nil
	}
	if !errors.Is(err, agent.ErrNoAgent) {
		return nil, err
	}
	snap, err := history.FromFiles(cfg.Journal.Path, from.UnixMilli(), now, time.Local)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no agent answers on %s and %w at %s", cfg.Journal.Socket, errNoJournal, cfg.Journal.Path)
	}
	return snap, err
}

// writeFileAtomic writes path through a temporary file in its directory.
func writeFileAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// newHistory is the agent's rollup consumer (docs/report.md).
func newHistory(cfg *config.Config, j history.Journal, log *slog.Logger) *history.Consumer {
	return &history.Consumer{J: j, Path: history.PathFor(cfg.Journal.Path), KeepDays: cfg.Journal.HistoryDays,
		Log: log.With("monitor", "history")}
}
