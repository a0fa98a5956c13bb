package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"imon/agent"
	"imon/agent/action"
	"imon/agent/logsink"
	"imon/agent/outbox"
	"imon/agent/probe"
	"imon/config"
	"imon/event"
	"imon/history"
	"imon/journal"
)

func cmdRun(args []string) error {
	var c commonFlags
	fs := newFlagSet("run", &c)
	nosyslog := fs.Bool("nosyslog", false, "log to the terminal instead of syslog")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unknown command %q (commands: run, configure, check, journal, status, failover, version, help)", fs.Arg(0))
	}
	// What run accepts, at the start and for a reload: the file without
	// problems, and no other failover instance over the same WANs or
	// ranges (they would fight over the routes: refuse before touching any).
	load := func() (*config.Config, error) {
		cfg, err := c.load()
		if err != nil {
			return nil, err
		}
		return cfg, config.CheckInstances(cfg).Err()
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	tuneRuntime()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals...)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	rl := &reloader{path: cfg.Path, check: func() error { _, err := load(); return err }}
	var watcher sync.WaitGroup
	watcher.Go(func() { stopOnSignal(sigs, cancel, done, cfg.Journal.Socket, rl) })
	released := make(chan struct{})
	go func() { // owned here: stops with ctx, waited for below
		defer close(released)
		releasePages(ctx)
	}()
	err = run(ctx, cfg, *nosyslog, os.Args, rl)
	cancel()
	<-released
	close(done)
	watcher.Wait()
	if err == nil && rl.requested.Load() {
		return reexec()
	}
	return err
}

// stopSignals end the agent cleanly: the monitors stop (failover removes
// its policy rules and per-WAN tables, keeping the default route),
// agent-stop is journaled, the control socket is removed. SIGHUP is a
// reload when the agent has no controlling terminal (a service: systemctl
// reload), and a stop like SIGTERM when it has one (the terminal of `imon
// run --nosyslog` was closed); SIGQUIT first prints every goroutine's stack
// to stderr.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

// reloader handles SIGHUP's reload: the config file is loaded and checked
// again (as imon check does); when it is good the agent stops as on
// SIGTERM and runs again in the same process (exec of its own binary, same
// arguments and pid: systemd's Type=notify main process stays), which
// reads the new config and restores each monitor's state from the
// journal. A bad file changes nothing: the agent goes on with the config it
// runs, and says why in its log.
type reloader struct {
	path      string       // the config file
	check     func() error // loads and checks the config file again
	requested atomic.Bool  // a reload was accepted: exec after the stop
	// logf writes to the agent's log once run has it (stderr before).
	logf atomic.Pointer[func(p logsink.Priority, msg string)]
}

func (r *reloader) log(p logsink.Priority, msg string) {
	if f := r.logf.Load(); f != nil {
		(*f)(p, msg)
		return
	}
	fmt.Fprintln(os.Stderr, "imon: "+msg)
}

// accept checks the config for a SIGHUP's reload: true when the reload
// goes ahead (requested is set), false when the agent goes on as it is.
func (r *reloader) accept() bool {
	if err := r.check(); err != nil {
		r.log(logsink.Err, fmt.Sprintf("SIGHUP: not reloading, the agent goes on with the config it runs: %v", err))
		return false
	}
	r.log(logsink.Info, "SIGHUP: reloading "+r.path+": the agent stops and starts again in this process")
	r.requested.Store(true)
	return true
}

// hasTerminal reports whether the process has a controlling terminal: a
// SIGHUP then means the terminal went away, and the agent stops.
var hasTerminal = func() bool {
	f, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

// reexec replaces the process with a new run of the same binary and
// arguments (a reload). It returns only if exec failed: the agent has
// stopped cleanly then, and exits with an error (systemd restarts it).
func reexec() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	err = syscall.Exec(exe, os.Args, os.Environ())
	return fmt.Errorf("reload: exec %s: %w", exe, err)
}

// StopBudget bounds a stop: if the agent has not ended this long after the
// stop signal (a hung journal, a hung netlink call), the process exits at
// once with status 1, after removing its control socket.
const StopBudget = 4500 * time.Millisecond

// stopOnSignal cancels the agent on the first stop signal, and exits the
// process if the stop takes longer than StopBudget. It returns when done
// is closed (run returned).
func stopOnSignal(sigs <-chan os.Signal, cancel context.CancelFunc, done <-chan struct{}, socket string, rl *reloader) {
	var sig os.Signal
	for sig == nil {
		select {
		case <-done:
			return
		case sig = <-sigs:
		}
		if sig == syscall.SIGHUP && !hasTerminal() && !rl.accept() {
			sig = nil // a bad config: the agent goes on
		}
	}
	if sig == syscall.SIGQUIT {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "imon: SIGQUIT: goroutine dump:\n%s\n", buf)
	}
	cancel()
	t := time.NewTimer(StopBudget)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			// A stop signal during a reload's stop makes it a stop.
			if s != syscall.SIGHUP && rl.requested.Swap(false) {
				rl.log(logsink.Info, fmt.Sprintf("%v during the reload: stopping instead", s))
			}
			continue
		case <-t.C:
		}
		fmt.Fprintf(os.Stderr, "imon: %v: the agent did not stop within %s: exiting now\n", sig, StopBudget)
		if fi, err := os.Lstat(socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(socket)
		}
		os.Exit(exitFailure)
	}
}

func run(ctx context.Context, cfg *config.Config, nosyslog bool, argv []string, rl *reloader) error {
	inst := cfg.Global.Instance
	sink := logsink.New(logsink.Options{Instance: inst, NoSyslog: nosyslog, DateFmt: cfg.Global.DateFmt, Debug: cfg.Global.Debug})
	defer sink.Close()
	if rl != nil {
		logf := func(p logsink.Priority, msg string) { sink.Write(p, "", msg) }
		rl.logf.Store(&logf)
		defer rl.logf.Store(nil)
	}
	log := slog.New(sink.Handler())

	// The original's startup lines.
	sink.Write(logsink.Info, "", "Starting")
	sink.Write(logsink.Info, "", "Version: "+versionString())
	sink.Write(logsink.Info, "", "Command line: "+strings.Join(argv, " "))
	sink.Write(logsink.Info, "", "Config file: "+cfg.Path)
	for _, l := range cfg.Dump() {
		sink.Write(logsink.Info, "", l)
	}

	j, fallback, err := openJournal(cfg, log)
	if err != nil {
		sink.Write(logsink.Err, "", err.Error())
		return err
	}
	defer j.Close()
	var problems []agent.Problem
	startEvs := startEvents(cfg, j)
	if fallback == nil {
		for _, msg := range mergeFallbacks(ctx, cfg, j) {
			sink.Write(msg.level, "", msg.text)
		}
	}
	if fallback != nil {
		sink.Write(logsink.Err, "", fallback.Msg)
		problems = append(problems, agent.Problem{What: "journal-fallback", Since: time.Now().UTC(),
			Msg: fmt.Sprintf("running on the fallback journal: %v", fallback.err)})
		startEvs = append(startEvs, fallback.event(cfg.Journal.Path, j.Path()))
	}

	reloading := func() bool { return rl != nil && rl.requested.Load() }
	w, err := wire(cfg, nosyslog, j, sink, log, reloading)
	if err != nil {
		sink.Write(logsink.Err, "", err.Error())
		return err
	}

	ag := agent.New(agent.Options{
		Instance:  inst,
		Version:   version,
		Journal:   j,
		Monitors:  w.monitors,
		Consumers: w.consumers,
		Logger:    log.With("monitor", "agent"),
		StartData: map[string]any{
			"version": versionString(), "command_line": argv, "config": cfg.Path,
			"monitors": w.names, "pid": os.Getpid(),
		},
		StartEvents:      startEvs,
		Ready:            w.ready,
		Alive:            w.alive,
		WatchdogInterval: w.watchdog,
		Stopping:         w.stopping,
		FailoverEnabled:  cfg.Failover.Enable,
		Direct:           w.logc,
		Problems:         problems,
		HealthChanged:    w.healthChanged,
		// The whole stop fits in StopBudget: monitors, then this.
		DrainTimeout: 3 * time.Second,
		// Monitors' rounds on the probes' ticks (probe.Engine.Every).
		Every: probe.Shared().Every,
	})
	w.agent = ag

	ctl := &agent.Control{
		Path: cfg.Journal.Socket,
		J:    j,
		Status: func() any {
			st := buildStatus(cfg, ag, w.names, true)
			st.setHealth(cfg, j.Path(), ag.Health())
			return st
		},
		Failover: ag.FailoverCommand,
		History:  w.history.Report,
	}
	ln, err := ctl.Listen()
	switch {
	case err == nil:
	case diskFailure(err):
		// The router comes first: run without the control socket.
		sink.Write(logsink.Err, "", err.Error()+": running without it (imon status and imon failover cannot reach the agent)")
	default: // another agent on it, not a socket: a config mistake
		sink.Write(logsink.Err, "", err.Error())
		return err
	}
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	ctlDone := make(chan error, 1)
	if ln != nil {
		go func() { ctlDone <- ctl.Serve(ctlCtx, ln) }()
	} else {
		ctlDone <- nil
	}

	runErr := ag.Run(ctx)
	stopCtl()
	if err := <-ctlDone; err != nil {
		log.Error("control socket", "err", err)
	}
	if err := j.Close(); err != nil && !errors.Is(err, journal.ErrClosed) {
		log.Error("close journal", "err", err)
	}
	sink.Write(logsink.Info, "", "Stopped")
	return runErr
}

// startEvents are journaled right after agent-start: journal-recovered when
// Open moved a corrupt journal aside.
func startEvents(cfg *config.Config, j *journal.Journal) []event.Event {
	aside := j.Recovered()
	if aside == "" {
		return nil
	}
	return []event.Event{event.New(event.MonitorAgent, event.KindJournalRecovered,
		fmt.Sprintf("Journal %s was corrupt: moved aside to %s, started a new journal", cfg.Journal.Path, aside),
		map[string]any{"path": cfg.Journal.Path, "aside": aside}).WithLevel(event.LevelError)}
}

// FallbackDir holds the fallback journals: a tmpfs on systemd systems
// (RuntimeDirectory=imon), writable when the disk is not.
const FallbackDir = "/run/imon/fallback"

// fallbackDirs are tried in order for the fallback journal.
var fallbackDirs = []string{FallbackDir, filepath.Join(os.TempDir(), "imon-fallback")}

// fallbackInfo says why the agent runs on a fallback journal.
type fallbackInfo struct {
	Msg string
	err error
}

func (f *fallbackInfo) event(path, fb string) event.Event {
	return event.New(event.MonitorAgent, event.KindJournalFallback, f.Msg,
		map[string]any{"path": path, "fallback": fb, "error": f.err.Error()}).WithLevel(event.LevelError)
}

// fallbackPath is the fallback journal of cfg's journal: one per
// configured path, so that instances never share one.
func fallbackPath(dir string, cfg *config.Config) string {
	sum := sha256.Sum256([]byte(cfg.Journal.Path))
	return filepath.Join(dir, fmt.Sprintf("%s-%x.db", cfg.Global.Instance, sum[:4]))
}

// openJournal opens the configured journal. When it cannot be opened
// (missing directory on a read-only disk, a read-only file system, a file
// that cannot be used) the start is degraded, not refused: a router must
// come up routed. The agent then runs on a fallback journal in
// FallbackDir (or the temporary directory), said loudly. A journal locked
// by another agent is still an error.
func openJournal(cfg *config.Config, log *slog.Logger) (*journal.Journal, *fallbackInfo, error) {
	opt := journal.Options{
		MaxAge:   cfg.Journal.MaxAge,
		MaxBytes: cfg.Journal.MaxBytes,
		Logger:   log.With("monitor", "journal"),
	}
	j, err := journal.Open(cfg.Journal.Path, opt)
	if err == nil || errors.Is(err, journal.ErrLocked) {
		return j, nil, err
	}
	var errs []error
	for _, dir := range fallbackDirs {
		fb := fallbackPath(dir, cfg)
		fj, ferr := journal.Open(fb, opt)
		if ferr == nil {
			return fj, &fallbackInfo{err: err, Msg: fmt.Sprintf(
				"DEGRADED START: journal %s cannot be opened (%v); running on the fallback journal %s until the agent is restarted with a usable journal, which then takes its events (they are lost if the machine reboots first)",
				cfg.Journal.Path, err, fb)}, nil
		}
		errs = append(errs, ferr)
	}
	return nil, nil, fmt.Errorf("%w; fallback journals: %w", err, errors.Join(errs...))
}

// mergeBudget bounds the merge of fallback journals at start: the
// monitors (the route) start after it. What is left is merged at the next
// start (the journal records how far a merge got).
const mergeBudget = 5 * time.Second

// logLine is a line for the log sink.
type logLine struct {
	level logsink.Priority
	text  string
}

// mergeFallbacks copies the events of cfg's fallback journals (left by a
// degraded start: the configured journal could not be opened then) to the
// end of j, now that it opened, and removes them and their rollup files.
// The cursors of the consumers that deliver events outside (log, action
// script, MQTT) skip the copies they delivered then. A fallback that
// cannot be merged (in use by another agent, unreadable, the disk failing)
// stays where it is, said in the log; the start goes on.
func mergeFallbacks(ctx context.Context, cfg *config.Config, j *journal.Journal) []logLine {
	var lines []logLine
	carry := []string{(&agent.LogConsumer{}).Name(), action.CursorName, outbox.CursorName}
	for _, dir := range fallbackDirs {
		fb := fallbackPath(dir, cfg)
		if _, err := os.Lstat(fb); err != nil {
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, mergeBudget)
		res, err := j.Merge(mctx, fb, carry)
		cancel()
		if err != nil {
			lines = append(lines, logLine{logsink.Err, fmt.Sprintf(
				"fallback journal %s: %v: left where it is (%d events merged so far; the next start goes on)", fb, err, res.Events)})
			continue
		}
		switch {
		case res.Already:
			lines = append(lines, logLine{logsink.Info, fmt.Sprintf("fallback journal %s: merged before: removing it", fb)})
		case res.Events > 0:
			lines = append(lines, logLine{logsink.Info, fmt.Sprintf("fallback journal %s: merged %d events (%s to %s) into %s",
				fb, res.Events, res.From.Format(time.RFC3339), res.To.Format(time.RFC3339), j.Path())})
		}
		for _, p := range []string{fb, history.PathFor(fb)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				lines = append(lines, logLine{logsink.Warning, fmt.Sprintf("fallback journal: %v", err)})
			}
		}
	}
	return lines
}

// diskFailure reports whether err is the file system failing (read-only,
// full, I/O error) rather than a mistake in the config.
func diskFailure(err error) bool {
	for _, e := range []syscall.Errno{syscall.EROFS, syscall.ENOSPC, syscall.EDQUOT, syscall.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
