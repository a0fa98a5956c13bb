package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"imon/internal/safepath"
)

// Defaults of [Exec] and [Consumer].
const (
	// DefaultTimeout bounds one script run (config global "action-timeout").
	DefaultTimeout = 30 * time.Second
	// DefaultGrace is how long a script has between SIGTERM and SIGKILL, and
	// how long background processes may keep its output open after it exited.
	DefaultGrace = 3 * time.Second
	// DefaultOutputTail is how many bytes of the script's combined output are
	// kept (the last ones); the rest is only counted.
	DefaultOutputTail = 4096
)

// Command is one run of the action script.
type Command struct {
	// Argv is the script path and its arguments (see [Args]).
	Argv []string
	// Env is the complete environment (see [Env]).
	Env []string
	// Timeout bounds the run; 0 means [DefaultTimeout].
	Timeout time.Duration
}

// Result is how a run ended.
type Result struct {
	// Exit is the exit status, or -1 when the script did not exit by itself
	// (killed by a signal, or never started).
	Exit int
	// Signal names the signal that ended the script ("" if none).
	Signal string
	// TimedOut is set when the run hit its timeout and the process group was
	// killed.
	TimedOut bool
	// Canceled is set when the run was stopped because its context ended
	// (agent shutdown) and the process group was killed.
	Canceled bool
	// Leftovers is set when processes the script left behind still held
	// its output after the grace period: its process group was killed, and
	// so was every other process holding the output (one that moved to
	// its own session or group).
	Leftovers bool
	// Killed lists the processes outside the script's process group that
	// held its output and were killed.
	Killed []int
	// Escaped lists processes still holding the output after they were
	// sent SIGKILL (e.g. stuck in the kernel): they keep running.
	Escaped []int
	// LeftoverErr is set when the processes holding the output could not
	// be searched for: processes outside the group may have escaped.
	LeftoverErr error
	// OutputHeld is set when the output was still held open after the
	// kills: some process escaped, listed in Escaped or not found at all.
	OutputHeld bool
	// Refused is set when the script failed its safety check and was not
	// run (Err says why).
	Refused bool
	// Unprotected says why the script could not be frozen for the run (no
	// read lease on its file system); "" when it was.
	Unprotected string
	// Err is set when the script was refused by the check, or could not be
	// started or waited for.
	Err error
	// Output is the tail of the combined stdout and stderr.
	Output string
	// Dropped counts output bytes before Output that were not kept.
	Dropped int64
	// Duration is the wall time of the run.
	Duration time.Duration
}

// OK reports whether the script ran and exited with status 0 in time.
func (r Result) OK() bool { return r.Err == nil && !r.TimedOut && !r.Canceled && r.Exit == 0 }

// Reason says in a few words why a run was not OK ("" when it was).
func (r Result) Reason() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.Canceled:
		return "stopped by agent shutdown, process group killed"
	case r.TimedOut:
		return fmt.Sprintf("timed out after %s, process group killed", r.Duration.Round(time.Millisecond))
	case r.Signal != "":
		return "killed by signal: " + r.Signal
	case r.Exit != 0:
		return fmt.Sprintf("exit status %d", r.Exit)
	}
	return ""
}

// Runner runs the action script. It is the seam that lets tests replace the
// real [Exec] with a fake.
type Runner interface {
	// Run executes cmd and returns how it ended. It returns once the script
	// and every process holding its output are gone (or reported as
	// escaped), at most about Timeout plus four times the grace period
	// after it was called (SIGTERM to SIGKILL, leftovers, their kill, the
	// output closing). When ctx ends first the run is stopped as on
	// timeout.
	Run(ctx context.Context, cmd Command) Result
}

// Exec is the real [Runner]: it executes the script directly (no shell) in a
// new process group, stdin from /dev/null, working directory "/".
type Exec struct {
	// Grace is the time between SIGTERM and SIGKILL on timeout; 0 means
	// [DefaultGrace].
	Grace time.Duration
	// OutputTail is how many bytes of output are kept; 0 means
	// [DefaultOutputTail].
	OutputTail int
}

var _ Runner = Exec{}

// Run implements [Runner].
func (e Exec) Run(ctx context.Context, c Command) Result {
	grace := e.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	tailSize := e.OutputTail
	if tailSize <= 0 {
		tailSize = DefaultOutputTail
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if len(c.Argv) == 0 {
		return Result{Exit: -1, Err: errors.New("no action script")}
	}
	if ctx.Err() != nil {
		return Result{Exit: -1, Canceled: true, Err: fmt.Errorf("start %s: %w", c.Argv[0], ctx.Err())}
	}

	// The script runs as root: check it and every directory on its path
	// now, before each run (a check at start is not enough: modes and
	// owners change), and run the very file checked.
	script, err := safepath.OpenExecutable(c.Argv[0])
	if err != nil {
		return Result{Exit: -1, Refused: true, Err: fmt.Errorf("refused to run the action script: %w", err)}
	}
	defer script.Close() //nolint:errcheck // O_PATH
	if afterCheck != nil {
		afterCheck(c.Argv[0])
	}
	// Freeze it for the run: no rewrite between the check and the
	// interpreter's open, nor while it runs (lease.go).
	held, note, err := holdScript(script, c.Argv[0])
	if err != nil {
		return Result{Exit: -1, Refused: true, Err: fmt.Errorf("refused to run the action script: %w", err)}
	}
	defer held.Close() //nolint:errcheck // read-only; closing releases the lease

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Our own pipe (not exec's copying goroutines) so that we, not Wait,
	// decide how long background processes may keep the output open.
	pr, pw, err := os.Pipe()
	if err != nil {
		return Result{Exit: -1, Err: fmt.Errorf("output pipe: %w", err)}
	}
	defer pr.Close()
	pipeID, pipeErr := pipeInode(pw)
	cmd := exec.CommandContext(runCtx, c.Argv[0], c.Argv[1:]...)
	if !isInterpreted(script) {
		// A binary runs from the open descriptor: a rename over the path
		// after the check changes nothing. A #! script cannot (the kernel
		// would hand its interpreter the descriptor's path, which becomes
		// $0, and $0 is the configured path by contract): its interpreter
		// opens the path, which the check above made sure only root can
		// change.
		cmd.Path = "/proc/self/fd/3"
		cmd.ExtraFiles = []*os.File{script}
	}
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // never inherit the agent's environment
	}
	cmd.Dir = "/"
	cmd.Stdout = pw // the same pipe for both: output stays in order
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On timeout (or ctx end): SIGTERM to the whole group; exec kills the
	// leader with SIGKILL after WaitDelay, and we kill the rest below.
	var stopped atomic.Bool
	cmd.Cancel = func() error {
		stopped.Store(true)
		return killGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = grace

	start := time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return Result{Exit: -1, Err: fmt.Errorf("start %s: %w", c.Argv[0], unwrapExec(err)),
			Canceled: ctx.Err() != nil, Duration: time.Since(start)}
	}
	pgid := cmd.Process.Pid
	out := &tailBuffer{max: tailSize}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, pr) // ends at EOF, or when pr is closed below
	}()

	werr := cmd.Wait()
	r := Result{Exit: -1, Unprotected: note}
	if stopped.Load() {
		r.Canceled = ctx.Err() != nil
		r.TimedOut = !r.Canceled
		// A grandchild that ignored SIGTERM goes now.
		_ = killGroup(pgid, syscall.SIGKILL)
	}
	// The script is gone; processes it left in its group may keep the
	// output open for at most the grace period.
	wait := time.NewTimer(grace)
	select {
	case <-copied:
	case <-wait.C:
		r.Leftovers = true
		_ = killGroup(pgid, syscall.SIGKILL)
		// Processes that left the group (setsid, setpgid) but still hold
		// the output are found by the pipe they hold.
		if pipeErr != nil {
			r.LeftoverErr = pipeErr
		} else {
			r.Killed, r.Escaped, r.LeftoverErr = killHolders(pipeID, pgid, grace)
		}
		// The output reaching EOF proves every holder gone, also those
		// /proc did not show.
		held := time.NewTimer(grace)
		select {
		case <-copied:
		case <-held.C:
			r.OutputHeld = true
		}
		held.Stop()
		pr.Close() // also when a holder escaped
		<-copied
	}
	wait.Stop()
	r.Duration = time.Since(start)

	if ps := cmd.ProcessState; ps != nil {
		r.Exit = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Signal = ws.Signal().String()
		}
	}
	var exitErr *exec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) && !stopped.Load() {
		r.Err = fmt.Errorf("wait for %s: %w", c.Argv[0], werr)
	}
	r.Output, r.Dropped = out.tail()
	return r
}

// afterCheck, when set (by tests), runs between the script's check and its
// start.
var afterCheck func(path string)

// isInterpreted reports whether the file open at f (O_PATH) starts with
// "#!". When it cannot be read (no /proc), it is treated as a script: it
// then runs by its path, which was checked.
func isInterpreted(f *os.File) bool {
	r, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return true
	}
	defer r.Close() //nolint:errcheck // read-only
	var magic [2]byte
	n, _ := io.ReadFull(r, magic[:])
	return n < 2 || string(magic[:]) == "#!"
}

// unwrapExec drops the "fork/exec /proc/self/fd/3:" of exec's error: the
// caller names the script.
func unwrapExec(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "fork/exec" {
		return pe.Err
	}
	return err
}

// killGroup sends sig to the process group pgid; a group that is already
// gone is not an error.
func killGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	if err != nil {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it and counts the rest.
type tailBuffer struct {
	max int

	mu    sync.Mutex // guards the following
	buf   []byte
	total int64
}

// Write implements io.Writer; it never fails.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.max { // compact now and then, not on every write
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

// tail returns the kept output (at most max bytes, starting at a line
// boundary when anything was dropped) and the number of bytes dropped.
func (b *tailBuffer) tail() (string, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.buf
	if len(kept) > b.max {
		kept = kept[len(kept)-b.max:]
	}
	if int64(len(kept)) < b.total { // cut the partial first line
		if i := strings.IndexByte(string(kept), '\n'); i >= 0 && i < len(kept)-1 {
			kept = kept[i+1:]
		}
	}
	return string(kept), b.total - int64(len(kept))
}
