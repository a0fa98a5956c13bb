package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"imon/config"
	"imon/journal"
)

// TestOpenJournalFallback: a journal that cannot be opened is a degraded
// start on the fallback journal, said loudly; a journal locked by another
// agent is still refused.
func TestOpenJournalFallback(t *testing.T) {
	dir := t.TempDir()
	fallbackDirs = []string{filepath.Join(dir, "fallback")}
	log := slog.New(slog.DiscardHandler)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Global.Instance = "t"
	cfg.Journal.Path = filepath.Join(file, "sub", "t.db") // under a regular file: cannot be created
	j, fb, err := openJournal(cfg, log)
	if err != nil {
		t.Fatalf("degraded start refused: %v", err)
	}
	defer j.Close()
	if fb == nil || !strings.HasPrefix(j.Path(), fallbackDirs[0]+"/t-") || !strings.Contains(fb.Msg, "DEGRADED START") || !strings.Contains(fb.Msg, cfg.Journal.Path) {
		t.Fatalf("journal %s, fallback %+v", j.Path(), fb)
	}
	if ev := fb.event(cfg.Journal.Path, j.Path()); ev.Kind != "journal-fallback" || ev.Level != "error" {
		t.Errorf("start event %+v", ev)
	}

	// The fallback is locked by the journal above: as the configured
	// journal of a second agent, it is refused, not replaced.
	cfg2 := &config.Config{}
	cfg2.Global.Instance = "t2"
	cfg2.Journal.Path = j.Path()
	if _, _, err := openJournal(cfg2, log); !errors.Is(err, journal.ErrLocked) {
		t.Errorf("a locked journal: %v, want ErrLocked (no fallback)", err)
	}
}

func TestDiskFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("control socket: %w", &os.PathError{Op: "mkdir", Path: "/x", Err: syscall.EROFS}), true},
		{fmt.Errorf("x: %w", syscall.ENOSPC), true},
		{errors.New("control socket /x: another imon agent is running on it"), false},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, false},
	} {
		if got := diskFailure(tc.err); got != tc.want {
			t.Errorf("diskFailure(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestStopOnSignalReload: without a terminal, a SIGHUP with a bad config
// neither stops nor reloads; with a good one it stops for a reload, which
// a SIGTERM during the stop turns into a plain stop. With a terminal,
// SIGHUP stops without looking at the config.
func TestStopOnSignalReload(t *testing.T) {
	defer func(f func() bool) { hasTerminal = f }(hasTerminal)
	run := func(tty bool, checkErr error, sigs ...os.Signal) (stopped, reload bool, checks int) {
		hasTerminal = func() bool { return tty }
		rl := &reloader{path: "/etc/default/imon-x", check: func() error { checks++; return checkErr }}
		ch := make(chan os.Signal) // unbuffered: each send returns once stopOnSignal took it
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		ended := make(chan struct{})
		go func() { defer close(ended); stopOnSignal(ch, cancel, done, "", rl) }()
		for _, s := range sigs {
			ch <- s
		}
		close(done) // run returned: stopOnSignal ends, whatever it was doing
		<-ended
		return ctx.Err() != nil, rl.requested.Load(), checks
	}
	bad := errors.New("failover.failback-hold: want a number")
	if stopped, reload, checks := run(false, bad, syscall.SIGHUP); stopped || reload || checks != 1 {
		t.Errorf("SIGHUP, bad config: stopped %v, reload %v, %d checks; want neither, 1 check", stopped, reload, checks)
	}
	if stopped, reload, _ := run(false, nil, syscall.SIGHUP); !stopped || !reload {
		t.Errorf("SIGHUP, good config: stopped %v, reload %v; want a stop for a reload", stopped, reload)
	}
	if stopped, reload, _ := run(false, bad, syscall.SIGHUP, syscall.SIGTERM); !stopped || reload {
		t.Errorf("SIGHUP with a bad config, then SIGTERM: stopped %v, reload %v; want a plain stop", stopped, reload)
	}
	if stopped, reload, _ := run(false, nil, syscall.SIGHUP, syscall.SIGTERM); !stopped || reload {
		t.Errorf("SIGHUP, then SIGTERM during the stop: stopped %v, reload %v; want a plain stop", stopped, reload)
	}
	if stopped, reload, checks := run(true, nil, syscall.SIGHUP); !stopped || reload || checks != 0 {
		t.Errorf("SIGHUP with a terminal: stopped %v, reload %v, %d checks; want a stop, no check", stopped, reload, checks)
	}
}
