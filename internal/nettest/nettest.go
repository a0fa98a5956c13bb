// Package nettest holds the helpers that imon's tests share, in one copy:
// the check for a missing prerequisite (Unavailable, NeedRoot, NeedCmd:
// skip, or fail under CI=true), entering a network namespace, a buffer
// that a writer goroutine and the test may share, the recording journal
// of a monitor's test (Recorder) and the agent's Emit of a consumer's test
// (Emitter), and what a test reads of a process (HasCap, TimerSlack). The
// network-namespace testbed and the end-to-end harness
// (imon/internal/testbed, imon/internal/harness) build on it. It is for tests only: internal/deptest keeps production packages
// from importing it.
package nettest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"
)

// Unavailable is the one way a test meets a missing prerequisite (root,
// a program, a kernel feature, a tool's ability): it skips the test with
// the message, or fails it when the environment variable CI is "true": a
// CI run never turns a missing prerequisite into a silent skip.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+"; CI=true forbids skipping", args...)
	}
	t.Skipf(format, args...)
}

// NeedRoot is Unavailable unless the process is root (why says what for).
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (%s)", why)
	}
}

// NeedCmd is Unavailable unless every named program is installed.
func NeedCmd(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		Unavailable(t, "%s not installed", strings.Join(missing, ", "))
	}
}

// Enter runs fn on an OS thread switched into the named network namespace,
// then switches the thread back and unlocks it (a thread that cannot switch
// back stays locked and dies with its goroutine). Sockets fn opens stay in
// the namespace and may be used from any goroutine afterwards. When the
// switch fails, fn does not run, so nothing is ever sent from the machine's
// own namespace. Switching back matters: a locked thread left in the
// namespace may be the process's main thread, which the runtime never
// ends, and which `ip netns pids` would then report as a process of the
// namespace (the testbed's cleanup kills those).
func Enter(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", name, err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Buffer is a bytes.Buffer that a writer goroutine (a logger, a child
// process's output) and the test may share. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Len is the number of bytes written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}
