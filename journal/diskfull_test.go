package journal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"imon/event"
	"imon/internal/nettest"
	"imon/journal"
	"imon/journal/journaltest"
)

// fillUntilFull appends batches of 50 events until an append fails, and
// returns that error (nil if maxBatches were all accepted).
func fillUntilFull(j *journal.Journal, maxBatches int) error {
	for b := range maxBatches {
		evs := make([]event.Event, 50)
		for i := range evs {
			evs[i] = sampleEvent(b*50 + i)
		}
		if _, err := j.Append(context.Background(), evs...); err != nil {
			return err
		}
	}
	return nil
}

func TestDiskFullMaxFileBytes(t *testing.T) {
	j := journaltest.Open(t, journal.Options{MaxFileBytes: 1 << 20})
	err := fillUntilFull(j, 1000)
	if !errors.Is(err, journal.ErrNoSpace) || !errors.Is(err, berrors.ErrMaxSizeReached) || !strings.Contains(err.Error(), j.Path()) {
		t.Fatalf("append to a full journal = %v, want ErrNoSpace naming the file", err)
	}
	t.Logf("full: %v", err)
	full := j.LastSeq()

	// Concurrent callers of the failing batches all get the error (each
	// appends as much as the append that failed: it cannot fit alone).
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			evs := make([]event.Event, 50)
			for k := range evs {
				evs[k] = sampleEvent(i)
			}
			_, err := j.Append(context.Background(), evs...)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, journal.ErrNoSpace) {
			t.Errorf("concurrent append to a full journal = %v", err)
		}
	}
	if j.LastSeq() != full {
		t.Fatalf("LastSeq moved from %d to %d though every append failed", full, j.LastSeq())
	}

	// Space returns: journaling resumes, gap-free.
	if err := journal.SetMaxFileBytes(j, 8<<20); err != nil {
		t.Fatal(err)
	}
	ev := mustAppend(t, j, sampleEvent(1))
	if ev[0].Seq != full+1 {
		t.Fatalf("first append after space returned: seq %d, want %d", ev[0].Seq, full+1)
	}
	if err := j.SyncCursor(context.Background(), "c", ev[0].Seq); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullTmpfs fills a real (tiny tmpfs) file system: ENOSPC. The
// scenario runs in a child process in its own mount namespace, so the
// mount never shows outside it and vanishes with it.
func TestDiskFullTmpfs(t *testing.T) {
	nettest.NeedRoot(t, "file ownership and modes")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envTmpfsChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		if strings.Contains(string(out), "mount tmpfs:") {
			nettest.Unavailable(t, "cannot mount a tmpfs here")
		}
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(string(out), "\nok\n") {
		t.Fatal("child did not report ok")
	}
}

// tmpfsChild is TestDiskFullTmpfs's child process (in a private mount
// namespace): journal on a 1 MiB tmpfs beside a filler file, append until
// ENOSPC, delete the filler, append again.
func tmpfsChild() int {
	fail := func(format string, args ...any) int {
		fmt.Printf(format+"\n", args...)
		return 1
	}
	dir, err := os.MkdirTemp("", "imon-journal-tmpfs-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.Remove(dir)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		return fail("mount tmpfs: %v", err)
	}
	defer syscall.Unmount(dir, 0)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 256<<10), 0o600); err != nil {
		return fail("filler: %v", err)
	}
	path := filepath.Join(dir, "j.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		return fail("open: %v", err)
	}
	err = fillUntilFull(j, 1000)
	if !errors.Is(err, journal.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		return fail("append on a full disk = %v, want ErrNoSpace and ENOSPC", err)
	}
	fmt.Printf("full at seq %d: %v\n", j.LastSeq(), err)
	full := j.LastSeq()
	if _, err := j.Append(context.Background(), sampleEvent(1)); err == nil {
		fmt.Println("note: a single small event still fitted")
		full++
	}
	if err := os.Remove(filler); err != nil {
		return fail("remove filler: %v", err)
	}
	ev, err := j.Append(context.Background(), sampleEvent(2))
	if err != nil || ev[0].Seq != full+1 {
		return fail("append after space returned = %v, %v; want seq %d", ev, err, full+1)
	}
	if err := j.Close(); err != nil {
		return fail("close: %v", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fail("bbolt open: %v", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	db.Close()
	if err != nil {
		return fail("bbolt check: %v", err)
	}
	j, err = journal.Open(path, journal.Options{})
	if err != nil || j.Recovered() != "" || j.LastSeq() != full+1 {
		return fail("reopen: %v, recovered %q, last %d", err, j.Recovered(), j.LastSeq())
	}
	evs, err := j.Read(1, 0)
	if err != nil || len(evs) != int(full+1) {
		return fail("read back: %d events, %v", len(evs), err)
	}
	j.Close()
	fmt.Println("ok")
	return 0
}
