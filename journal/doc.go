// Package journal is imon's event store and source of truth: an
// append-only log of [event.Event] records in one bbolt file. Monitors
// append events; everything else (log lines, the action script, MQTT,
// `imon journal`, `imon status`, the state restored at startup) is read
// back from it.
//
// # Basics
//
// [Open] the file once per process (it is locked, see below), [Journal.Append]
// events, and [Journal.Close] at the end. Append assigns each event its Seq
// (gap-free, increasing from 1, never reused, also across a reopen after a
// failure) and, unless the caller set one, its Time (the wall clock at the
// commit, UTC, truncated to the millisecond), and returns the events as
// stored once they are committed and fsynced. An event needs a Monitor and
// a Kind. The order is the Seq: times may go back (see Time below).
//
// Consumers read with [Journal.Read] (from a seq, in order),
// [Journal.Wait] (block until an event after a seq exists; every commit
// wakes waiters, nothing polls), [Journal.ReadPast] (Read that names a
// damaged range, a [*Damage], and lets the reader go on after it) and
// [Journal.SeqAt] (the first event at or after a time: a binary search,
// approximate around a clock jump). [Journal.Scan] is the bulk reader for
// a replay of much of the journal (the history rollups' rebuild): it lends
// each record's fields ([Record]: the header decoded, the strings and the
// JSON as slices) to a callback, copied in batches into one reused buffer
// with the read transaction ended before the callback runs, so nothing is
// allocated or decoded per event (about 4 times Read's rate); the caller
// decodes what it keeps ([Record.Event]). A consumer keeps its position
// in a named cursor: [Journal.SetCursor] is kept in memory and
// written with the next transaction (or within 30 seconds, or at
// Close); [Journal.SyncCursor] returns once it is durable.
//
// For every monitor, the latest event that carried a State is kept in an
// index updated in the same transaction as the append: [Journal.Latest]
// answers from memory, and Open reads only this index, so starting the
// agent costs the same with ten events or ten million.
//
// # Group commit
//
// One writer goroutine does every write. Appends from many goroutines are
// queued; the writer takes all that are pending into one bbolt transaction
// (one commit: two fdatasyncs), then acknowledges each caller. It gives
// callers it has just acknowledged a chance to append again before it
// commits (a yield, never longer than half a millisecond), so concurrent
// appenders share commits. bbolt's NoSync is never used: an acknowledged
// event is on disk. If a commit fails (a full disk: the error wraps
// [ErrNoSpace]; a file that reached Options.MaxFileBytes), every caller of
// that batch gets the error, none of its events is stored, the seqs it
// would have used are used by the next successful commit, and the writer
// keeps going, so journaling resumes when space returns. Errors wrap
// [ErrNoSpace], [ErrReadOnly] (EROFS), [ErrCorrupt] or [ErrUnavailable];
// no wait for the writer lasts longer than Options.WriteTimeout.
//
// # Failures while open
//
// Before each commit the writer checks (two stats) that the file did not
// shrink and that the path still names it. A panic inside a bbolt
// transaction is recovered; bbolt may then still hold its writer lock (a
// rollback that faulted) or its meta lock (a reader's transaction that
// faulted in its setup on a truncated mapping: the db is "poisoned"), so
// such a db is abandoned: its file lock released explicitly, its mapping
// left. Transactions run in their own goroutine so that none waits on a
// poisoned db. The writer then reopens the file with Open's checks: an
// intact file is kept (the failed commit is tried once more); one that
// fails them, or panics again, is moved aside; a fresh journal continues
// the seqs and gets the latest index and the cursors from memory, and
// journal-recovered is journaled first. See recover.go.
//
// # Time
//
// Event times follow the wall clock. The writer compares it with a
// monotonic clock at each commit: a disagreement of more than 5 s, or a
// last event more than 5 s in the future at Open, is journaled once as
// clock-jump (data jump_s, expected, now, reason), and age retention stops
// for the rest of the run. Age retention never deletes events of this run
// (seq >= the first seq of this Open) before the run has lasted MaxAge by
// the monotonic clock.
//
// # File layout
//
// Buckets: "events" (big-endian seq → record), "latest" (monitor → record
// of its latest event with a State: the whole record, so that retention
// cannot break it), "cursors" (name → big-endian seq), "meta" (format
// version, time of the last event). A record is a compact versioned binary
// encoding (see [EncodeEvent]): decoding one does not parse JSON, and a
// replay of a million events takes well under a second.
//
// # Locking
//
// A read-write Open takes an exclusive lock on the file, waiting up to
// Options.LockTimeout (1 s by default); a read-only Open takes a shared
// lock. Either fails with an error wrapping [ErrLocked] while the other
// kind is held, naming the holder from /proc/locks (an agent: exclusive; a
// reader: shared; pid and command line), so while the agent runs, `imon
// journal` and `imon status` ask the agent over its socket instead of
// opening the file. Readers of the file hold it only while they read a
// batch (see cmd/imon's readFile), never while they print.
//
// # Retention
//
// With Options.MaxAge, events older than that are deleted (see Time for
// the exceptions); with
// Options.MaxBytes, the oldest events are deleted while the live data (the
// file less its free pages) exceeds it, down to 95% of it, so that size
// retention runs in batches. The writer looks every 5 seconds and deletes
// at most 20,000 events per transaction, with appends committed in
// between. [Journal.FirstSeq] moves up; a Read from a seq below it starts
// at it. The latest index is not subject to retention. The file does not
// shrink: bbolt reuses freed pages.
//
// # Corruption
//
// Open checks the file within a bounded cost, before and after bbolt maps
// it: the meta pages are valid and the file is not shorter than the last
// transaction needs (a truncated file would otherwise fault on pages that
// are not there), the buckets exist, the first and the last event and the
// latest index decode. bbolt panics and faults on the mapped file are
// recovered. A file that fails (also an empty file, or garbage) is renamed
// to PATH.corrupt-YYYYMMDDTHHMMSSZ, kept, never deleted, and a fresh
// journal is created in its place; [Journal.Recovered] returns the aside
// path so that the agent journals an event about it. The decision is made
// with the file locked, so the file of a running agent is never moved. A
// read-only Open of a corrupt file returns an error wrapping [ErrCorrupt]
// and leaves it alone. A journal written by a newer imon (a higher format
// version) is an error, not corruption. Only a file recognisably bbolt is
// moved aside: text, SQLite, random bytes, or a bbolt database without
// imon's buckets is refused with [ErrNotJournal] ([CheckFile] is the same
// test without opening it, for imon check).
//
// # Caveats
//
// The check at Open does not read every page (bbolt's tx.Check does, at a
// cost that grows with the file): damage in the middle of a file shows up
// later, as a Read error wrapping ErrCorrupt (ReadPast names the range and
// journals journal-damaged), and [Journal.Verify] finds it on demand.
//
// Durability holds for a crashed or killed process, and for a power loss
// if the storage honours flushes (cheap SD cards may not). Each commit
// writes a few 4 KiB pages and two flushes; on an SD card, fewer larger
// commits wear it less, which group commit gives under load.
//
// A Read holds a bbolt read transaction while it decodes; the file cannot
// grow meanwhile, so appends that need a larger file wait. Read in chunks
// (a few thousand events), not the whole journal at once.
//
// When bbolt panics inside Open (a damaged file), or a db is abandoned
// while open (see Failures while open), the memory mapping it made is not
// released, nor a goroutine blocked on its locks: a bounded leak per
// incident.
package journal
