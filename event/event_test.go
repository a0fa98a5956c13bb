package event_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"imon/event"
)

func TestWireForm(t *testing.T) {
	ev := event.New(event.MonitorUpdown, event.KindUpdownOffline, "Monitored IP 1.1.1.1 offline", map[string]any{"ip": "1.1.1.1"}).
		WithArgs("1.1.1.1").WithLevel(event.LevelWarn).WithState(map[string]bool{"up": false})
	ev.Seq = 42
	ev.Instance = "main"
	// A local time with nanoseconds: the wire form is UTC with milliseconds.
	ev.Time = time.Date(2026, 11, 24, 2, 2, 3, 456789000, time.FixedZone("CET", 3600))
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":42,"instance":"main","monitor":"updown","kind":"updown-offline","level":"warn","msg":"Monitored IP 1.1.1.1 offline","args":["1.1.1.1"],"data":{"ip":"1.1.1.1"},"state":{"up":false},"time":"2026-11-24T01:02:03.456Z"}`
	if string(b) != want {
		t.Fatalf("wire form\n got %s\nwant %s", b, want)
	}
	var back event.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Seq != 42 || back.Kind != event.KindUpdownOffline || back.Level != event.LevelWarn ||
		!slices.Equal(back.Args, []string{"1.1.1.1"}) || string(back.State) != `{"up":false}` {
		t.Fatalf("round trip lost fields: %+v", back)
	}
	if want := time.Date(2026, 11, 24, 1, 2, 3, 456000000, time.UTC); !back.Time.Equal(want) || back.Time.Location() != time.UTC {
		t.Fatalf("time %v, want %v in UTC", back.Time, want)
	}
}

func TestDataNeverNull(t *testing.T) {
	for _, ev := range []event.Event{
		event.New(event.MonitorAgent, event.KindAgentStart, "", nil),
		{Monitor: event.MonitorAgent, Kind: event.KindAgentStop}, // Data unset
		event.New(event.MonitorAgent, event.KindAgentStart, "", json.RawMessage(nil)),
	} {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"data":{}`) {
			t.Errorf("%s: data is not {}", b)
		}
		if strings.Contains(string(b), `"state"`) || strings.Contains(string(b), `"args"`) || strings.Contains(string(b), `"level"`) {
			t.Errorf("%s: empty optional fields must be omitted", b)
		}
	}
}

func TestUnmarshalErrors(t *testing.T) {
	var ev event.Event
	if err := json.Unmarshal([]byte(`{"seq":1,"time":"yesterday"}`), &ev); err == nil || !strings.Contains(err.Error(), `"yesterday"`) {
		t.Fatalf("bad time: err %v, want one naming the value", err)
	}
	if err := json.Unmarshal([]byte(`{"seq":"x"}`), &ev); err == nil {
		t.Fatal("bad seq accepted")
	}
}

func TestDecodeErrorsNameTheEvent(t *testing.T) {
	ev := event.Event{Seq: 7, Monitor: "ddns", Kind: "ddns-ip-update", Data: json.RawMessage(`[1]`), State: json.RawMessage(`"x"`)}
	var v struct{ IP string }
	if err := ev.DecodeData(&v); err == nil || !strings.Contains(err.Error(), "event 7 (ddns/ddns-ip-update): decode data") {
		t.Errorf("DecodeData: %v", err)
	}
	if err := ev.DecodeState(&v); err == nil || !strings.Contains(err.Error(), "event 7 (ddns/ddns-ip-update): decode state") {
		t.Errorf("DecodeState: %v", err)
	}
}

func TestMustJSONPanicsOnUnmarshallable(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a channel payload")
		}
	}()
	event.MustJSON(make(chan int))
}

func TestActionKinds(t *testing.T) {
	kinds := event.ActionKinds()
	seen := map[string]bool{}
	for _, k := range kinds {
		if !event.IsAction(k) {
			t.Errorf("ActionKinds lists %q but IsAction says no", k)
		}
		if seen[k] {
			t.Errorf("%q listed twice", k)
		}
		seen[k] = true
	}
	for _, k := range []string{event.KindAgentStart, event.KindFailoverCommand, event.KindActionFailed, ""} {
		if event.IsAction(k) {
			t.Errorf("IsAction(%q) = true", k)
		}
	}
	if len(kinds) != 13 {
		t.Errorf("%d action kinds, want the 13 of docs/action.md", len(kinds))
	}
}
