package outbox

import (
	"context"
	"fmt"
	"strconv"

	"imon/event"
	"imon/mqtt"
)

// KindEventTrimmed (monitor "mqtt") is journaled once for an event that
// did not fit in the broker's Maximum Packet Size and was published
// trimmed; data {"seq", "size", "limit", "trimmed": ["data", ...]}.
const KindEventTrimmed = event.KindMQTTEventTrimmed

// Trimmed is the marker that replaces the data of an event published
// trimmed on BASE/event: {"trimmed": true, "seq": N, "size": BYTES}, where
// size is the byte size of the event's whole JSON payload as journaled
// (read it with `imon journal`). When even that does not fit, the event's
// state is left out (it is on BASE/<monitor>/state anyway) and then its
// message cut.
type Trimmed struct {
	Trimmed bool   `json:"trimmed"`
	Seq     uint64 `json:"seq"`
	Size    int    `json:"size"`
}

// eventMessage is the BASE/event message of ev, trimmed to fit in limit
// bytes (the broker's Maximum Packet Size; 0 = none). trimmed lists what
// was left out; ok is false when nothing fits (a limit below some 300
// bytes).
func (o *Outbox) eventMessage(ev event.Event, limit int) (m mqtt.Message, trimmed []string, ok bool, err error) {
	payload, err := ev.MarshalJSON()
	if err != nil {
		return m, nil, false, fmt.Errorf("encoding event %d: %w", ev.Seq, err)
	}
	m = mqtt.Message{
		Topic:   o.eventTopic,
		Payload: payload,
		User:    []mqtt.UserProperty{{Key: "seq", Value: strconv.FormatUint(ev.Seq, 10)}},
	}
	if limit <= 0 || m.PacketSize() <= limit {
		return m, nil, true, nil
	}
	size := len(payload)
	ev.Data = event.MustJSON(Trimmed{Trimmed: true, Seq: ev.Seq, Size: size})
	trimmed = append(trimmed, "data")
	for step := 0; ; step++ {
		if m.Payload, err = ev.MarshalJSON(); err != nil {
			return m, nil, false, fmt.Errorf("encoding event %d: %w", ev.Seq, err)
		}
		over := m.PacketSize() - limit
		if over <= 0 {
			return m, trimmed, true, nil
		}
		switch {
		case step == 0 && len(ev.State) > 0:
			ev.State = nil
			trimmed = append(trimmed, "state")
		case step <= 1 && len(ev.Msg) > 0:
			ev.Msg = cutUTF8(ev.Msg, len(ev.Msg)-over-len("…")) + "…"
			trimmed = append(trimmed, "msg")
		default:
			return m, trimmed, false, nil
		}
	}
}

// cutUTF8 returns the longest prefix of s of at most n bytes that ends on
// a rune boundary.
func cutUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// journalTrim journals, once per event, that it was published trimmed (or
// not at all).
func (o *Outbox) journalTrim(ctx context.Context, ev event.Event, size, limit int, trimmed []string, sent bool) {
	if ev.Seq <= o.trimJournaled {
		return
	}
	o.trimJournaled = ev.Seq
	msg := fmt.Sprintf("Event #%d (%s/%s, %d bytes) does not fit in the broker's maximum packet size of %d bytes: published with its %v left out",
		ev.Seq, ev.Monitor, ev.Kind, size, limit, trimmed)
	if !sent {
		msg = fmt.Sprintf("Event #%d (%s/%s, %d bytes) does not fit in the broker's maximum packet size of %d bytes even trimmed: not published",
			ev.Seq, ev.Monitor, ev.Kind, size, limit)
	}
	tev := event.New(event.MonitorMQTT, KindEventTrimmed, msg,
		map[string]any{"seq": ev.Seq, "size": size, "limit": limit, "trimmed": trimmed, "published": sent}).WithLevel(event.LevelWarn)
	o.log.Warn(msg)
	if _, err := o.opt.emitter.Emit(ctx, tev); err != nil && ctx.Err() == nil {
		o.log.Error("journal mqtt-event-trimmed", "err", err)
	}
}
