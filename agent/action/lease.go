package action

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"imon/internal/safepath"
)

// holdScript freezes the checked script for the length of a run. It opens
// the file the check opened (script, O_PATH) for reading and takes a read
// lease on it (fcntl F_SETLEASE): while imon holds it, no process can open
// the file for writing or truncate it (such an open waits until the run
// ends, at most /proc/sys/fs/lease-break-time), and the lease cannot be
// taken at all while any process has it open for writing. Then it checks
// the file's mode and owner again, on the held file: a chmod between the
// check and the lease is caught here.
//
// This closes the window between the check and the interpreter's own open
// of a #! script (which runs by its path, so that $0 stays the configured
// path): without it, a script made writable by mistake at that moment could
// be rewritten by another user and run as root.
//
// On a file system without leases (EINVAL: NFS, some FUSE; or leases
// disabled in /proc/sys/fs/leases-enable) the run goes ahead without one,
// and holdScript says so in its note for the log.
func holdScript(script *os.File, path string) (held *os.File, note string, err error) {
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(script.Fd())), os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", fmt.Errorf("reopen the checked script: %w", err)
	}
	switch _, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_RDLCK); {
	case err == nil:
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		f.Close() //nolint:errcheck // read-only
		return nil, "", &safepath.UnsafeError{Path: path, Why: "is open for writing by another process and runs as root",
			Fix: "find the writer with fuser " + path}
	default:
		note = "no read lease on the action script (" + err.Error() + "): it is not protected from a rewrite while it runs"
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close() //nolint:errcheck // read-only
		return nil, "", fmt.Errorf("stat the checked script: %w", err)
	}
	if err := safepath.CheckExecutable(path, &st); err != nil {
		f.Close() //nolint:errcheck // read-only
		return nil, "", err
	}
	return f, note, nil
}
