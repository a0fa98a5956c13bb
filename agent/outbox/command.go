package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"imon/event"
)

// Failover modes accepted on BASE/failover/set.
const (
	ModePrimary = "primary"
	ModeStandby = "standby"
	ModeAuto    = "auto"
)

// Limits of command payloads.
const (
	// MaxCommandBytes is the longest payload ParseCommand looks at: a mode
	// with some surrounding white space. Longer payloads are rejected
	// without being read.
	MaxCommandBytes = 32
	// ShownPayloadBytes is how much of a rejected payload is journaled.
	ShownPayloadBytes = 64
)

// Reasons a command is rejected (wrapped by ParseCommand's errors).
var (
	ErrEmptyCommand    = errors.New("empty payload")
	ErrCommandTooLarge = errors.New("payload too large")
	ErrNotText         = errors.New("payload is not UTF-8 text")
	ErrUnknownMode     = errors.New("unknown failover mode")
	// ErrFailoverDisabled: a valid command while the failover monitor is
	// not enabled.
	ErrFailoverDisabled = errors.New("the failover monitor is not enabled")
)

// ParseCommand parses a BASE/failover/set payload: "primary", "standby" or
// "auto". Surrounding spaces, tabs and line ends are ignored (a shell's
// `echo primary | mosquitto_pub -s` sends a newline) and ASCII letters may
// be in any case ("Primary"); nothing else is accepted: no JSON, no
// quotes, no other words. The mode is returned in lower case.
func ParseCommand(payload []byte) (mode string, err error) {
	switch {
	case len(payload) == 0:
		return "", ErrEmptyCommand
	case len(payload) > MaxCommandBytes:
		return "", fmt.Errorf("%w (%d bytes): want primary, standby or auto", ErrCommandTooLarge, len(payload))
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
	switch m := string(lower); m {
	case ModePrimary, ModeStandby, ModeAuto:
		return m, nil
	}
	return "", fmt.Errorf("%w %s: want primary, standby or auto", ErrUnknownMode, strconv.Quote(s))
}

// ShowPayload renders the first ShownPayloadBytes bytes of a payload for
// the journal: printable text as is, backslashes doubled, and control
// characters, invalid UTF-8 and other non-printable runes as Go escapes
// (\n, \x00, \u200b), with "…" when it was cut.
func ShowPayload(payload []byte) string {
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

// handleCommands journals each command received, in order.
func (o *Outbox) handleCommands(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-o.cmds:
			if _, err := o.j.Append(ctx, o.commandEvent(p)); err != nil && ctx.Err() == nil {
				o.log.Error("journal mqtt command", "err", err)
			}
		}
	}
}

// commandEvent is the event journaled for a command payload:
// failover-command or command-rejected.
func (o *Outbox) commandEvent(payload []byte) event.Event {
	mode, err := ParseCommand(payload)
	if err == nil && !o.enabled[event.MonitorFailover] {
		err = ErrFailoverDisabled
	}
	var ev event.Event
	if err != nil {
		shown := ShowPayload(payload)
		ev = event.New(event.MonitorAgent, event.KindCommandRejected,
			fmt.Sprintf("Rejected failover command \"%s\" from mqtt: %v", shown, err),
			map[string]any{"source": "mqtt", "reason": err.Error(), "payload": shown, "size": len(payload)}).WithLevel(event.LevelWarn)
	} else {
		ev = event.New(event.MonitorAgent, event.KindFailoverCommand,
			fmt.Sprintf("Manual failover command %s from mqtt", mode),
			map[string]any{"mode": mode, "source": "mqtt"})
	}
	ev.Instance = o.instance
	return ev
}
