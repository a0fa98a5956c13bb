package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Format is the version of the rollup file's layout and of the rollups'
// meaning. A file of another version is rebuilt from the journal.
const Format = 1

var (
	bktMeta   = []byte("meta")  // "format" → decimal Format
	bktDays   = []byte("days")  // "YYYY-MM-DD/subject" → JSON Day
	bktState  = []byte("state") // "state" → JSON State
	keyFormat = []byte("format")
	keyState  = []byte("state")
)

// ErrFormat: the rollup file has another format version (read-only open).
var ErrFormat = errors.New("rollup file of another format version")

// PathFor is the rollup file that belongs to the journal at journalPath.
func PathFor(journalPath string) string { return journalPath + ".history" }

// Store is the rollup file: a small bbolt file next to the journal.
type Store struct {
	db   *bolt.DB
	path string
}

// OpenStore opens the rollup file at path, creating it when missing unless
// readOnly. A read-write open of a file of another format version (or one
// that is not a rollup file) empties it: rebuilt is true and the caller
// replays the journal. A read-only open of a missing file returns an error
// wrapping os.ErrNotExist, of another version one wrapping ErrFormat.
func OpenStore(path string, readOnly bool, lockTimeout time.Duration) (s *Store, rebuilt bool, err error) {
	if lockTimeout <= 0 {
		lockTimeout = time.Second
	}
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, false, fmt.Errorf("rollups %s: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("rollups %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
	if err != nil && !readOnly && !errors.Is(err, berrors.ErrTimeout) {
		// Not a bbolt file (or damaged): rollups are derived data, so
		// start again and rebuild them from the journal.
		if rmErr := os.Remove(path); rmErr != nil {
			return nil, false, fmt.Errorf("rollups %s: %w (and removing it: %v)", path, err, rmErr)
		}
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
		rebuilt = true
	}
	if err != nil {
		return nil, false, fmt.Errorf("rollups %s: %w", path, err)
	}
	s = &Store{db: db, path: path}
	if readOnly {
		err = db.View(func(tx *bolt.Tx) error {
			if m := tx.Bucket(bktMeta); m == nil || string(m.Get(keyFormat)) != fmt.Sprint(Format) {
				return fmt.Errorf("rollups %s: %w", path, ErrFormat)
			}
			return nil
		})
	} else {
		err = db.Update(func(tx *bolt.Tx) error {
			if m := tx.Bucket(bktMeta); m != nil && string(m.Get(keyFormat)) == fmt.Sprint(Format) &&
				tx.Bucket(bktDays) != nil && tx.Bucket(bktState) != nil {
				return nil
			}
			rebuilt = true
			for _, b := range [][]byte{bktMeta, bktDays, bktState} {
				if tx.Bucket(b) != nil {
					if err := tx.DeleteBucket(b); err != nil {
						return err
					}
				}
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return tx.Bucket(bktMeta).Put(keyFormat, fmt.Append(nil, Format))
		})
	}
	if err != nil {
		db.Close()
		return nil, false, fmt.Errorf("rollups %s: %w", path, err)
	}
	return s, rebuilt, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file.
func (s *Store) Path() string { return s.path }

// State returns the stored projector state (zero when none).
func (s *Store) State() (State, error) {
	var st State
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktState).Get(keyState)
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &st)
	})
	if err != nil {
		return State{}, fmt.Errorf("rollups %s: state: %w", s.path, err)
	}
	return st, nil
}

func dayKeyBytes(subject, date string) []byte { return []byte(date + "/" + subject) }

// Day returns the stored day, nil when none.
func (s *Store) Day(subject, date string) (*Day, error) {
	var d *Day
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktDays).Get(dayKeyBytes(subject, date))
		if v == nil {
			return nil
		}
		d = new(Day)
		return json.Unmarshal(v, d)
	})
	if err != nil {
		return nil, fmt.Errorf("rollups %s: day %s %s: %w", s.path, date, subject, err)
	}
	return d, nil
}

// Range returns the stored days with fromDate <= date (all when empty).
func (s *Store) Range(fromDate string) ([]*Day, error) {
	var out []*Day
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktDays).Cursor()
		for k, v := c.Seek([]byte(fromDate)); k != nil; k, v = c.Next() {
			d := new(Day)
			if err := json.Unmarshal(v, d); err != nil {
				return fmt.Errorf("day %s: %w", k, err)
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rollups %s: %w", s.path, err)
	}
	return out, nil
}

// Save writes the state and the days in one transaction and deletes the
// days before dropBefore (a date; "" keeps all).
func (s *Store) Save(st *State, days []*Day, dropBefore string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDays)
		for _, d := range days {
			v, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := b.Put(dayKeyBytes(d.Subject, d.Date), v); err != nil {
				return err
			}
		}
		if dropBefore != "" {
			c := b.Cursor()
			for k, _ := c.First(); k != nil && string(k) < dropBefore; k, _ = c.First() {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		v, err := json.Marshal(st)
		if err != nil {
			return err
		}
		return tx.Bucket(bktState).Put(keyState, v)
	})
	if err != nil {
		return fmt.Errorf("rollups %s: save: %w", s.path, err)
	}
	return nil
}
