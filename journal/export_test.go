package journal

import bolt "go.etcd.io/bbolt"

// SetMaxFileBytes changes the file-size cap of an open journal (bbolt's
// MaxSize), inside a write transaction so that the change is ordered with
// the writer's transactions. Tests use it to make space "return".
func SetMaxFileBytes(j *Journal, n int64) error {
	return j.db.Update(func(*bolt.Tx) error {
		j.db.MaxSize = int(n)
		return nil
	})
}
