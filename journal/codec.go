package journal

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"imon/event"
)

// Record format, version 1 (all integers are Go varints, encoding/binary):
//
//	byte    version (1)
//	uvarint seq
//	varint  time, Unix milliseconds (UTC)
//	string  instance, monitor, kind, level, msg (each uvarint length + bytes)
//	uvarint number of args, then each arg as a string
//	bytes   data  (uvarint length + raw JSON)
//	bytes   state (uvarint length + raw JSON; 0 = no state)
//
// A record holds nothing else: trailing bytes are an error. A later format
// gets a new version byte, and DecodeEvent keeps reading the old ones.
const recordVersion = 1

// MaxRecordBytes is the largest encoded event Append accepts.
const MaxRecordBytes = 4 << 20

// EncodeEvent returns the journal's binary record for ev. Time is stored
// with millisecond precision, in UTC; an empty Args, Data or State is stored
// as absent, and decodes as nil.
func EncodeEvent(ev event.Event) []byte {
	return appendEvent(make([]byte, 0, encodedSize(&ev)), &ev)
}

// encodedSize is an upper bound of the length of ev's record.
func encodedSize(ev *event.Event) int {
	n := 1 + 2*binary.MaxVarintLen64 + 8*binary.MaxVarintLen32
	n += len(ev.Instance) + len(ev.Monitor) + len(ev.Kind) + len(ev.Level) + len(ev.Msg)
	n += len(ev.Data) + len(ev.State)
	for _, a := range ev.Args {
		n += binary.MaxVarintLen32 + len(a)
	}
	return n
}

func appendEvent(b []byte, ev *event.Event) []byte {
	b = appendHeader(b, ev.Seq, ev.Time.UnixMilli())
	return appendBody(b, ev)
}

// maxHeaderLen bounds the length of appendHeader's output.
const maxHeaderLen = 1 + 2*binary.MaxVarintLen64

// appendHeader appends the part of a record the writer assigns.
func appendHeader(b []byte, seq uint64, ms int64) []byte {
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, seq)
	return binary.AppendVarint(b, ms)
}

// appendBody appends the part of a record that Append encodes in the
// caller's goroutine: everything after the header.
func appendBody(b []byte, ev *event.Event) []byte {
	b = appendString(b, ev.Instance)
	b = appendString(b, ev.Monitor)
	b = appendString(b, ev.Kind)
	b = appendString(b, ev.Level)
	b = appendString(b, ev.Msg)
	b = binary.AppendUvarint(b, uint64(len(ev.Args)))
	for _, a := range ev.Args {
		b = appendString(b, a)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Data)))
	b = append(b, ev.Data...)
	b = binary.AppendUvarint(b, uint64(len(ev.State)))
	b = append(b, ev.State...)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeEvent decodes a record written by EncodeEvent. The event never
// refers to b: it is safe to use b (for instance bbolt's memory) only for
// the duration of the call. Any malformed input gives an error wrapping
// ErrCorrupt; DecodeEvent never panics.
func DecodeEvent(b []byte) (event.Event, error) {
	var d decoder
	return d.decode(b)
}

// maxIntern bounds a decoder's table of shared strings.
const maxIntern = 512

// decoder decodes records with one allocation for the record's bytes, plus
// one for Args when present. The few distinct instance, monitor, kind and
// level names are shared through a small intern table, so replaying a
// large journal does not allocate them again for every event.
type decoder struct {
	intern map[string]string
}

// decode copies b into a fresh buffer that the returned event's strings
// and slices point into. The buffer is never written again after decode
// returns; Data and State are capped so that appending to them copies.
func (d *decoder) decode(b []byte) (event.Event, error) {
	var ev event.Event
	if len(b) == 0 {
		return ev, fmt.Errorf("decode record: empty: %w", ErrCorrupt)
	}
	if b[0] != recordVersion {
		return ev, fmt.Errorf("decode record: unknown version %d: %w", b[0], ErrCorrupt)
	}
	own := make([]byte, len(b))
	copy(own, b)
	r := reader{b: own, off: 1}
	ev.Seq = r.uvarint()
	ms := r.varint()
	ev.Instance = d.str(&r, true)
	ev.Monitor = d.str(&r, true)
	ev.Kind = d.str(&r, true)
	ev.Level = d.str(&r, true)
	ev.Msg = d.str(&r, false)
	if n := r.uvarint(); n > 0 && r.err == nil {
		// Each arg takes at least one byte: n cannot exceed what is left.
		if n > uint64(len(r.b)-r.off) {
			r.fail("args count")
		} else {
			ev.Args = make([]string, n)
			for i := range ev.Args {
				ev.Args[i] = d.str(&r, false)
			}
		}
	}
	ev.Data = r.raw()
	ev.State = r.raw()
	if r.err == nil && r.off != len(r.b) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return event.Event{}, r.err
	}
	ev.Time = time.UnixMilli(ms).UTC()
	return ev, nil
}

// str reads a string; shared ones go through the intern table.
func (d *decoder) str(r *reader, shared bool) string {
	b := r.bytes()
	if len(b) == 0 {
		return ""
	}
	if shared {
		if d.intern == nil {
			d.intern = make(map[string]string)
		}
		if s, ok := d.intern[string(b)]; ok {
			return s
		}
		if len(d.intern) < maxIntern {
			s := strings.Clone(string(b))
			d.intern[s] = s
			return s
		}
	}
	// The buffer is owned by the event and never modified: a string can
	// share it without a copy.
	return unsafe.String(&b[0], len(b))
}

// reader walks a record; the first error sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("decode record: bad %s at offset %d: %w", what, r.off, ErrCorrupt)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.off += n
	return v
}

// bytes reads a length-prefixed byte string, capped to its length.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("length")
		return nil
	}
	end := r.off + int(n)
	b := r.b[r.off:end:end]
	r.off = end
	return b
}

// raw reads Data or State: nil when empty.
func (r *reader) raw() json.RawMessage {
	b := r.bytes()
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// peekTime returns the seq and Unix-millisecond time of a record without
// decoding the rest (retention and SeqAt only need these).
func peekTime(b []byte) (seq uint64, ms int64, err error) {
	if len(b) == 0 || b[0] != recordVersion {
		return 0, 0, fmt.Errorf("decode record header: %w", ErrCorrupt)
	}
	r := reader{b: b, off: 1}
	seq = r.uvarint()
	ms = r.varint()
	return seq, ms, r.err
}
