// Package nettest holds the helpers that imon's tests share, in one copy:
// the root check, entering a network namespace, a buffer that a writer
// goroutine and the test may share. The network-namespace testbed and the
// end-to-end harness (imon/internal/testbed, imon/internal/harness) build
// on it. It is for tests only: internal/deptest keeps production packages
// from importing it.
package nettest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/vishvananda/netns"
)

// NeedRoot skips the test when the process is not root (why says what
// for), or fails it when the environment variable CI is "true": a CI run
// must not turn a missing prerequisite into a silent skip.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root (%s); CI=true forbids skipping", why)
	}
	t.Skipf("needs root (%s)", why)
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
