package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"imon/agent"
	"imon/agent/logsink"
	"imon/config"
	"imon/event"
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
	cfg, err := c.load()
	if err != nil {
		return err
	}
	// Another failover instance over the same WANs or ranges would fight
	// over the routes: refuse before touching any.
	if err := config.CheckInstances(cfg).Err(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, cfg, *nosyslog, os.Args)
}

func run(ctx context.Context, cfg *config.Config, nosyslog bool, argv []string) error {
	inst := cfg.Global.Instance
	sink := logsink.New(logsink.Options{Instance: inst, NoSyslog: nosyslog, DateFmt: cfg.Global.DateFmt, Debug: cfg.Global.Debug})
	defer sink.Close()
	log := slog.New(sink.Handler())

	// The original's startup lines.
	sink.Write(logsink.Info, "", "Starting")
	sink.Write(logsink.Info, "", "Version: "+versionString())
	sink.Write(logsink.Info, "", "Command line: "+strings.Join(argv, " "))
	sink.Write(logsink.Info, "", "Config file: "+cfg.Path)
	for _, l := range cfg.Dump() {
		sink.Write(logsink.Info, "", l)
	}

	j, err := journal.Open(cfg.Journal.Path, journal.Options{
		MaxAge:   cfg.Journal.MaxAge,
		MaxBytes: cfg.Journal.MaxBytes,
		Logger:   log.With("monitor", "journal"),
	})
	if err != nil {
		sink.Write(logsink.Err, "", err.Error())
		return err
	}
	defer j.Close()

	w, err := wire(cfg, nosyslog, j, sink, log)
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
		StartEvents:      startEvents(cfg, j),
		Ready:            w.ready,
		Alive:            w.alive,
		WatchdogInterval: w.watchdog,
		Stopping:         w.stopping,
		FailoverEnabled:  cfg.Failover.Enable,
	})
	w.agent = ag

	ctl := &agent.Control{
		Path:     cfg.Journal.Socket,
		J:        j,
		Status:   func() any { return buildStatus(cfg, j, w.names, true) },
		Failover: ag.FailoverCommand,
		History:  w.history.Report,
		Log:      log,
	}
	ln, err := ctl.Listen()
	if err != nil {
		sink.Write(logsink.Err, "", err.Error())
		return err
	}
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- ctl.Serve(ctlCtx, ln) }()

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
