package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// open opens (or creates) the bbolt file and checks it; a corrupt file is
// moved aside and replaced by a fresh one (read-write), or reported
// (read-only).
func (j *Journal) open() error {
	if !j.opt.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
			return fmt.Errorf("journal %s: create directory: %w", j.path, err)
		}
	}
	for attempt := 0; attempt < 2; attempt++ {
		db, reason, err := j.tryOpen()
		if err != nil {
			return err
		}
		if reason == "" {
			j.db.Store(db)
			return nil
		}
		if j.opt.ReadOnly {
			return fmt.Errorf("journal %s: %s: %w", j.path, reason, ErrCorrupt)
		}
		// Moved aside: the next attempt creates a fresh file.
	}
	return fmt.Errorf("journal %s: a freshly created journal does not pass the checks: %w", j.path, ErrCorrupt)
}

// tryOpen makes one attempt. A non-empty reason means the file is corrupt:
// read-write, it has been moved aside already (with the lock held, so a
// running agent's file is never touched).
func (j *Journal) tryOpen() (db *bolt.DB, reason string, err error) {
	fi, err := os.Stat(j.path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return nil, "", fmt.Errorf("journal %s: not a regular file (check journal.path)", j.path)
		}
		if j.opt.ReadOnly && fi.Size() == 0 {
			// An agent creating the journal opens the file before it takes
			// the lock and writes the first pages: a reader in between sees
			// an empty file, which is no journal yet, not a corrupt one.
			return nil, "", fmt.Errorf("journal %s: no journal yet (an empty file): %w", j.path, fs.ErrNotExist)
		}
		if reason, err := j.precheck(); err != nil || reason != "" {
			return nil, reason, err
		}
	case errors.Is(err, fs.ErrNotExist):
		if j.opt.ReadOnly {
			return nil, "", fmt.Errorf("journal %s: no journal yet: %w", j.path, err)
		}
	default:
		return nil, "", fmt.Errorf("journal %s: %w", j.path, err)
	}

	var file *os.File // bbolt's file, captured to release its lock after a panic
	opts := &bolt.Options{
		Timeout:  j.opt.LockTimeout,
		ReadOnly: j.opt.ReadOnly,
		MaxSize:  int(j.opt.MaxFileBytes),
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	db, panicked, err := boltOpen(j.path, opts)
	switch {
	case panicked != nil:
		// bbolt holds the lock through file: move aside, then let go.
		reason = fmt.Sprintf("bbolt panicked opening it: %v", panicked)
		err = j.corrupt(reason)
		if file != nil {
			_ = file.Close()
		}
		return nil, reason, err
	case errors.Is(err, berrors.ErrTimeout):
		return nil, "", newLockedError(j.path, err)
	case err != nil && isBoltInvalid(err):
		reason = fmt.Sprintf("bbolt cannot open it: %v", err)
		return nil, reason, j.withLock(func() error { return j.corrupt(reason) })
	case err != nil:
		return nil, "", fmt.Errorf("journal %s: open: %w", j.path, err)
	}

	if file != nil {
		if fi, err := file.Stat(); err == nil {
			j.fileSize.Store(fi.Size())
		}
	}
	j.file.Store(file)
	reason, fresh, err := checkDB(db, j.path)
	if err != nil {
		_ = db.Close()
		return nil, "", fmt.Errorf("journal %s: %w", j.path, err)
	}
	if reason != "" {
		err := j.corrupt(reason) // bbolt still holds the lock
		_ = db.Close()
		return nil, reason, err
	}
	if fresh && !j.opt.ReadOnly {
		if err := initBuckets(db); err != nil {
			_ = db.Close()
			return nil, "", fmt.Errorf("journal %s: initialise: %w", j.path, err)
		}
		syncDir(filepath.Dir(j.path)) // the new file's name is durable too
	}
	return db, "", nil
}

// boltOpen is bolt.Open that turns a panic (bolt#1011) or a fault on the
// mapped file into a value.
func boltOpen(path string, opts *bolt.Options) (db *bolt.DB, panicked any, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			db, panicked, err = nil, p, nil
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	return db, nil, err
}

// isBoltInvalid tells bbolt's "this is not a valid database" errors from
// I/O and permission errors, which must not get a file moved aside.
func isBoltInvalid(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrInvalidMapping) ||
		bytes.Contains([]byte(err.Error()), []byte("file size too small"))
}

// corrupt moves the journal file aside as PATH.corrupt-YYYYMMDDTHHMMSSZ (it
// is kept, never deleted). The caller holds the file's lock. Read-only, it
// does nothing: the caller reports ErrCorrupt.
func (j *Journal) corrupt(reason string) error {
	if j.opt.ReadOnly {
		return nil
	}
	ts := j.now().UTC().Format("20060102T150405Z")
	aside := j.path + ".corrupt-" + ts
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s.corrupt-%s-%d", j.path, ts, i)
	}
	if err := os.Rename(j.path, aside); err != nil {
		return fmt.Errorf("journal %s is corrupt (%s), and moving it aside failed: %w: %w", j.path, reason, err, ErrCorrupt)
	}
	syncDir(filepath.Dir(j.path))
	j.mu.Lock()
	j.recovered = aside
	j.mu.Unlock()
	j.log.Warn("journal file is corrupt: moved aside, starting a fresh journal",
		"path", j.path, "aside", aside, "reason", reason)
	return nil
}

// withLock runs fn holding the file's lock (exclusive read-write, shared
// read-only), taken on a descriptor of our own.
func (j *Journal) withLock(fn func() error) error {
	f, err := j.lockFile()
	if err != nil {
		return err
	}
	defer f.Close()
	return fn()
}

// lockFile opens the journal file and takes its lock, waiting up to
// LockTimeout, as bbolt does. Closing the file releases the lock.
func (j *Journal) lockFile() (*os.File, error) {
	flag, how := os.O_RDWR, syscall.LOCK_EX
	if j.opt.ReadOnly {
		flag, how = os.O_RDONLY, syscall.LOCK_SH
	}
	f, err := os.OpenFile(j.path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path, err)
	}
	deadline := time.Now().Add(j.opt.LockTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, newLockedError(j.path, berrors.ErrTimeout)
			}
			return nil, fmt.Errorf("journal %s: lock: %w", j.path, err)
		}
		time.Sleep(lockRetryInterval)
	}
}

// lockRetryInterval is how often lockFile tries again (bbolt polls too).
const lockRetryInterval = 50 * time.Millisecond

// precheck looks at the file before bbolt maps it, with the lock held:
// an empty file, or meta pages that are missing, invalid, or point past
// the end of a truncated file, would otherwise make bbolt initialise over
// it or fault on pages that are not there. Read-write, a corrupt file is
// moved aside before the lock is released.
func (j *Journal) precheck() (reason string, err error) {
	f, err := j.lockFile()
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("journal %s: %w", j.path, err)
	}
	reason, err = checkMeta(f, fi.Size())
	if err != nil {
		return "", fmt.Errorf("journal %s: read meta pages: %w", j.path, err)
	}
	if reason != "" {
		if what := notJournal(f, fi.Size()); what != "" {
			// Another program's file (the config, the action script, an
			// SQLite database) is no damaged journal: journal.path names
			// the wrong file. Moving it aside would take it from its owner.
			return "", fmt.Errorf("journal %s: %s, not an imon journal: left as it is; check journal.path: %w", j.path, what, ErrNotJournal)
		}
		return reason, j.corrupt(reason)
	}
	return "", nil
}

// CheckFile tells whether the file at path could be the journal: missing
// (it will be created), empty, or a bbolt file. Anything else (a text
// file, an SQLite database, another format) gives an error wrapping
// ErrNotJournal that names the file and what it holds: Open refuses such
// a file and never moves it aside. It takes no lock and does not open the
// file with bbolt: it is `imon check`'s test.
func CheckFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("journal %s: not a regular file (check journal.path)", path)
	}
	if what := notJournal(f, fi.Size()); what != "" {
		return fmt.Errorf("journal %s: %s, not an imon journal: imon would refuse to start; check journal.path: %w", path, what, ErrNotJournal)
	}
	if fi.Size() == 0 {
		return nil
	}
	// A bbolt file: is it imon's? (A running agent's lock answers yes.)
	j, err := Open(path, Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, ErrNotJournal) {
		return err
	}
	if err == nil {
		_ = j.Close()
	}
	return nil
}

// notJournal describes f when it is recognisably not a bbolt file: not
// empty, and no bbolt magic number in a meta page at any plausible page
// size (a damaged journal keeps at least one). "" means it may be a
// (damaged) journal.
func notJournal(f *os.File, size int64) string {
	if size == 0 {
		return ""
	}
	ne := binary.NativeEndian
	var b [pageHeaderSize + 4]byte
	for _, off := range []int64{0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536} {
		if n, _ := f.ReadAt(b[:], off); n == len(b) && ne.Uint32(b[pageHeaderSize:]) == boltMagic {
			return ""
		}
	}
	if what := textStart(f); what != "" {
		return "the file holds text (" + what + ")"
	}
	var head [16]byte
	n, _ := f.ReadAt(head[:], 0)
	switch h := head[:n]; {
	case bytes.HasPrefix(h, []byte("SQLite format 3\x00")):
		return "the file is an SQLite database"
	case bytes.Count(h, []byte{0}) == len(h):
		return fmt.Sprintf("the file (%d bytes) starts with zero bytes, no bbolt meta page", size)
	default:
		return fmt.Sprintf("the file (%d bytes) has no bbolt meta page; it starts with %q", size, h)
	}
}

// textStart returns the start of f quoted when its first 4 KiB are text
// (UTF-8 without NUL bytes; a bbolt file has NULs in its first page), else
// "".
func textStart(f *os.File) string {
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n == 0 || (err != nil && err != io.EOF) {
		return ""
	}
	b = b[:n]
	if bytes.IndexByte(b, 0) >= 0 {
		return ""
	}
	if n == len(b) { // cut at a line end: a rune may straddle the 4 KiB
		if i := bytes.LastIndexByte(b, '\n'); i > 0 {
			b = b[:i]
		}
	}
	if !utf8.Valid(b) {
		return ""
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if len(first) > 40 {
		first = append(first[:40:40], "..."...)
	}
	return fmt.Sprintf("%q", first)
}

// bbolt's on-disk meta page (bbolt internal/common/meta.go, page.go): a
// 16-byte page header, then magic, version, pageSize, flags (uint32 each),
// root bucket {root pgid, sequence}, freelist pgid, high-water pgid, txid,
// and the FNV-64a checksum of everything before it; native byte order.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16
	metaChecksumOff = 56
	metaSize        = 64
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

// checkMeta validates the meta pages of a file of the given size.
func checkMeta(f io.ReaderAt, size int64) (string, error) {
	if size == 0 {
		return "empty file (0 bytes)", nil
	}
	m0, ok0, err := readMeta(f, 0)
	if err != nil {
		return "", err
	}
	var m1 boltMeta
	ok1 := false
	for _, ps := range []int64{int64(m0.pageSize), int64(os.Getpagesize()), 4096} {
		if ps <= 0 || (ok0 && ps != int64(m0.pageSize)) {
			continue
		}
		if m1, ok1, err = readMeta(f, ps); err != nil {
			return "", err
		}
		if ok1 {
			break
		}
	}
	m, ok := m0, ok0
	if ok1 && (!ok0 || m1.txid > m0.txid) {
		m, ok = m1, true
	}
	switch {
	case !ok:
		return fmt.Sprintf("no valid bbolt meta page in %d bytes", size), nil
	case m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0:
		return fmt.Sprintf("bad page size %d", m.pageSize), nil
	case m.root >= m.pgid || m.freelist >= m.pgid:
		// imon never uses NoFreelistSync, so the freelist is always a page
		// (and bbolt's rebuild of a missing one can crash on a bad file).
		return fmt.Sprintf("meta page points past its high-water mark %d", m.pgid), nil
	case uint64(size) < m.pgid*uint64(m.pageSize):
		return fmt.Sprintf("truncated: %d bytes, transaction %d needs %d", size, m.txid, m.pgid*uint64(m.pageSize)), nil
	}
	return "", nil
}

// readMeta reads and validates the meta page at offset off.
func readMeta(f io.ReaderAt, off int64) (boltMeta, bool, error) {
	var buf [pageHeaderSize + metaSize]byte
	if _, err := f.ReadAt(buf[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return boltMeta{}, false, nil
		}
		return boltMeta{}, false, err
	}
	b := buf[pageHeaderSize:]
	ne := binary.NativeEndian
	h := fnv.New64a()
	h.Write(b[:metaChecksumOff])
	if ne.Uint32(b[0:]) != boltMagic || ne.Uint32(b[4:]) != boltVersion || ne.Uint64(b[metaChecksumOff:]) != h.Sum64() {
		return boltMeta{}, false, nil
	}
	return boltMeta{
		pageSize: ne.Uint32(b[8:]),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		pgid:     ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}, true, nil
}

// maxCheckedEntries bounds the latest and cursors entries checked at Open.
const maxCheckedEntries = 4096

// checkDB is Open's bounded sanity check, O(tree depth + monitors): the
// file is not shorter than the last transaction needs, the buckets exist,
// the first and last events and the latest index decode. It never walks
// the events (no tx.Check: that reads the whole file). A file without any
// bucket is fresh. A hard error is returned for a journal written by a
// newer imon: it is not corrupt and must not be moved aside.
func checkDB(db *bolt.DB, path string) (reason string, fresh bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			reason, fresh, err = fmt.Sprintf("bbolt panicked reading it: %v", p), false, nil
		}
	}()
	fi, err := os.Stat(path)
	if err != nil {
		return "", false, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			reason = fmt.Sprintf("truncated: %d bytes, needs %d", fi.Size(), tx.Size())
			return nil
		}
		if k, _ := tx.Cursor().First(); k == nil {
			fresh = true
			return nil
		}
		meta := tx.Bucket(bktMeta)
		if meta == nil {
			if tx.Bucket(bktEvents) == nil && tx.Bucket(bktLatest) == nil && tx.Bucket(bktCursors) == nil {
				// Another program's bbolt database: not ours to move.
				return fmt.Errorf("a bbolt database without any imon bucket, not an imon journal: left as it is; check journal.path: %w", ErrNotJournal)
			}
			reason = "no meta bucket"
			return nil
		}
		format := meta.Get(keyFormat)
		if len(format) != 1 {
			reason = "no format marker"
			return nil
		}
		if format[0] > fileFormat {
			return fmt.Errorf("written by a newer imon (journal format %d, this one reads %d)", format[0], fileFormat)
		}
		evb, lb, cb := tx.Bucket(bktEvents), tx.Bucket(bktLatest), tx.Bucket(bktCursors)
		if evb == nil || lb == nil || cb == nil {
			reason = "a bucket is missing"
			return nil
		}
		c := evb.Cursor()
		for _, kv := range [][2][]byte{pair(c.First()), pair(c.Last())} {
			if kv[0] == nil {
				continue
			}
			if r := checkRecord(kv[0], kv[1]); r != "" {
				reason = r
				return nil
			}
			if seq := binary.BigEndian.Uint64(kv[0]); seq > evb.Sequence() {
				reason = fmt.Sprintf("event %d beyond the sequence %d", seq, evb.Sequence())
				return nil
			}
		}
		n := 0
		lc := lb.Cursor()
		for k, v := lc.First(); k != nil && n < maxCheckedEntries; k, v = lc.Next() {
			if _, err := DecodeEvent(v); err != nil {
				reason = fmt.Sprintf("latest index entry %q: %v", k, err)
				return nil
			}
			n++
		}
		cc := cb.Cursor()
		for k, v := cc.First(); k != nil && n < 2*maxCheckedEntries; k, v = cc.Next() {
			if len(v) != 8 {
				reason = fmt.Sprintf("cursor %q of %d bytes", k, len(v))
				return nil
			}
			n++
		}
		return nil
	})
	return reason, fresh, err
}

func pair(k, v []byte) [2][]byte { return [2][]byte{k, v} }

// checkRecord checks that an events entry decodes and matches its key.
func checkRecord(k, v []byte) string {
	if len(k) != 8 {
		return fmt.Sprintf("event key of %d bytes", len(k))
	}
	ev, err := DecodeEvent(v)
	if err != nil {
		return fmt.Sprintf("event %d: %v", binary.BigEndian.Uint64(k), err)
	}
	if ev.Seq != binary.BigEndian.Uint64(k) {
		return fmt.Sprintf("event %d holds seq %d", binary.BigEndian.Uint64(k), ev.Seq)
	}
	return ""
}

// initBuckets creates the layout of a fresh journal.
func initBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bktEvents, bktLatest, bktCursors, bktMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return tx.Bucket(bktMeta).Put(keyFormat, []byte{fileFormat})
	})
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
