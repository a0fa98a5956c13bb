package history

import (
	"errors"
	"fmt"
	"os"
	"time"

	"imon/journal"
)

// FromFiles builds a snapshot without an agent: the rollup file next to
// the journal (read-only), brought up to date in memory with the journal's
// newer events; without a usable rollup file, from the journal alone.
// Neither file is written.
func FromFiles(journalPath string, fromMS int64, now time.Time, loc *time.Location) (*Snapshot, error) {
	store, _, err := OpenStore(PathFor(journalPath), true, time.Second)
	switch {
	case err == nil:
		defer store.Close()
	case errors.Is(err, os.ErrNotExist), errors.Is(err, ErrFormat):
		store = nil
	default:
		return nil, err
	}
	var st State
	if store != nil {
		if st, err = store.State(); err != nil {
			return nil, err
		}
	}
	j, err := journal.Open(journalPath, journal.Options{ReadOnly: true})
	if err != nil && !(errors.Is(err, os.ErrNotExist) && store != nil) {
		return nil, err
	}
	proj := NewProjector(loc, st)
	if store != nil {
		proj.Load = func(subject, date string) *Day {
			d, _ := store.Day(subject, date)
			return d
		}
	}
	if j != nil {
		defer j.Close()
		if st.Seq > j.LastSeq() {
			proj.State().Seq = 0
		}
		for from := proj.Seq() + 1; ; {
			evs, err := j.Read(from, readChunk)
			if err != nil {
				return nil, fmt.Errorf("journal %s: %w", journalPath, err)
			}
			if len(evs) == 0 {
				break
			}
			for i := range evs {
				proj.Apply(&evs[i])
			}
			from = evs[len(evs)-1].Seq + 1
		}
	}
	return snapshotOf(store, proj, fromMS, now.UnixMilli(), false)
}
