package agent_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imon/agent"
)

// TestControlListenKeepsOtherFiles: journal.socket naming an existing file
// that is not a socket (the journal, the config) refuses the start and
// keeps the file; a stale socket left by a killed agent is replaced.
func TestControlListenKeepsOtherFiles(t *testing.T) {
	dir := t.TempDir()

	precious := filepath.Join(dir, "imon-main")
	if err := os.WriteFile(precious, []byte(`{"global": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &agent.Control{Path: precious}
	if ln, err := c.Listen(); err == nil {
		ln.Close()
		t.Fatal("Listen on a regular file succeeded")
	} else if msg := err.Error(); !strings.Contains(msg, precious) || !strings.Contains(msg, "journal.socket") || !strings.Contains(msg, "a regular file, not a socket") {
		t.Errorf("error %q, want the path, the key and why", msg)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != `{"global": {}}` {
		t.Errorf("the file is %q, %v after the refused Listen: want it untouched", b, err)
	}

	sub := filepath.Join(dir, "adir")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if ln, err := (&agent.Control{Path: sub}).Listen(); err == nil {
		ln.Close()
		t.Fatal("Listen on a directory succeeded")
	} else if !strings.Contains(err.Error(), "a directory") {
		t.Errorf("error %q, want it to say a directory", err)
	}

	// A stale socket: bound, then abandoned without removal.
	stale := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	ln, err := (&agent.Control{Path: stale}).Listen()
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()
}
