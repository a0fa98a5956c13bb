package journal_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"imon/event"
	"imon/journal"
)

// sampleEvent is a typical ~200-byte journal event.
func sampleEvent(i int) event.Event {
	return event.New(event.MonitorPing, event.KindPingResult,
		"Ping 192.0.2.1: alive min 11.2 avg 12.5 max 14.1 loss 0.0 jitter 1.1",
		map[string]any{"ip": "192.0.2.1", "alive": true, "min": 11.2, "avg": 12.5, "i": i}).
		WithArgs("192.0.2.1:True:11.2:12.5:14.1:0.0:1.1")
}

func TestCodecRoundTrip(t *testing.T) {
	tests := map[string]event.Event{
		"zero": {},
		"full": {
			Seq: 42, Time: time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC),
			Instance: "main", Monitor: "updown", Kind: "updown-offline", Level: event.LevelWarn,
			Msg: "Monitored IP 192.0.2.1 is offline", Args: []string{"192.0.2.1", ""},
			Data: json.RawMessage(`{"ip":"192.0.2.1"}`), State: json.RawMessage(`{"online":false}`),
		},
		"unicode and binary": {
			Seq: 1 << 62, Time: time.UnixMilli(-1).UTC(), Monitor: "é\x00", Kind: "k",
			Msg: strings.Repeat("ü", 300), Args: []string{"\xff"}, Data: json.RawMessage("\x00\x01"),
		},
		"sample": sampleEvent(7),
	}
	for name, ev := range tests {
		t.Run(name, func(t *testing.T) {
			b := journal.EncodeEvent(ev)
			got, err := journal.DecodeEvent(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, normalize(ev)) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, normalize(ev))
			}
		})
	}
}

// normalize is what a stored event looks like: Time in UTC with ms
// precision, empty slices as nil.
func normalize(ev event.Event) event.Event {
	if !ev.Time.IsZero() {
		ev.Time = time.UnixMilli(ev.Time.UnixMilli()).UTC()
	}
	if len(ev.Args) == 0 {
		ev.Args = nil
	}
	if len(ev.Data) == 0 {
		ev.Data = nil
	}
	if len(ev.State) == 0 {
		ev.State = nil
	}
	return ev
}

// randomEvent makes an arbitrary event for the round-trip property.
func randomEvent(r *rand.Rand) event.Event {
	str := func() string {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	raw := func() json.RawMessage {
		if r.IntN(3) == 0 {
			return nil
		}
		return json.RawMessage(str() + "x")
	}
	ev := event.Event{
		Seq: r.Uint64(), Time: time.UnixMilli(r.Int64N(1<<50) - 1<<49).UTC(),
		Instance: str(), Monitor: str(), Kind: str(), Level: str(), Msg: str(),
		Data: raw(), State: raw(),
	}
	for range r.IntN(4) {
		ev.Args = append(ev.Args, str())
	}
	return ev
}

func TestCodecRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		ev := randomEvent(r)
		got, err := journal.DecodeEvent(journal.EncodeEvent(ev))
		if err != nil {
			t.Fatalf("event %d: decode: %v", i, err)
		}
		if !reflect.DeepEqual(got, normalize(ev)) {
			t.Fatalf("event %d: round trip:\n got %#v\nwant %#v", i, got, normalize(ev))
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := journal.EncodeEvent(sampleEvent(1))
	tests := map[string][]byte{
		"empty":          nil,
		"version 0":      {0},
		"version 2":      append([]byte{2}, good[1:]...),
		"only version":   {1},
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"huge length":    {1, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge args":      {1, 1, 2, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03},
	}
	for n := 1; n < len(good); n += 7 {
		tests[fmt.Sprintf("truncated at %d", n)] = good[:n]
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := journal.DecodeEvent(b); !errors.Is(err, journal.ErrCorrupt) {
				t.Fatalf("DecodeEvent(%x) = %v, want ErrCorrupt", b, err)
			}
		})
	}
}

func TestDecodeCopies(t *testing.T) {
	b := journal.EncodeEvent(sampleEvent(3))
	ev, err := journal.DecodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	want := normalize(sampleEvent(3))
	for i := range b {
		b[i] = 'X'
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("decoded event changed with its input:\n got %#v\nwant %#v", ev, want)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(journal.EncodeEvent(sampleEvent(1)))
	f.Add(journal.EncodeEvent(event.Event{Seq: 1, Monitor: "m", Kind: "k", State: json.RawMessage(`{}`)}))
	r := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		f.Add(journal.EncodeEvent(randomEvent(r)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		ev, err := journal.DecodeEvent(b)
		if !bytes.Equal(in, b) {
			t.Fatal("DecodeEvent modified its input")
		}
		if err != nil {
			if !errors.Is(err, journal.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := journal.DecodeEvent(journal.EncodeEvent(ev))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("decode(encode(ev)) != ev:\n got %#v\nwant %#v", again, ev)
		}
	})
}
