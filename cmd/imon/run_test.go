package main

import (
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
