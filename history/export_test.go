package history

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

func (s *Store) setFormat(t *testing.T, v string) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Put(keyFormat, []byte(v)) }); err != nil {
		t.Fatal(err)
	}
}
