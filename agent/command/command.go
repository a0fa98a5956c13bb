// Package command is the one road of a manual failover command, whatever
// its source (the CLI through the control socket, MQTT BASE/failover/set,
// Home Assistant's "Failover mode" select): the Mode type and its parser,
// the events a command becomes (failover-command, command-rejected,
// command-throttled), and the Budget that bounds how many commands are
// journaled and how often they may move the route.
//
// It imports only the event package, so that the CLI, the agent, the MQTT
// outbox, the failover monitor and the Home Assistant discovery can all use
// it without knots.
package command

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"imon/event"
)

// Mode is the failover monitor's manual override.
type Mode string

// The failover modes.
const (
	ModeAuto    Mode = "auto"    // the configured policy (prefer-primary)
	ModePrimary Mode = "primary" // the primary is pinned: used whenever it is up
	ModeStandby Mode = "standby" // the standby is pinned
)

// Modes lists the modes in the order Home Assistant's select shows them.
var Modes = []Mode{ModeAuto, ModePrimary, ModeStandby}

// ModeNames is Modes as strings.
func ModeNames() []string {
	out := make([]string, len(Modes))
	for i, m := range Modes {
		out[i] = string(m)
	}
	return out
}

// Limits of command payloads.
const (
	// MaxPayloadBytes is the longest payload Parse looks at: a mode with
	// some surrounding white space. Longer payloads are rejected without
	// being read.
	MaxPayloadBytes = 32
	// ShownPayloadBytes is how much of a rejected payload is journaled.
	ShownPayloadBytes = 64
)

// Reasons a command is rejected (wrapped by Parse's errors).
var (
	ErrEmpty    = errors.New("empty payload")
	ErrTooLarge = errors.New("payload too large")
	ErrNotText  = errors.New("payload is not UTF-8 text")
	ErrUnknown  = errors.New("unknown failover mode")
)

// Parse parses a command payload: "primary", "standby" or "auto".
// Surrounding spaces, tabs and line ends are ignored (a shell's `echo
// primary | mosquitto_pub -s` sends a newline) and ASCII letters may be in
// any case ("Primary"); nothing else is accepted: no JSON, no quotes, no
// other words. The mode is returned in lower case.
func Parse(payload []byte) (Mode, error) {
	switch {
	case len(payload) == 0:
		return "", ErrEmpty
	case len(payload) > MaxPayloadBytes:
		return "", fmt.Errorf("%w (%d bytes): want primary, standby or auto", ErrTooLarge, len(payload))
	case !utf8.Valid(payload):
		return "", ErrNotText
	}
	s := strings.Trim(string(payload), " \t\r\n")
	lower := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch m := Mode(lower); m {
	case ModePrimary, ModeStandby, ModeAuto:
		return m, nil
	}
	return "", fmt.Errorf("%w %s: want primary, standby or auto", ErrUnknown, strconv.Quote(s))
}

// ParseMode parses a mode name as Parse does (a journaled failover-command
// or a restored failover snapshot).
func ParseMode(s string) (Mode, error) { return Parse([]byte(s)) }

// Show renders the first ShownPayloadBytes bytes of a payload for the
// journal: printable text as is, backslashes doubled, and control
// characters, invalid UTF-8 and other non-printable runes as Go escapes
// (\n, \x00, \u200b), with "…" when it was cut.
func Show(payload []byte) string {
	cut := len(payload) > ShownPayloadBytes
	if cut {
		payload = payload[:ShownPayloadBytes]
	}
	var b strings.Builder
	for len(payload) > 0 {
		r, size := utf8.DecodeRune(payload)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, payload[0])
		case r == '\\':
			b.WriteString(`\\`)
		case strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r) // '\n', '\x00', '\u200b'
			b.WriteString(q[1 : len(q)-1])
		}
		payload = payload[size:]
	}
	if cut {
		b.WriteString("…")
	}
	return b.String()
}

// Accepted is the failover-command event of a command from source ("cli",
// "mqtt"): the failover monitor acts on it.
func Accepted(mode Mode, source string) event.Event {
	return event.New(event.MonitorAgent, event.KindFailoverCommand,
		fmt.Sprintf("Manual failover command %s from %s", mode, source),
		map[string]any{"mode": mode, "source": source})
}

// Rejected is the command-rejected event of a payload from source refused
// for reason.
func Rejected(payload []byte, source string, reason error) event.Event {
	shown := Show(payload)
	return event.New(event.MonitorAgent, event.KindCommandRejected,
		fmt.Sprintf("Rejected failover command \"%s\" from %s: %v", shown, source, reason),
		map[string]any{"source": source, "reason": reason.Error(), "payload": shown, "size": len(payload)}).WithLevel(event.LevelWarn)
}
