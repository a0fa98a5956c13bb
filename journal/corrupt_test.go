package journal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"imon/event"
	"imon/journal"
)

// makeJournal writes a journal of n events at path and closes it.
func makeJournal(t *testing.T, path string, n int) {
	t.Helper()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 100 {
		evs := make([]event.Event, min(100, n-i))
		for k := range evs {
			evs[k] = sampleEvent(i + k)
		}
		mustAppend(t, j, evs...)
	}
	mustAppend(t, j, event.New("ddns", "ddns-ip-update", "", nil).WithState(map[string]string{"ip": "192.0.2.1"}))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// highWater returns the size bbolt's last transaction needs.
func highWater(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	_ = db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	return size
}

// rewriteBolt changes a journal file through bbolt directly.
func rewriteBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTextFileNotMovedAside: journal.path naming a text file (the config,
// the action script) by mistake: Open refuses, names the file, and leaves
// it where it is; nothing is moved aside.
func TestTextFileNotMovedAside(t *testing.T) {
	for name, content := range map[string]string{
		"config": "{\n  \"global\": {\"instance\": \"main\"},\n  \"journal\": {\"path\": \"/etc/default/imon-main\"}\n}\n",
		"script": "#!/bin/sh\necho \"$@\" >> /var/log/imon-action.log\n",
		"utf-8":  "naïve café — ünïcode\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "imon-main")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				j, err := journal.Open(path, journal.Options{ReadOnly: ro})
				if err == nil {
					j.Close()
					t.Fatalf("Open(ReadOnly %v) of a text file succeeded", ro)
				}
				if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "holds text") || !strings.Contains(msg, "journal.path") {
					t.Errorf("Open(ReadOnly %v): %q, want the path, that it is text, and the key", ro, msg)
				}
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != content {
				t.Errorf("file now %q (%v), want it untouched", b, err)
			}
			if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) > 0 {
				t.Errorf("moved aside as %v", m)
			}
		})
	}
}

// garbage returns n pseudo-random bytes.
func garbage(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 9))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestForeignFileRefused: a file at journal.path that is not recognisably
// a bbolt file (an SQLite database, random bytes, a journal whose meta
// pages are both gone) or a bbolt database without imon's buckets is
// another program's: Open refuses it, naming the file, read-only and
// read-write, moves nothing aside and changes nothing; CheckFile (imon
// check) says the same (issue 11.6: an SQLite file was taken over).
func TestForeignFileRefused(t *testing.T) {
	tests := map[string]func(t *testing.T, path string){
		"sqlite": func(t *testing.T, path string) {
			b := append([]byte("SQLite format 3\x00"), garbage(8192)...)
			b[16], b[17] = 0x10, 0x00 // page size 4096, as SQLite writes it
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"garbage": func(t *testing.T, path string) {
			if err := os.WriteFile(path, garbage(64<<10), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"short garbage": func(t *testing.T, path string) {
			if err := os.WriteFile(path, garbage(100), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"meta pages wiped": func(t *testing.T, path string) {
			makeJournal(t, path, 300)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
		},
		"foreign bbolt file": func(t *testing.T, path string) {
			rewriteBolt(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("something"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			})
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.db")
			setup(t, path)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{true, false} {
				j, err := journal.Open(path, journal.Options{ReadOnly: ro, Logger: testLogger(t)})
				if err == nil {
					j.Close()
					t.Fatalf("Open(read-only %v) accepted it", ro)
				}
				if !errors.Is(err, journal.ErrNotJournal) || !strings.Contains(err.Error(), path) {
					t.Errorf("Open(read-only %v) = %v, want ErrNotJournal naming %s", ro, err, path)
				}
			}
			if err := journal.CheckFile(path); !errors.Is(err, journal.ErrNotJournal) || !strings.Contains(err.Error(), path) {
				t.Errorf("CheckFile = %v, want ErrNotJournal naming the file", err)
			}
			if name == "sqlite" {
				if err := journal.CheckFile(path); !strings.Contains(fmt.Sprint(err), "SQLite") {
					t.Errorf("CheckFile = %v, want it to say SQLite", err)
				}
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
				t.Error("the file was changed")
			}
			if asides, _ := filepath.Glob(path + ".corrupt-*"); len(asides) > 0 {
				t.Errorf("moved aside: %v", asides)
			}
		})
	}
	// A missing, an empty, and a real journal pass CheckFile.
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.db")
	makeJournal(t, ok, 10)
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ok, empty, filepath.Join(dir, "missing.db")} {
		if err := journal.CheckFile(p); err != nil {
			t.Errorf("CheckFile(%s) = %v", p, err)
		}
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	tests := map[string]func(t *testing.T, path string){
		"zero-length": func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"truncated": func(t *testing.T, path string) {
			makeJournal(t, path, 3000)
			if err := os.Truncate(path, highWater(t, path)/2); err != nil {
				t.Fatal(err)
			}
		},
		"truncated by one page": func(t *testing.T, path string) {
			makeJournal(t, path, 3000)
			if err := os.Truncate(path, highWater(t, path)-4096); err != nil {
				t.Fatal(err)
			}
		},
		"pages after the meta pages garbage": func(t *testing.T, path string) {
			makeJournal(t, path, 300)
			size := highWater(t, path)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(garbage(int(size)-8192), 8192); err != nil {
				t.Fatal(err)
			}
			f.Close()
		},
		"last record garbage": func(t *testing.T, path string) {
			makeJournal(t, path, 10)
			rewriteBolt(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("events"))
				k, _ := b.Cursor().Last()
				return b.Put(k, []byte{9, 9, 9})
			})
		},
		"bucket missing": func(t *testing.T, path string) {
			makeJournal(t, path, 10)
			rewriteBolt(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("latest")) })
		},
	}
	asideRE := regexp.MustCompile(`\.corrupt-\d{8}T\d{6}Z$`)
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.db")
			setup(t, path)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			// Read-only: reported, file untouched. An empty file is "no
			// journal yet": an agent creating one shows an empty file to a
			// reader until it holds the lock.
			want := journal.ErrCorrupt
			if len(orig) == 0 {
				want = os.ErrNotExist
			}
			if _, err := journal.Open(path, journal.Options{ReadOnly: true}); !errors.Is(err, want) {
				t.Fatalf("read-only Open = %v, want %v", err, want)
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
				t.Fatal("read-only Open changed the file")
			}

			// Read-write: moved aside, fresh journal.
			j, err := journal.Open(path, journal.Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("Open = %v, want recovery", err)
			}
			aside := j.Recovered()
			if aside == "" || !strings.HasPrefix(aside, path) || !asideRE.MatchString(aside) {
				t.Fatalf("Recovered() = %q, want %s.corrupt-YYYYMMDDTHHMMSSZ", aside, path)
			}
			if j.Stats().Recovered != aside {
				t.Errorf("Stats().Recovered = %q", j.Stats().Recovered)
			}
			if kept, err := os.ReadFile(aside); err != nil || !bytes.Equal(kept, orig) {
				t.Fatalf("aside file: %v, same bytes: %v", err, bytes.Equal(kept, orig))
			}
			if j.LastSeq() != 0 || j.FirstSeq() != 1 {
				t.Errorf("fresh journal: FirstSeq %d LastSeq %d", j.FirstSeq(), j.LastSeq())
			}
			if _, ok := j.Latest("ddns"); ok {
				t.Errorf("fresh journal has a Latest")
			}
			if ev := mustAppend(t, j, sampleEvent(1)); ev[0].Seq != 1 {
				t.Errorf("first append in the fresh journal: seq %d", ev[0].Seq)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j, err = journal.Open(path, journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if j.Recovered() != "" || j.LastSeq() != 1 {
				t.Errorf("reopened fresh journal: Recovered %q, LastSeq %d", j.Recovered(), j.LastSeq())
			}
			if _, err := os.Stat(aside); err != nil {
				t.Errorf("aside file gone: %v", err)
			}
		})
	}
}

func TestNewerFormatNotMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	makeJournal(t, path, 1)
	rewriteBolt(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte{9}) })
	_, err := journal.Open(path, journal.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer imon") {
		t.Fatalf("Open of a newer format = %v, want an error naming it", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file was moved: %v", err)
	}
}

// TestOpenNoWrite checks that Open leaves a healthy file alone.
func TestOpenKeepsHealthyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	makeJournal(t, path, 500)
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.Recovered() != "" || j.LastSeq() != 501 {
		t.Fatalf("Recovered %q, LastSeq %d", j.Recovered(), j.LastSeq())
	}
	if _, err := j.Append(context.Background(), sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
}

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
