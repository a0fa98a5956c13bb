package homeassistant

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// MaxErrorLen bounds AgentState.LastError: Home Assistant turns a text
// state longer than 255 characters into "unknown".
const MaxErrorLen = 250

// AgentState is the payload of BASE/agent/state (retained): the agent's
// own diagnostics.
type AgentState struct {
	// Version is imon's version.
	Version string `json:"version"`
	// Instance is the instance name.
	Instance string `json:"instance"`
	// JournalBytes is the journal's size on disk, when known.
	JournalBytes *int64 `json:"journal_bytes,omitempty"`
	// LastSeq is the journal's last sequence number.
	LastSeq uint64 `json:"last_seq"`
	// Backlog counts the journaled events the broker has not acknowledged
	// yet (BASE/event).
	Backlog uint64 `json:"backlog"`
	// LastError is the latest MQTT problem (connection or publish), ""
	// when none since the start; at most MaxErrorLen bytes.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// Problem is true while the agent is degraded (its journal cannot be
	// written, it runs on the fallback journal, a monitor is restarting):
	// the "Agent problem" binary sensor (device class problem).
	Problem bool `json:"problem"`
	// Problems says why, one line each (each at most MaxErrorLen bytes).
	Problems []string `json:"problems,omitempty"`
}

// JSON returns the payload, with LastError shortened to MaxErrorLen bytes
// (on a rune boundary).
func (s AgentState) JSON() []byte {
	s.LastError = shorten(s.LastError)
	if len(s.Problems) > 0 {
		ps := make([]string, len(s.Problems))
		for i, p := range s.Problems {
			ps[i] = shorten(p)
		}
		s.Problems = ps
	}
	if s.LastErrorAt != nil {
		t := s.LastErrorAt.UTC().Truncate(time.Millisecond)
		s.LastErrorAt = &t
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic("homeassistant: marshal agent state: " + err.Error()) // plain struct: cannot fail
	}
	return b
}

// shorten cuts s to MaxErrorLen bytes (on a rune boundary, with "…").
func shorten(s string) string {
	if len(s) <= MaxErrorLen {
		return s
	}
	cut := MaxErrorLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
