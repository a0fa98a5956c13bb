package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"imon/event"
)

// Scan is the bulk reader for consumers that replay much of the journal
// (the history rollups' rebuild): it hands each record to a callback
// without decoding it into an [event.Event].
//
// Scan calls fn with the events from seq from on, in order, up to max of
// them (max <= 0: to the end), until fn returns false. It returns the seq
// after the last record handed to fn (from, or FirstSeq, when none was).
// A from below FirstSeq starts at FirstSeq.
//
// The records are read in batches (scanBatchRecords records or
// scanBatchBytes bytes): each batch is copied, in one read transaction,
// into one buffer that is reused for the next batch, and fn runs after the
// transaction ended, in the caller's goroutine. So fn never holds up the
// writer, and a replay allocates nothing per event. The *Record and every
// slice in it are lent: valid only during the call; keep a copy
// ([Record.Event] decodes one) of what must outlive it.
//
// A damaged record or page gives an error wrapping ErrCorrupt, as Read
// does (the records before it were handed to fn); [Journal.ReadPast]
// names the damaged range.
func (j *Journal) Scan(from uint64, max int, fn func(r *Record) bool) (next uint64, err error) {
	next = from
	if first := j.FirstSeq(); next < first {
		next = first
	}
	sb := scanBufs.Get().(*scanBuf)
	buf, ends, seqs := sb.buf[:0], sb.ends[:0], sb.seqs[:0]
	defer func() {
		// (After errViewAbandoned a transaction may still fill buf.)
		if !errors.Is(err, errViewAbandoned) && cap(buf) <= scanKeepBytes {
			sb.buf, sb.ends, sb.seqs = buf[:0], ends[:0], seqs[:0]
			scanBufs.Put(sb)
		}
	}()
	var r Record // lent to fn
	done := 0
	for max <= 0 || done < max {
		want := scanBatchRecords
		if max > 0 {
			want = min(want, max-done)
		}
		buf, ends, seqs = buf[:0], ends[:0], seqs[:0]
		err := j.view(func(tx *bolt.Tx) error {
			evb := tx.Bucket(bktEvents)
			if evb == nil {
				return nil
			}
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], next)
			c := evb.Cursor()
			for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("journal %s: scan from %d: a key of %d bytes: %w", j.path, next, len(k), ErrCorrupt)
				}
				buf = append(buf, v...)
				ends = append(ends, len(buf))
				seqs = append(seqs, binary.BigEndian.Uint64(k))
				if len(ends) >= want || len(buf) >= scanBatchBytes {
					break
				}
			}
			return nil
		})
		if errors.Is(err, errViewAbandoned) {
			return next, err // the transaction may still fill buf
		}
		// Hand out what was copied before an error, then report it.
		start := 0
		for i, end := range ends {
			rec := buf[start:end:end]
			start = end
			if perr := r.parse(rec); perr != nil {
				return next, fmt.Errorf("journal %s: scan event %d: %w", j.path, seqs[i], perr)
			}
			// A damaged page can hand out records that still decode.
			if r.Seq != seqs[i] || r.Seq < next {
				return next, fmt.Errorf("journal %s: scan from %d: key %d holds event %d: %w", j.path, next, seqs[i], r.Seq, ErrCorrupt)
			}
			next = r.Seq + 1
			done++
			if !fn(&r) {
				return next, nil
			}
		}
		if err != nil {
			return next, err
		}
		if len(ends) < want && len(buf) < scanBatchBytes {
			return next, nil // the end
		}
	}
	return next, nil
}

// Batch bounds of Scan: the read transaction lasts one copy of at most
// about this much.
const (
	scanBatchRecords = 4096
	scanBatchBytes   = 1 << 20
)

// scanBuf is a Scan's batch: the records back to back in buf, the end
// offset in buf and the key of each. Scans reuse them.
type scanBuf struct {
	buf  []byte
	ends []int
	seqs []uint64
}

// scanBufs holds batches for reuse. A batch starts small and grows with
// what it copies: a consumer that follows the journal scans an event or
// two at a time, and keeping the full batch size (1.1 MiB) allocated for
// it was 46 % of the agent's live heap (a heap profile of the agent with
// all monitors and MQTT, 2026-12-06). A batch grown past scanKeepBytes by
// a replay is dropped after it, not kept.
var scanBufs = sync.Pool{New: func() any {
	return &scanBuf{
		buf:  make([]byte, 0, 4<<10),
		ends: make([]int, 0, 16),
		seqs: make([]uint64, 0, 16),
	}
}}

// scanKeepBytes is the largest batch buffer scanBufs keeps.
const scanKeepBytes = 64 << 10

// Record is one journal record as [Journal.Scan] lends it: the header
// decoded, the strings and JSON as slices of the record's bytes (nil when
// empty). It is valid only during the callback.
type Record struct {
	Seq    uint64
	TimeMS int64 // Unix milliseconds, UTC

	Instance, Monitor, Kind, Level, Msg []byte
	Data, State                         []byte // raw JSON

	raw   []byte
	args  []byte // the args, each a uvarint length + bytes
	nargs int
}

// NumArgs returns the number of action arguments.
func (r *Record) NumArgs() int { return r.nargs }

// Arg returns action argument i (nil when there is none).
func (r *Record) Arg(i int) []byte {
	if i < 0 || i >= r.nargs {
		return nil
	}
	rd := reader{b: r.args}
	for ; i > 0; i-- {
		rd.bytes()
	}
	return rd.bytes() // the args were checked by parse
}

// Event decodes the record into an event that does not refer to the
// record's memory (as [Journal.Read] returns it).
func (r *Record) Event() (event.Event, error) { return DecodeEvent(r.raw) }

// parse reads the record's fields, with the checks of DecodeEvent,
// without copying anything.
func (r *Record) parse(b []byte) error {
	*r = Record{raw: b}
	if len(b) == 0 {
		return fmt.Errorf("decode record: empty: %w", ErrCorrupt)
	}
	if b[0] != recordVersion {
		return fmt.Errorf("decode record: unknown version %d: %w", b[0], ErrCorrupt)
	}
	rd := reader{b: b, off: 1}
	r.Seq = rd.uvarint()
	r.TimeMS = rd.varint()
	r.Instance = nilIfEmpty(rd.bytes())
	r.Monitor = nilIfEmpty(rd.bytes())
	r.Kind = nilIfEmpty(rd.bytes())
	r.Level = nilIfEmpty(rd.bytes())
	r.Msg = nilIfEmpty(rd.bytes())
	if n := rd.uvarint(); n > 0 && rd.err == nil {
		if n > uint64(len(b)-rd.off) {
			rd.fail("args count")
		} else {
			start := rd.off
			for range n {
				rd.bytes()
			}
			r.args, r.nargs = b[start:rd.off:rd.off], int(n)
		}
	}
	r.Data = rd.raw()
	r.State = rd.raw()
	if rd.err == nil && rd.off != len(b) {
		rd.fail("trailing bytes")
	}
	if rd.err != nil {
		*r = Record{}
		return rd.err
	}
	return nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
