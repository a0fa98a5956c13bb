package homeassistant

import (
	"encoding/json"
	"math"
	"time"

	"imon/event"
)

// PingMinute is the payload of BASE/ping/minute (retained): the statistics
// of the ping rounds that ended in one wall-clock minute (UTC). Home
// Assistant's Latency, Jitter, Packet loss and Latency min/max read it, so
// that the recorder writes at most one row per minute per entity whatever
// the ping interval; the rounds themselves stay on BASE/event and
// BASE/ping/state.
type PingMinute struct {
	// Start is the minute (RFC 3339 UTC); End the end of its last round.
	Start string `json:"start"`
	End   string `json:"end"`
	// Rounds is the number of ping rounds folded in; Sent and Recv their
	// echo requests and replies.
	Rounds int `json:"rounds"`
	Sent   int `json:"sent"`
	Recv   int `json:"recv"`
	// Loss is the fraction of requests lost, 0..1 (3 decimals).
	Loss float64 `json:"loss"`
	// MinMS, AvgMS, MaxMS are the lowest, mean (over the replies) and
	// highest RTT; JitterMS the mean of the rounds' jitter. All are null
	// when no reply arrived in the minute (never a fake 0). Rounded to
	// 0.01 ms.
	MinMS    *float64 `json:"min_ms"`
	AvgMS    *float64 `json:"avg_ms"`
	MaxMS    *float64 `json:"max_ms"`
	JitterMS *float64 `json:"jitter_ms"`
}

// pingRound is the part of a ping round's state (BASE/ping/state, the
// ping monitor's State) that the minute statistics use.
type pingRound struct {
	Sent     int     `json:"sent"`
	Recv     int     `json:"recv"`
	MinMS    float64 `json:"min_ms"`
	AvgMS    float64 `json:"avg_ms"`
	MaxMS    float64 `json:"max_ms"`
	JitterMS float64 `json:"jitter_ms"`
}

// MinuteWindow folds ping rounds into per-minute statistics. It is pure:
// the time of each round is its event's time. Not safe for concurrent use.
type MinuteWindow struct {
	minute     time.Time // start of the minute being folded (zero: empty)
	end        time.Time
	rounds     int
	sent, recv int
	sumAvg     float64 // Σ avg·recv
	sumJitter  float64 // Σ jitter over rounds with replies
	withReply  int
	min, max   float64
}

// Add folds in the round that ended at t with the ping state st (the JSON
// of BASE/ping/state). When t falls in a later minute than the rounds
// folded so far, those are returned as the completed minute (ok true) and
// the window starts again with this round. A state that is not a ping
// round is ignored.
func (w *MinuteWindow) Add(t time.Time, st []byte) (done PingMinute, ok bool) {
	var r pingRound
	if err := json.Unmarshal(st, &r); err != nil || r.Sent <= 0 {
		return PingMinute{}, false
	}
	m := t.UTC().Truncate(time.Minute)
	if !w.minute.IsZero() && m.After(w.minute) {
		done, ok = w.Stats(), true
		*w = MinuteWindow{}
	}
	if w.minute.IsZero() || m.After(w.minute) {
		w.minute = m
	}
	if t.After(w.end) {
		w.end = t
	}
	w.rounds++
	w.sent += r.Sent
	w.recv += r.Recv
	if r.Recv > 0 {
		if w.withReply == 0 || r.MinMS < w.min {
			w.min = r.MinMS
		}
		if w.withReply == 0 || r.MaxMS > w.max {
			w.max = r.MaxMS
		}
		w.withReply++
		w.sumAvg += r.AvgMS * float64(r.Recv)
		w.sumJitter += r.JitterMS
	}
	return done, ok
}

// Stats returns the statistics of the rounds folded so far.
func (w *MinuteWindow) Stats() PingMinute {
	s := PingMinute{Rounds: w.rounds, Sent: w.sent, Recv: w.recv}
	if !w.minute.IsZero() {
		s.Start = w.minute.Format(event.TimeFormat)
		s.End = w.end.UTC().Format(event.TimeFormat)
	}
	if w.sent > 0 {
		s.Loss = math.Round(float64(w.sent-w.recv)/float64(w.sent)*1000) / 1000
	}
	if w.withReply > 0 {
		s.MinMS, s.MaxMS = round2(w.min), round2(w.max)
		s.AvgMS = round2(w.sumAvg / float64(w.recv))
		s.JitterMS = round2(w.sumJitter / float64(w.withReply))
	}
	return s
}

// JSON returns the payload of BASE/ping/minute.
func (s PingMinute) JSON() []byte { return marshal(s) }

func round2(f float64) *float64 {
	v := math.Round(f*100) / 100
	return &v
}
