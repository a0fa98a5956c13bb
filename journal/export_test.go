package journal

import bolt "go.etcd.io/bbolt"

// SetMaxFileBytes changes the file-size cap of an open journal (bbolt's
// MaxSize), inside a write transaction so that the change is ordered with
// the writer's transactions. Tests use it to make space "return".
func SetMaxFileBytes(j *Journal, n int64) error {
	db := j.db.Load()
	return db.Update(func(*bolt.Tx) error {
		db.MaxSize = int(n)
		return nil
	})
}

// SetTxHook installs fn to run inside every write transaction of j, on the
// writer goroutine (fault injection: fn may panic or block). Call it before
// the first Append, or through a request ordered with the writer.
func SetTxHook(j *Journal, fn func(tx *bolt.Tx)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.txHook = fn
}

// CursorFlushDelay is how long a SetCursor may stay only in memory.
const CursorFlushDelay = cursorFlushDelay
