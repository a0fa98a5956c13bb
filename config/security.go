package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"imon/internal/safepath"
)

// imon runs as root, runs the action script as root and takes its routes
// from the config file: a file another user can change is a way to root.

// trustedOwner reports whether a file owned by uid may be trusted: owned by
// root or by the user imon runs as.
func trustedOwner(fi fs.FileInfo) (uid uint32, ok bool) {
	st, isUnix := fi.Sys().(*syscall.Stat_t)
	if !isUnix {
		return 0, true
	}
	return st.Uid, st.Uid == 0 || int(st.Uid) == os.Geteuid()
}

// checkConfigFile refuses a config file that another user could change.
func checkConfigFile(path string, fi fs.FileInfo) error {
	if mode := fi.Mode().Perm(); mode&0o022 != 0 {
		return fmt.Errorf("config file is writable by group/others (mode %04o): run chmod go-w %s", mode, path)
	}
	if uid, ok := trustedOwner(fi); !ok {
		return fmt.Errorf("config file is owned by uid %d, not root: run chown root %s", uid, path)
	}
	return nil
}

// CheckScript checks an action script, which imon runs as root, like
// sshd's StrictModes: it must be an absolute path to an existing regular
// file, executable, owned by root (or the user running imon) and not
// writable by group or others, and so must every directory on its path
// (a sticky directory such as /tmp excepted) and every symbolic link
// followed: otherwise another user could replace it. The action runner
// checks again before every run.
func CheckScript(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("action script %q is not an absolute path", path)
	}
	f, err := safepath.OpenExecutable(path)
	var ue *safepath.UnsafeError
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("action script %s does not exist", path)
	case errors.As(err, &pe):
		return fmt.Errorf("action script %s: %w", path, err)
	case errors.As(err, &ue) && ue.Path != path:
		return fmt.Errorf("action script %s runs as root, but %w", path, err)
	case err != nil:
		return fmt.Errorf("action script %w", err)
	}
	defer f.Close() //nolint:errcheck // O_PATH
	// The execute bit is there; for a user other than root it must apply to
	// imon's user.
	if syscall.Access(path, 1 /* X_OK */) != nil {
		return fmt.Errorf("action script %s is not executable: run chmod +x %s", path, path)
	}
	return nil
}

// CheckRuntimeDir checks the directory that holds the journal or the control
// socket at path: another user who can write there could create the
// file first (a socket the CLI then talks to) or replace it. See
// [safepath.CheckDir].
func CheckRuntimeDir(path string) error {
	if !filepath.IsAbs(path) || strings.ContainsRune(path, 0) {
		return nil // reported by validate
	}
	if err := safepath.CheckDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%s is not safe: %w", path, err)
	}
	return nil
}

// MaxPasswordFileBytes and MaxCAFileBytes are the largest mqtt.password-file
// and mqtt.ca-file imon reads (the mqtt package reads them bounded by the
// same values before every connection attempt).
const (
	MaxPasswordFileBytes = 64 << 10
	MaxCAFileBytes       = 1 << 20
)

// CheckReadable checks that path is a regular file imon can read.
func CheckReadable(path string) error { return checkRegular(path, 0) }

// CheckCAFile checks mqtt.ca-file: a regular file imon can read, of at most
// [MaxCAFileBytes].
func CheckCAFile(path string) error { return checkRegular(path, MaxCAFileBytes) }

// checkRegular checks that path is a regular file imon can read, of at
// most limit bytes when limit > 0. O_NONBLOCK: opening a FIFO must not
// block the check until a writer comes.
func checkRegular(path string, limit int64) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s is not readable (permission denied)", path)
	case err != nil:
		return err
	}
	defer f.Close() //nolint:errcheck // read-only
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if limit > 0 && fi.Size() > limit {
		return fmt.Errorf("%s holds %d bytes, more than the %d imon reads", path, fi.Size(), limit)
	}
	return nil
}

// CheckSecretFile checks a file holding a secret (mqtt.password-file): it
// must be a regular file readable by imon, of at most
// [MaxPasswordFileBytes], and neither readable nor writable by others.
func CheckSecretFile(path string) error {
	if err := checkRegular(path, MaxPasswordFileBytes); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if mode := fi.Mode().Perm(); mode&0o006 != 0 {
		return fmt.Errorf("%s holds a secret but others may read or write it (mode %04o): run chmod o-rw %s", path, mode, path)
	}
	return nil
}
