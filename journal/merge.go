package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"imon/event"
)

// mergeChunk bounds the events copied by one transaction of Merge.
const mergeChunk = 4096

// mergeKeyPrefix starts the meta keys that record a merge's progress:
// "merged " + the source's identity (see Merge) → 16 bytes, big-endian:
// the last seq of this journal before the merge began, and the last seq of
// the source copied so far.
const mergeKeyPrefix = "merged "

// MergeResult says what Merge did.
type MergeResult struct {
	Source   string    // the path merged
	Events   int       // events copied by this call
	Damaged  uint64    // events of the source in damaged ranges, not copied
	Already  bool      // the source had been merged before: nothing copied
	From, To time.Time // the times of the first and last event copied
}

// Merge copies the events of the journal at src (the fallback journal a
// degraded start ran on) to the end of j, in their order and with their
// times, so that nothing journaled while the configured journal could not
// be opened is lost. It is meant for the start, before any consumer runs:
// the events get new seqs after j's last, a monitor's latest state may come
// from them (they are the newest), and a journal-merged event (agent, data
// {fallback, events, damaged, from, to}) follows them in the last copy's
// transaction.
//
// carry names the cursors of consumers that deliver events outside (the
// log, the action script, MQTT): a consumer that had delivered everything
// of j and then, on src, some of the copies, is moved past those copies,
// so that they are not delivered twice. A consumer that was behind on j
// keeps its cursor (it delivers j's events first, then the copies: some
// again, at-least-once, as after a crash).
//
// Merge copies in transactions of mergeChunk events and records its
// progress in j (the meta bucket, under src's identity: its path and the
// seq and time of its first event) in each, so a merge interrupted by a
// crash goes on where it stopped, and a source merged before (a fallback
// that could not be removed) is recognised and not copied twice
// (MergeResult.Already). Damaged ranges of src are skipped and counted.
// The caller removes src once Merge returned without an error.
func (j *Journal) Merge(ctx context.Context, src string, carry []string) (MergeResult, error) {
	res := MergeResult{Source: src}
	if j.opt.ReadOnly {
		return res, fmt.Errorf("journal %s: merge %s: %w", j.path, src, ErrReadOnly)
	}
	fj, err := Open(src, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond, Logger: j.log})
	if err != nil {
		return res, fmt.Errorf("journal %s: merge: open %w", j.path, err)
	}
	defer fj.Close()
	first, last := fj.FirstSeq(), fj.LastSeq()
	if first > last {
		return res, nil // nothing journaled there
	}
	head, err := fj.ReadPast(first, 1)
	var dmg *Damage
	switch {
	case errors.As(err, &dmg):
		head, err = fj.ReadPast(dmg.Last+1, 1)
		if err != nil || len(head) == 0 {
			return res, fmt.Errorf("journal %s: merge %s: its first events cannot be read: %w", j.path, src, err)
		}
	case err != nil:
		return res, fmt.Errorf("journal %s: merge %s: %w", j.path, src, err)
	case len(head) == 0:
		return res, nil
	}
	key := fmt.Sprintf("%s%s#%d@%d", mergeKeyPrefix, src, first, head[0].Time.UnixMilli())
	base, done, seen, err := j.mergeProgress(key)
	if err != nil {
		return res, err
	}
	if !seen {
		base = j.LastSeq()
	}
	if seen && done >= last {
		res.Already = true
		return res, nil
	}
	// The carried cursors of consumers that had delivered all of j before
	// the merge began, and how far each got on src.
	fcur := make(map[string]uint64)
	for _, name := range carry {
		if c := j.Cursor(name); c >= base {
			if fc := fj.Cursor(name); fc >= first {
				fcur[name] = fc
			}
		}
	}
	moved := make(map[string]bool)
	closed := false // journal-merged is in
	from := max(done+1, first)
	for from <= last {
		evs, err := fj.ReadPast(from, mergeChunk)
		if errors.As(err, &dmg) {
			res.Damaged += dmg.Last - dmg.First + 1
			from = dmg.Last + 1
			continue
		}
		if err != nil {
			return res, fmt.Errorf("journal %s: merge %s from event %d: %w", j.path, src, from, err)
		}
		if len(evs) == 0 {
			break
		}
		srcLast := evs[len(evs)-1].Seq
		final := srcLast >= last
		copies := make([]event.Event, 0, len(evs)+1)
		for _, ev := range evs {
			ev.Seq = 0 // Time stays: when it happened
			copies = append(copies, ev)
		}
		if res.Events == 0 {
			res.From = evs[0].Time
		}
		res.Events += len(evs)
		res.To = evs[len(evs)-1].Time
		if final {
			copies = append(copies, j.mergedEvent(src, res))
			closed = true
		}
		// The seqs the copies will get are known only at the commit (the
		// journal's own notices may go first), so the cursors are set by
		// the next chunk's transaction, or by a SyncCursor after the last.
		r := mergeRequest(copies, key, base, srcLast)
		if err := j.submit(ctx, r); err != nil {
			return res, fmt.Errorf("journal %s: merge %s, events %d to %d: %w", j.path, src, evs[0].Seq, srcLast, err)
		}
		for name, fc := range fcur { // past the last copy delivered on src
			if i := sort.Search(len(evs), func(i int) bool { return evs[i].Seq > fc }); i > 0 {
				j.SetCursor(name, r.evs[i-1].Seq)
				moved[name] = true
			}
		}
		from = srcLast + 1
	}
	if !closed && (res.Events > 0 || res.Damaged > 0) { // the tail was damaged
		r := mergeRequest([]event.Event{j.mergedEvent(src, res)}, key, base, last)
		if err := j.submit(ctx, r); err != nil {
			return res, fmt.Errorf("journal %s: merge %s: %w", j.path, src, err)
		}
	}
	for name := range moved {
		if err := j.SyncCursor(ctx, name, j.Cursor(name)); err != nil {
			return res, fmt.Errorf("journal %s: merge %s: cursor %q: %w", j.path, src, name, err)
		}
	}
	return res, nil
}

// mergeRequest is the writer's request for one transaction of a merge:
// evs (already valid: they come from a journal, or are journal-merged)
// and the merge's progress under key, base and the last source seq done.
func mergeRequest(evs []event.Event, key string, base, srcDone uint64) *request {
	r := &request{
		evs:    evs,
		bodies: make([][]byte, len(evs)),
		meta:   map[string][]byte{key: append(be64(base), be64(srcDone)...)},
		done:   make(chan struct{}),
	}
	for i := range evs {
		r.bodies[i] = appendBody(make([]byte, 0, encodedSize(&evs[i])), &evs[i])
	}
	return r
}

// mergeProgress reads the progress Merge recorded under key.
func (j *Journal) mergeProgress(key string) (base, done uint64, seen bool, err error) {
	err = j.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktMeta).Get([]byte(key))
		if v == nil {
			return nil
		}
		if len(v) != 16 {
			return fmt.Errorf("journal %s: merge record %q of %d bytes: %w", j.path, key, len(v), ErrCorrupt)
		}
		base, done, seen = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), true
		return nil
	})
	return base, done, seen, err
}

// mergedEvent is the journal-merged event that closes a merge.
func (j *Journal) mergedEvent(src string, res MergeResult) event.Event {
	msg := fmt.Sprintf("Merged %d events journaled on the fallback journal %s", res.Events, src)
	if res.Events > 0 {
		msg += fmt.Sprintf(" (%s to %s)", res.From.Format(time.RFC3339), res.To.Format(time.RFC3339))
	}
	if res.Damaged > 0 {
		msg += fmt.Sprintf("; %d events in damaged ranges could not be read", res.Damaged)
	}
	ev := event.New(event.MonitorAgent, event.KindJournalMerged, msg, map[string]any{
		"fallback": src, "events": res.Events, "damaged": res.Damaged,
		"from": res.From.UTC().Format(time.RFC3339Nano), "to": res.To.UTC().Format(time.RFC3339Nano),
	})
	if res.Damaged > 0 {
		ev = ev.WithLevel(event.LevelWarn)
	}
	return ev
}
