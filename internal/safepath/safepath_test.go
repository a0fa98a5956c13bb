package safepath_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imon/internal/nettest"
	"imon/internal/safepath"
)

// otherUID is a user the tests make own files; it needs no passwd entry.
const otherUID = 4242

// tempDir returns a directory that is safe by the walk's rules (t.TempDir's
// parents are root's 0700 directories under the sticky /tmp).
func tempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if _, _, err := safepath.Open(d); err != nil {
		t.Skipf("the test's temporary directory is not safe itself: %v", err)
	}
	return d
}

func mkdir(t *testing.T, path string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}

func writeExec(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	writeFile(t, path, "#!/bin/sh\necho hi\n", mode)
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestOpenExecutable(t *testing.T) {
	nettest.NeedRoot(t, "to chown files to another user")
	base := tempDir(t)
	type setup func(t *testing.T, dir string) string // returns the script path
	tests := []struct {
		name  string
		setup setup
		want  string // "" = OK, else a substring of the error
	}{
		{"ok", func(t *testing.T, d string) string {
			p := filepath.Join(d, "act.sh")
			writeExec(t, p, 0o755)
			return p
		}, ""},
		{"dir-owned-by-user", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "user")
			mkdir(t, sub, 0o755, otherUID)
			p := filepath.Join(sub, "act.sh")
			writeExec(t, p, 0o755)
			return p
		}, "is a directory owned by uid 4242"},
		{"dir-group-writable", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "gw")
			mkdir(t, sub, 0o775, -1)
			p := filepath.Join(sub, "act.sh")
			writeExec(t, p, 0o755)
			return p
		}, "writable by group/others (mode 0775)"},
		{"grandparent-world-writable", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "ww")
			mkdir(t, sub, 0o777, -1)
			mkdir(t, filepath.Join(sub, "x"), 0o755, -1)
			p := filepath.Join(sub, "x", "act.sh")
			writeExec(t, p, 0o755)
			return p
		}, "/ww is a directory writable by group/others (mode 0777)"},
		{"sticky-dir-root-component", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "sticky")
			mkdir(t, sub, os.ModeSticky|0o777, -1)
			p := filepath.Join(sub, "act.sh")
			writeExec(t, p, 0o755)
			return p
		}, ""},
		{"sticky-dir-user-component", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "sticky2")
			mkdir(t, sub, os.ModeSticky|0o777, -1)
			mkdir(t, filepath.Join(sub, "u"), 0o755, otherUID)
			p := filepath.Join(sub, "u", "act.sh")
			writeExec(t, p, 0o755)
			return p
		}, "owned by uid 4242"},
		{"file-owned-by-user", func(t *testing.T, d string) string {
			p := filepath.Join(d, "theirs.sh")
			writeExec(t, p, 0o755)
			if err := os.Chown(p, otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is owned by uid 4242, not root"},
		{"file-world-writable", func(t *testing.T, d string) string {
			p := filepath.Join(d, "ww.sh")
			writeExec(t, p, 0o777)
			return p
		}, "writable by group/others (mode 0777)"},
		{"not-executable", func(t *testing.T, d string) string {
			p := filepath.Join(d, "noexec.sh")
			writeExec(t, p, 0o644)
			return p
		}, "is not executable"},
		{"directory", func(t *testing.T, d string) string { return d }, "is not a regular file"},
		{"symlink-root-to-safe", func(t *testing.T, d string) string {
			p := filepath.Join(d, "real.sh")
			writeExec(t, p, 0o755)
			l := filepath.Join(d, "link.sh")
			if err := os.Symlink("real.sh", l); err != nil {
				t.Fatal(err)
			}
			return l
		}, ""},
		{"symlink-owned-by-user", func(t *testing.T, d string) string {
			p := filepath.Join(d, "real2.sh")
			writeExec(t, p, 0o755)
			sub := filepath.Join(d, "sticky3")
			mkdir(t, sub, os.ModeSticky|0o777, -1)
			l := filepath.Join(sub, "link.sh")
			if err := os.Symlink(p, l); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(l, otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			return l
		}, "is a symbolic link owned by uid 4242"},
		{"symlink-into-unsafe-dir", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "user2")
			mkdir(t, sub, 0o755, otherUID)
			p := filepath.Join(sub, "act.sh")
			writeExec(t, p, 0o755)
			l := filepath.Join(d, "link2.sh")
			if err := os.Symlink(p, l); err != nil {
				t.Fatal(err)
			}
			return l
		}, "user2 is a directory owned by uid 4242"},
		{"symlink-loop", func(t *testing.T, d string) string {
			l := filepath.Join(d, "loop")
			if err := os.Symlink("loop", l); err != nil {
				t.Fatal(err)
			}
			return l
		}, "too many levels of symbolic links"},
		{"interpreter-in-user-dir", func(t *testing.T, d string) string {
			// A root-owned script whose #! names an interpreter another user
			// can replace runs that user's code as root (seen before: the
			// check said OK and the replaced interpreter ran as uid 0).
			sub := filepath.Join(d, "uinterp")
			mkdir(t, sub, 0o755, otherUID)
			interp := filepath.Join(sub, "interp")
			writeExec(t, interp, 0o755)
			p := filepath.Join(d, "via-user-interp.sh")
			writeFile(t, p, "#!"+interp+" -e\necho hi\n", 0o755)
			return p
		}, "uinterp is a directory owned by uid 4242"},
		{"interpreter-world-writable", func(t *testing.T, d string) string {
			interp := filepath.Join(d, "ww-interp")
			writeExec(t, interp, 0o777)
			p := filepath.Join(d, "via-ww-interp.sh")
			writeFile(t, p, "#!  "+interp+"\n", 0o755)
			return p
		}, "ww-interp is writable by group/others (mode 0777)"},
		{"interpreter-nested-safe", func(t *testing.T, d string) string {
			interp := filepath.Join(d, "safe-interp")
			writeExec(t, interp, 0o755) // itself #!/bin/sh
			p := filepath.Join(d, "via-safe-interp.sh")
			writeFile(t, p, "#!"+interp+"\n", 0o755)
			return p
		}, ""},
		{"interpreter-loop", func(t *testing.T, d string) string {
			p := filepath.Join(d, "self.sh")
			writeFile(t, p, "#!"+p+"\n", 0o755)
			return p
		}, "interpreters nested"},
		{"dotdot", func(t *testing.T, d string) string {
			sub := filepath.Join(d, "dd")
			mkdir(t, sub, 0o755, -1)
			p := filepath.Join(d, "dd.sh")
			writeExec(t, p, 0o755)
			return sub + "/../dd.sh"
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.setup(t, base)
			f, err := safepath.OpenExecutable(p)
			if f != nil {
				f.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("OpenExecutable(%s) = %v, want OK", p, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("OpenExecutable(%s) = %v, want an error containing %q", p, err, tc.want)
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	d := tempDir(t)
	_, _, err := safepath.Open(filepath.Join(d, "nope", "x"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
	if _, _, err := safepath.Open("relative/path"); err == nil {
		t.Errorf("a relative path was accepted")
	}
}

func TestCheckDir(t *testing.T) {
	nettest.NeedRoot(t, "to chown files to another user")
	base := tempDir(t)
	sticky := filepath.Join(base, "sticky")
	mkdir(t, sticky, os.ModeSticky|0o777, -1)
	rootBelow := filepath.Join(sticky, "imon")
	mkdir(t, rootBelow, 0o755, -1)
	open := filepath.Join(base, "open")
	mkdir(t, open, 0o777, -1)
	theirs := filepath.Join(base, "theirs")
	mkdir(t, theirs, 0o755, otherUID)
	for _, tc := range []struct {
		dir, want string
	}{
		{base, ""},
		{rootBelow, ""},                       // a sticky directory on the way is fine
		{filepath.Join(rootBelow, "new"), ""}, // created by imon below a safe one
		{filepath.Join(base, "a", "b"), ""},
		{sticky, "is writable by group/others (mode 1777)"},
		{filepath.Join(sticky, "new"), "another user could create " + filepath.Join(sticky, "new") + " first"},
		{open, "writable by group/others (mode 0777)"},
		{filepath.Join(open, "sub"), "writable by group/others"},
		{theirs, "owned by uid 4242"},
		{filepath.Join(theirs, "sub"), "owned by uid 4242"},
		{"/proc/self/fdinfo", ""},
	} {
		err := safepath.CheckDir(tc.dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckDir(%s) = %v, want OK", tc.dir, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckDir(%s) = %v, want an error containing %q", tc.dir, err, tc.want)
		}
	}
}
