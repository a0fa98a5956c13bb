package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

// CheckScript checks an action script, which imon runs as root: it must be
// an absolute path to an existing regular file, executable, owned by root
// (or the user running imon) and not writable by group or others.
func CheckScript(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("action script %q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("action script %s does not exist", path)
	case err != nil:
		return fmt.Errorf("action script: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("action script %s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0 || syscall.Access(path, 1 /* X_OK */) != nil:
		return fmt.Errorf("action script %s is not executable: run chmod +x %s", path, path)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("action script %s is writable by group/others (mode %04o) and runs as root: run chmod go-w %s",
			path, fi.Mode().Perm(), path)
	}
	if uid, ok := trustedOwner(fi); !ok {
		return fmt.Errorf("action script %s is owned by uid %d, not root, and runs as root: run chown root %s", path, uid, path)
	}
	return nil
}

// CheckReadable checks that path is a regular file imon can read.
func CheckReadable(path string) error {
	f, err := os.Open(path)
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
	return nil
}

// CheckSecretFile checks a file holding a secret (mqtt.password-file): it
// must be readable by imon and neither readable nor writable by others.
func CheckSecretFile(path string) error {
	if err := CheckReadable(path); err != nil {
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
