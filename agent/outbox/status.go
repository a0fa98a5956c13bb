package outbox

import (
	"context"
	"fmt"
	"time"

	"imon/event"
	"imon/mqtt"
)

// ConnState is the State of the mqtt-connected and mqtt-disconnected events
// (the journal's Latest("mqtt"), shown by `imon status`).
type ConnState struct {
	Connected bool   `json:"connected"`
	Server    string `json:"server"`
	// Since is when this state began (RFC 3339 UTC).
	Since time.Time `json:"since"`
	// Reason says why the agent is not connected.
	Reason string `json:"reason,omitempty"`
	// ReceiveMaximum is the broker's limit of messages in flight.
	ReceiveMaximum uint16 `json:"receive_maximum,omitempty"`
}

// connKey is what "a change of the connection's state" compares: the
// kind of problem (mqtt.Classify), not its text, so that an outage whose
// attempts fail in slightly different ways is one change.
type connKey struct {
	connected bool
	class     string
}

// handleStatus logs and journals each change of the connection's state: a
// broker that stays down, or keeps refusing, is reported once, not on
// every attempt. The first state of a run is always reported.
func (o *Outbox) handleStatus(ctx context.Context) {
	var last *connKey
	for {
		var st mqtt.Status
		select {
		case <-ctx.Done():
			return
		case st = <-o.status:
		}
		k := connKey{connected: st.Connected, class: mqtt.Classify(st.Err)}
		if st.Err != nil {
			o.setError(st.Err)
		}
		if last != nil && *last == k {
			continue
		}
		last = &k
		if err := o.journalStatus(ctx, st); err != nil && ctx.Err() == nil {
			o.log.Error("journal mqtt connection state", "err", err)
		}
	}
}

func (o *Outbox) journalStatus(ctx context.Context, st mqtt.Status) error {
	state := ConnState{Connected: st.Connected, Server: st.Server, Since: time.Now().UTC().Truncate(time.Millisecond)}
	var ev event.Event
	if st.Connected {
		state.ReceiveMaximum = st.ReceiveMaximum
		o.log.Info("mqtt connected", "server", st.Server, "receive_maximum", st.ReceiveMaximum)
		ev = event.New(event.MonitorMQTT, KindMQTTConnected,
			fmt.Sprintf("Connected to MQTT broker %s", st.Server),
			map[string]any{"server": st.Server, "receive_maximum": st.ReceiveMaximum})
	} else {
		reason := "disconnected"
		if st.Err != nil {
			reason = st.Err.Error()
		}
		state.Reason = reason
		o.log.Warn("mqtt unavailable, retrying", "server", st.Server, "err", reason)
		ev = event.New(event.MonitorMQTT, KindMQTTDisconnected,
			fmt.Sprintf("MQTT broker %s unavailable, retrying: %s", st.Server, reason),
			map[string]any{"server": st.Server, "reason": reason}).WithLevel(event.LevelWarn)
	}
	_, err := o.opt.emitter.Emit(ctx, ev.WithState(state))
	return err
}
