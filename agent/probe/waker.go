package probe

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waker is the engine loop's timer: one arming at a time, its expiries
// delivered on c (buffered, so an expiry is never lost and never blocks).
//
// It is a timerfd read through the Go netpoller, not a time.Timer. A
// runtime timer costs every tick two or three wakeups more than the one it
// needs: the runtime's sysmon thread sleeps until the next runtime timer
// and wakes with it, then naps 10 ms before it can sleep again; and the
// netpoller rounds its sleep down to whole milliseconds, so the thread
// that waits for the timer wakes up to a millisecond early and sleeps
// once more. A timerfd's expiry is a file becoming readable: the waiting
// thread wakes once, at the nanosecond, and sysmon is not woken (it sleeps
// until the next runtime timer, none of which the engine arms). Measured
// with all four monitors at interval 1 (BenchmarkWakeups, docs/bench.md,
// 2026-12-06, quiet machine): the agent's voluntary context switches went
// from 38 a second (24 of them sysmon's) to 21 (12), and those of updown
// alone from 18.6 to 6.3. Where a timerfd cannot be created, the waker
// falls back to a runtime timer.
//
// A stale expiry can reach c after a reset (the reader took it just before
// the reset): the loop checks the time it was armed for.
type waker struct {
	c chan struct{}

	// timerfd
	fd   int
	f    *os.File
	rc   syscall.RawConn
	done chan struct{} // closed when the reader ends

	// fallback (f is nil then)
	t *time.Timer
}

func newWaker() *waker {
	w := &waker{c: make(chan struct{}, 1)}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err == nil {
		// A non-blocking descriptor: os.NewFile puts it in the netpoller.
		f := os.NewFile(uintptr(fd), "probe-engine-timerfd")
		if rc, err := f.SyscallConn(); err == nil {
			w.fd, w.f, w.rc, w.done = fd, f, rc, make(chan struct{})
			go w.read()
			return w
		}
		_ = f.Close()
	}
	w.t = time.AfterFunc(time.Hour, w.fire)
	w.t.Stop()
	return w
}

// read delivers the timerfd's expiries until the file is closed. The
// read itself is a raw system call in the netpoller's callback: an
// ordinary one (os.File.Read) enters the scheduler's syscall state, which
// wakes sysmon from its sleep, and sysmon then naps in 20 µs steps for as
// long as the tick's work runs.
func (w *waker) read() {
	defer close(w.done)
	var b [8]byte
	for {
		var errno syscall.Errno
		err := w.rc.Read(func(fd uintptr) bool {
			_, _, errno = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			return errno != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		w.fire()
		if errno != 0 {
			return // cannot happen; reset falls back to a runtime timer
		}
	}
}

func (w *waker) fire() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// reset arms the waker to fire once after d (at least a microsecond),
// replacing the previous arming, and drops an expiry not taken yet.
func (w *waker) reset(d time.Duration) {
	d = max(d, time.Microsecond)
	select {
	case <-w.c:
	default:
	}
	if w.t != nil {
		w.t.Reset(d)
		return
	}
	select {
	case <-w.done: // the reader ended on an error
		w.fallback(d)
		return
	default:
	}
	// A raw system call, like the engine's socket calls: it never blocks,
	// and an ordinary one would wake sysmon (read).
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	if _, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(w.fd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		// Cannot happen with a valid descriptor and value; never leave
		// the loop without a wakeup.
		w.fallback(d)
	}
}

// fallback replaces the timerfd with a runtime timer armed for d.
func (w *waker) fallback(d time.Duration) {
	w.stopReader()
	w.t = time.AfterFunc(d, w.fire)
}

// stopReader closes the timerfd and waits for its reader to end.
func (w *waker) stopReader() {
	_ = w.f.Close()
	<-w.done
	w.f = nil
}

// close stops the waker and waits for its reader.
func (w *waker) close() {
	if w.t != nil {
		w.t.Stop()
	}
	if w.f != nil {
		w.stopReader()
	}
}
