// Package event defines imon's journal events: the one record type that every
// monitor appends to the journal and every consumer (log, action script, MQTT,
// `imon journal`, `imon status`) reads back.
//
// An Event is created by a monitor with [New], handed to the journal, which
// assigns Seq and Time, and from then on is immutable. Data holds the
// kind-specific payload as a JSON object; State, when set, is the monitor's
// complete state right after the event, so that the latest event of a monitor
// that carries a State is a snapshot the agent restores on startup, `imon
// status` prints and MQTT publishes retained.
package event

import (
	"encoding/json"
	"fmt"
	"time"
)

// TimeFormat is the wire format of Event.Time: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Levels of an event, used by the log consumer to pick a syslog priority.
const (
	LevelInfo  = ""
	LevelWarn  = "warn"
	LevelError = "error"
)

// Event is one journal record.
type Event struct {
	// Seq is assigned by the journal: gap-free and increasing, starting at 1.
	Seq uint64 `json:"seq"`
	// Time is assigned by the journal when the event is appended (UTC).
	Time time.Time `json:"time"`
	// Instance is the imon instance name (set by the agent).
	Instance string `json:"instance"`
	// Monitor is the producer: "updown", "ping", "ddns", "failover", or
	// "agent", "mqtt", "action" for the agent's own events.
	Monitor string `json:"monitor"`
	// Kind names what happened. Kinds that correspond to an action-script
	// command use that command's name (see IsAction).
	Kind string `json:"kind"`
	// Level is LevelInfo (empty), LevelWarn or LevelError.
	Level string `json:"level,omitempty"`
	// Msg is the human log line for the event, without the
	// "imon [INSTANCE-MONITOR]" prefix (the original imon's wording).
	Msg string `json:"msg,omitempty"`
	// Args are the action-script arguments after COMMAND, for kinds where
	// IsAction is true (docs/action.md).
	Args []string `json:"args,omitempty"`
	// Data is the kind-specific payload, a JSON object (never null on the wire).
	Data json.RawMessage `json:"data"`
	// State, when set, is the monitor's full state after this event.
	State json.RawMessage `json:"state,omitempty"`
}

// New builds an event for monitor with the given kind, log message and data
// (marshalled to JSON; nil becomes {}). It panics only if data cannot be
// marshalled, which is a programming error.
func New(monitor, kind, msg string, data any) Event {
	return Event{Monitor: monitor, Kind: kind, Msg: msg, Data: MustJSON(data)}
}

// WithState returns ev with State set to the JSON of state.
func (ev Event) WithState(state any) Event {
	ev.State = MustJSON(state)
	return ev
}

// WithArgs returns ev with the action-script arguments set.
func (ev Event) WithArgs(args ...string) Event {
	ev.Args = args
	return ev
}

// WithLevel returns ev with the given level.
func (ev Event) WithLevel(level string) Event {
	ev.Level = level
	return ev
}

// MustJSON marshals v; nil gives {}. It panics on a marshalling error (a
// programming error: event payloads are plain structs and maps).
func MustJSON(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("{}")
	}
	if raw, ok := v.(json.RawMessage); ok {
		if len(raw) == 0 {
			return json.RawMessage("{}")
		}
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("event: marshal %T: %v", v, err))
	}
	return b
}

// DecodeData unmarshals the event's Data into v.
func (ev Event) DecodeData(v any) error {
	if err := json.Unmarshal(ev.Data, v); err != nil {
		return fmt.Errorf("event %d (%s/%s): decode data: %w", ev.Seq, ev.Monitor, ev.Kind, err)
	}
	return nil
}

// DecodeState unmarshals the event's State into v.
func (ev Event) DecodeState(v any) error {
	if err := json.Unmarshal(ev.State, v); err != nil {
		return fmt.Errorf("event %d (%s/%s): decode state: %w", ev.Seq, ev.Monitor, ev.Kind, err)
	}
	return nil
}

type wireEvent Event

// MarshalJSON writes Time as RFC 3339 UTC with milliseconds.
func (ev Event) MarshalJSON() ([]byte, error) {
	w := struct {
		wireEvent
		Time string `json:"time"`
	}{wireEvent: wireEvent(ev), Time: ev.Time.UTC().Format(TimeFormat)}
	if len(w.Data) == 0 {
		w.Data = json.RawMessage("{}")
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the wire form written by MarshalJSON.
func (ev *Event) UnmarshalJSON(b []byte) error {
	var w struct {
		wireEvent
		Time string `json:"time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*ev = Event(w.wireEvent)
	if w.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, w.Time)
		if err != nil {
			return fmt.Errorf("event time %q: %w", w.Time, err)
		}
		ev.Time = t.UTC()
	}
	return nil
}
