package probe_test

import (
	"net/netip"
	"testing"
	"time"

	"imon/agent/probe"
	"imon/agent/probe/probetest"
)

const ms = time.Millisecond

func TestSummarize(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.1")
	for name, tc := range map[string]struct {
		sent                  int
		rtts                  []time.Duration
		min, avg, max, jitter time.Duration
		loss                  float64
		alive                 bool
	}{
		"none answered": {sent: 2, loss: 1},
		"nothing sent":  {sent: 0, loss: 1},
		"one of two":    {sent: 2, rtts: []time.Duration{5 * ms}, min: 5 * ms, avg: 5 * ms, max: 5 * ms, loss: 0.5, alive: true},
		// The original's sample log: minrtt 0.434 maxrtt 4.894 jitter 4.46.
		"sample log": {sent: 2, rtts: []time.Duration{434 * time.Microsecond, 4894 * time.Microsecond},
			min: 434 * time.Microsecond, avg: 2664 * time.Microsecond, max: 4894 * time.Microsecond, jitter: 4460 * time.Microsecond, alive: true},
		// |20-10| + |15-20| + |15-15| = 15, over 3 differences = 5.
		"jitter mean of consecutive": {sent: 4, rtts: []time.Duration{10 * ms, 20 * ms, 15 * ms, 15 * ms},
			min: 10 * ms, avg: 15 * ms, max: 20 * ms, jitter: 5 * ms, alive: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := probe.Summarize(addr, tc.sent, tc.rtts)
			if r.Min != tc.min || r.Avg != tc.avg || r.Max != tc.max || r.Jitter != tc.jitter {
				t.Errorf("min/avg/max/jitter = %v/%v/%v/%v, want %v/%v/%v/%v", r.Min, r.Avg, r.Max, r.Jitter, tc.min, tc.avg, tc.max, tc.jitter)
			}
			if r.Loss != tc.loss || r.Alive() != tc.alive || r.Recv != len(tc.rtts) || r.Sent != tc.sent {
				t.Errorf("loss %v alive %v recv %d sent %d, want %v %v %d %d", r.Loss, r.Alive(), r.Recv, r.Sent, tc.loss, tc.alive, len(tc.rtts), tc.sent)
			}
			if r.Addr != addr || r.Target != "192.0.2.1" {
				t.Errorf("addr %v target %q", r.Addr, r.Target)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := probe.PingOptions{}.WithDefaults()
	if o.Count != 1 || o.Spacing != probe.DefaultSpacing || o.Wait != probe.DefaultWait || o.Size != probe.MinSize {
		t.Errorf("ping defaults %+v", o)
	}
	if b := (probe.PingOptions{Count: 3, Spacing: 200 * ms, Wait: 500 * ms}).Budget(); b != 900*ms {
		t.Errorf("budget %v, want 900ms", b)
	}
	s := probe.StreamOptions{Spacing: time.Microsecond}.WithDefaults()
	if s.Spacing != probe.MinSpacing || s.Wait != probe.DefaultWait {
		t.Errorf("stream defaults %+v", s)
	}
}

// outcome is shorthand for table rows: seq, answered.
type outcome struct {
	seq uint64
	ok  bool
}

func TestTracker(t *testing.T) {
	for name, tc := range map[string]struct {
		in           []outcome
		lost, okRun  int
		lastReplySeq uint64
	}{
		"empty":          {},
		"replies":        {in: []outcome{{1, true}, {2, true}}, okRun: 2, lastReplySeq: 2},
		"losses":         {in: []outcome{{1, true}, {2, false}, {3, false}}, lost: 2, lastReplySeq: 1},
		"reply resets":   {in: []outcome{{1, false}, {2, false}, {3, true}}, okRun: 1, lastReplySeq: 3},
		"lost from boot": {in: []outcome{{1, false}, {2, false}, {3, false}}, lost: 3},
		// A reply to 3 overtakes the loss of 2 (reported Wait after its
		// send): 2's loss must not start a streak after the newer reply.
		"late loss below newer reply": {in: []outcome{{1, true}, {3, true}, {2, false}}, okRun: 1, lastReplySeq: 3},
		"late loss then new loss":     {in: []outcome{{1, true}, {3, true}, {2, false}, {4, false}}, lost: 1, lastReplySeq: 3},
		// In flight below the newest settled probe: skipped, not counted.
		"in flight skipped": {in: []outcome{{1, false}, {3, false}}, lost: 2},
		"duplicates ignored": {in: []outcome{{1, true}, {2, false}, {2, false}, {2, true}},
			lost: 1, lastReplySeq: 1},
		"older than window ignored": {in: []outcome{{1000, false}, {1, true}}, lost: 1},
	} {
		t.Run(name, func(t *testing.T) {
			var tr probe.Tracker
			for _, o := range tc.in {
				tr.Add(probe.Outcome{Seq: o.seq, OK: o.ok})
			}
			if got := tr.LostStreak(); got != tc.lost {
				t.Errorf("LostStreak = %d, want %d", got, tc.lost)
			}
			if got := tr.OKStreak(); got != tc.okRun {
				t.Errorf("OKStreak = %d, want %d", got, tc.okRun)
			}
			r, ok := tr.LastReply()
			if ok != (tc.lastReplySeq != 0) || r.Seq != tc.lastReplySeq {
				t.Errorf("LastReply = %d %v, want %d", r.Seq, ok, tc.lastReplySeq)
			}
		})
	}
}

func TestTrackerLongRun(t *testing.T) {
	var tr probe.Tracker
	for s := uint64(1); s <= 10000; s++ {
		tr.Add(probe.Outcome{Seq: s, OK: s%1000 != 0 && s < 9000})
	}
	if got := tr.LostStreak(); got != 256 {
		t.Errorf("streak capped by the window: got %d, want 256", got)
	}
	tr.Reset()
	if tr.Newest() != 0 || tr.LostStreak() != 0 {
		t.Error("Reset kept state")
	}
}

func TestTarget(t *testing.T) {
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	res := probetest.NewResolver(map[string]netip.Addr{"h.test": a1})
	tg := probe.Target{Host: "h.test", Resolver: res, Refresh: time.Minute}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := t.Context()

	if a, ch, rerr, err := tg.Addr(ctx, now); a != a1 || ch || rerr != nil || err != nil {
		t.Fatalf("first: %v %v %v %v", a, ch, rerr, err)
	}
	res.Set("h.test", a2)
	if a, ch, _, _ := tg.Addr(ctx, now.Add(30*time.Second)); a != a1 || ch {
		t.Errorf("cached: %v %v", a, ch)
	}
	if a, ch, _, _ := tg.Addr(ctx, now.Add(time.Minute)); a != a2 || !ch {
		t.Errorf("refreshed: %v %v", a, ch)
	}
	res.Fail("h.test", nil)
	if a, ch, rerr, err := tg.Addr(ctx, now.Add(3*time.Minute)); a != a2 || ch || rerr == nil || err != nil {
		t.Errorf("failed refresh keeps the address: %v %v %v %v", a, ch, rerr, err)
	}
	if n := len(res.Calls()); n != 3 {
		t.Errorf("%d lookups, want 3", n)
	}

	fresh := probe.Target{Host: "gone.test", Resolver: res}
	if _, _, _, err := fresh.Addr(ctx, now); err == nil {
		t.Error("unknown name without a cached address: want an error")
	}
	lit := probe.Target{Host: "192.0.2.9", Resolver: res}
	if a, _, _, err := lit.Addr(ctx, now); err != nil || a != netip.MustParseAddr("192.0.2.9") || !lit.Literal() {
		t.Errorf("literal: %v %v", a, err)
	}
}
