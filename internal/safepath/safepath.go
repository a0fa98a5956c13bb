// Package safepath checks that a path cannot be changed by another user,
// the way sshd's StrictModes does: imon runs as root, runs the action script
// as root and serves its control socket and journal as root, so a file or
// directory on their way that another user could replace is a way to root.
//
// # Basics
//
// A path is walked one component at a time from "/", each opened with
// O_PATH|O_NOFOLLOW relative to the directory before it and checked through
// fstat of that open descriptor, so that what is checked is what is reached:
//
//   - every directory on the way is owned by root or by the user imon runs
//     as, and not writable by group or others, unless it has the sticky bit
//     (like /tmp): there other users cannot remove or rename what they do not
//     own, and the component below it is checked in turn;
//   - a symbolic link on the way is followed (at most [MaxSymlinks]) only
//     when owned by root or imon's user, and its target is walked the same
//     way, so a link cannot lead somewhere unchecked;
//   - [Open] returns the last component open (O_PATH), with its stat, for
//     the caller's own checks of the file itself; [CheckDir] checks a
//     directory in which imon creates files.
//
// # Caveats
//
// Write access granted by an ACL shows in the group bits (the ACL mask), so
// it is refused too. A process that opened a file for writing while its mode
// allowed it keeps that descriptor after a chmod: no path check can see it.
package safepath

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxSymlinks bounds the symbolic links followed in one walk (the kernel's
// own limit is 40).
const MaxSymlinks = 40

// Trusted reports whether a file owned by uid may be trusted: root or the
// user imon runs as.
func Trusted(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// UnsafeError says which component of a path another user could change.
type UnsafeError struct {
	// Path is the component (as resolved so far) that fails the check.
	Path string
	// Why says what is wrong with it, e.g. "owned by uid 4242, not root".
	Why string
	// Fix is a command that repairs it ("" when there is none to suggest).
	Fix string
}

func (e *UnsafeError) Error() string {
	s := e.Path + " " + e.Why
	if e.Fix != "" {
		s += ": run " + e.Fix
	}
	return s
}

// walker resolves a path component by component.
type walker struct {
	links int
}

// Open walks path, checking every directory on the way and every symbolic
// link followed, and returns its last component opened with
// O_PATH|O_NOFOLLOW (a regular file, a directory, or anything else: the
// caller checks the type) together with its stat. It does not check the
// last component's own owner or mode.
func Open(path string) (*os.File, *unix.Stat_t, error) {
	f, st, _, err := open(path, false)
	return f, st, err
}

// CheckDir checks that dir, a directory in which imon creates files (its
// journal, its control socket), is safe: every existing directory of it
// passes the walk's check, and dir itself (or, when it does not exist yet,
// the deepest existing directory, where imon will create the rest) is not
// writable by group or others at all, not even with the sticky bit, since
// another user could create the file there first.
func CheckDir(dir string) error {
	f, st, missing, err := open(dir, true)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // O_PATH
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &UnsafeError{Path: f.Name(), Why: "is not a directory"}
	}
	if perm := st.Mode & 0o7777; perm&0o022 != 0 {
		why := fmt.Sprintf("is writable by group/others (mode %04o)", perm)
		if missing != "" {
			why += ", so another user could create " + missing + " first"
		} else {
			why += ", so another user could create or replace files in it"
		}
		return &UnsafeError{Path: f.Name(), Why: why, Fix: "chmod go-w " + f.Name() + ", or use a directory only root can write"}
	}
	return nil
}

// open is Open; with allowMissing a missing component ends the walk at the
// deepest existing directory, which is returned along with the first
// missing component's path.
func open(path string, allowMissing bool) (*os.File, *unix.Stat_t, string, error) {
	if !filepath.IsAbs(path) {
		return nil, nil, "", fmt.Errorf("%q is not an absolute path", path)
	}
	if strings.ContainsRune(path, 0) {
		return nil, nil, "", fmt.Errorf("%q holds a NUL byte", path)
	}
	var w walker
	dir, dst, err := w.root()
	if err != nil {
		return nil, nil, "", err
	}
	cur := "/"
	todo := split(path)
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		next := filepath.Join(cur, name)
		fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if allowMissing && errors.Is(err, unix.ENOENT) {
				return os.NewFile(uintptr(dir), cur), dst, next, nil
			}
			unix.Close(dir)
			return nil, nil, "", &fs.PathError{Op: "open", Path: next, Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			unix.Close(dir)
			return nil, nil, "", &fs.PathError{Op: "stat", Path: next, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := w.link(fd, next, &st)
			unix.Close(fd)
			if err != nil {
				unix.Close(dir)
				return nil, nil, "", err
			}
			todo = append(split(target), todo...)
			if filepath.IsAbs(target) {
				unix.Close(dir)
				if dir, dst, err = w.root(); err != nil {
					return nil, nil, "", err
				}
				cur = "/"
			}
			continue
		case unix.S_IFDIR:
			if err := checkDir(next, &st); err != nil {
				unix.Close(fd)
				unix.Close(dir)
				return nil, nil, "", err
			}
			unix.Close(dir)
			dir, dst, cur = fd, &st, next
			continue
		}
		// Not a directory: it must be the last component.
		if len(todo) > 0 {
			unix.Close(fd)
			unix.Close(dir)
			return nil, nil, "", &fs.PathError{Op: "open", Path: next, Err: unix.ENOTDIR}
		}
		unix.Close(dir)
		return os.NewFile(uintptr(fd), next), &st, "", nil
	}
	return os.NewFile(uintptr(dir), cur), dst, "", nil
}

// root opens and checks "/".
func (w *walker) root() (int, *unix.Stat_t, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, nil, &fs.PathError{Op: "stat", Path: "/", Err: err}
	}
	if err := checkDir("/", &st); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, &st, nil
}

// link checks the symbolic link open at fd and returns its target.
func (w *walker) link(fd int, path string, st *unix.Stat_t) (string, error) {
	if !Trusted(st.Uid) {
		return "", &UnsafeError{Path: path, Why: fmt.Sprintf("is a symbolic link owned by uid %d, not root", st.Uid),
			Fix: "chown -h root " + path}
	}
	w.links++
	if w.links > MaxSymlinks {
		return "", &fs.PathError{Op: "open", Path: path, Err: unix.ELOOP}
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: path, Err: err}
	}
	if n == 0 || n >= len(buf) {
		return "", &fs.PathError{Op: "readlink", Path: path, Err: unix.ENAMETOOLONG}
	}
	return string(buf[:n]), nil
}

// checkDir checks one directory on the way.
func checkDir(path string, st *unix.Stat_t) error {
	if !Trusted(st.Uid) {
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is a directory owned by uid %d, not root, so that user could replace what is in it", st.Uid),
			Fix: "chown root " + path}
	}
	perm := st.Mode & 0o7777
	if perm&0o022 != 0 && perm&unix.S_ISVTX == 0 {
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is a directory writable by group/others (mode %04o), so they could replace what is in it", perm),
			Fix: "chmod go-w " + path}
	}
	return nil
}

// split returns path's components ("" and "." dropped).
func split(path string) []string {
	var out []string
	for c := range strings.SplitSeq(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// OpenExecutable opens the program at path for imon to run as root, after
// [Open]'s walk: it must be a regular file, executable, owned by root or
// imon's user and not writable by group or others. The returned file is
// open with O_PATH; running it through /proc/self/fd runs exactly the file
// checked. A component that does not exist is an error wrapping
// fs.ErrNotExist; a file or directory another user could change is an
// [*UnsafeError].
func OpenExecutable(path string) (*os.File, error) {
	return openExecutable(path, 0)
}

// MaxInterpreters bounds the #! interpreters checked behind a script (the
// kernel runs at most 4 nested ones).
const MaxInterpreters = 4

// CheckExecutable checks the stat of a program that runs as root: a
// regular, executable file owned by root (or imon's user) and not writable
// by group or others. path only names it in the error.
func CheckExecutable(path string, st *unix.Stat_t) error {
	perm := st.Mode & 0o7777
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%s is not a regular file", path)
	case perm&0o111 == 0:
		return fmt.Errorf("%s is not executable: run chmod +x %s", path, path)
	case !Trusted(st.Uid):
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is owned by uid %d, not root, and runs as root", st.Uid), Fix: "chown root " + path}
	case perm&0o022 != 0:
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is writable by group/others (mode %04o) and runs as root", perm), Fix: "chmod go-w " + path}
	}
	return nil
}

// openExecutable is OpenExecutable of the program an interpreter chain has
// reached at depth: a #! script's interpreter runs as root too, so it is
// checked the same way (a root-owned script naming an interpreter another
// user may replace would run that user's code as root).
func openExecutable(path string, depth int) (*os.File, error) {
	f, st, err := Open(path)
	if err != nil {
		return nil, err
	}
	err = CheckExecutable(path, st)
	if err == nil {
		err = checkInterpreter(f, path, depth)
	}
	if err != nil {
		f.Close() //nolint:errcheck // O_PATH
		return nil, err
	}
	return f, nil
}

// checkInterpreter checks the interpreter named by the #! line of the file
// open at f (O_PATH), if any. The kernel reads the first 256 bytes
// (BINPRM_BUF_SIZE) and resolves a relative interpreter from the working
// directory, which is "/" for the action script.
func checkInterpreter(f *os.File, path string, depth int) error {
	r, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil // no /proc: the script itself was checked
	}
	defer r.Close() //nolint:errcheck // read-only
	var buf [256]byte
	n, _ := io.ReadFull(r, buf[:])
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return nil
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return nil // the kernel refuses to run it
	}
	interp := fields[0]
	if !filepath.IsAbs(interp) {
		interp = filepath.Join("/", interp)
	}
	if depth+1 > MaxInterpreters {
		return fmt.Errorf("%s: more than %d interpreters nested", path, MaxInterpreters)
	}
	g, err := openExecutable(interp, depth+1)
	if err != nil {
		return fmt.Errorf("%s: interpreter %s: %v", path, interp, err)
	}
	g.Close() //nolint:errcheck // O_PATH
	return nil
}
