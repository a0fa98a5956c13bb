package updown

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"imon/agent/probe"
	"imon/event"
)

const ip = "192.0.2.1"

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// at is a time offset from t0 in milliseconds.
func at(msec int) time.Time { return t0.Add(time.Duration(msec) * time.Millisecond) }

// step is one observation fed to the machine.
type step struct {
	at      int // ms after t0
	reply   uint64
	lost    uint64
	dnsOK   bool
	dnsFail bool
	tick    bool
	addping []AddpingStatus // completes the oldest addping round asked for
	resFail bool
	resOK   bool
}

// want is an expected event: "kind args... | msg substring".
type want struct {
	kind string
	args []string
	msg  string         // substring of Msg
	data map[string]any // subset of Data
}

type harness struct {
	t        *testing.T
	m        *Machine
	dnsIDs   []int
	addIDs   []int
	events   []event.Event
	dnsAsked int
}

func newHarness(t *testing.T, p Params, last *State) *harness {
	h := &harness{t: t, m: NewMachine(p)}
	h.m.Start(t0, last)
	return h
}

func (h *harness) apply(out Output) {
	h.events = append(h.events, out.Events...)
	if out.DNSCheck != 0 {
		h.dnsIDs = append(h.dnsIDs, out.DNSCheck)
		h.dnsAsked++
	}
	if out.Addping != 0 {
		h.addIDs = append(h.addIDs, out.Addping)
	}
}

func (h *harness) run(steps []step) {
	for _, s := range steps {
		now := at(s.at)
		switch {
		case s.reply != 0:
			h.apply(h.m.Probe(now, probe.Outcome{Seq: s.reply, Sent: now.Add(-10 * time.Millisecond), At: now, OK: true, RTT: 10 * time.Millisecond}))
		case s.lost != 0:
			h.apply(h.m.Probe(now, probe.Outcome{Seq: s.lost, Sent: now.Add(-time.Second), At: now}))
		case s.dnsOK, s.dnsFail:
			if len(h.dnsIDs) == 0 {
				h.t.Fatalf("step at %dms: DNS result but no check was asked for", s.at)
			}
			id := h.dnsIDs[0]
			h.dnsIDs = h.dnsIDs[1:]
			var err error
			if s.dnsFail {
				err = errors.New("timeout")
			}
			h.apply(h.m.DNSResult(now, id, err))
		case s.tick:
			h.apply(h.m.Tick(now))
		case s.addping != nil:
			if len(h.addIDs) == 0 {
				h.t.Fatalf("step at %dms: addping result but no round was asked for", s.at)
			}
			id := h.addIDs[0]
			h.addIDs = h.addIDs[1:]
			h.apply(h.m.AddpingResult(now, id, s.addping))
		case s.resFail:
			h.apply(h.m.ResolveFailed(now, errors.New("no such host")))
		case s.resOK:
			h.apply(h.m.Resolved(now, netip.MustParseAddr(ip)))
		default:
			h.t.Fatalf("empty step %+v", s)
		}
	}
}

func (h *harness) check(wants []want) {
	h.t.Helper()
	if len(h.events) != len(wants) {
		var got []string
		for _, e := range h.events {
			got = append(got, e.Kind+" "+strings.Join(e.Args, " ")+" | "+e.Msg)
		}
		h.t.Fatalf("got %d events, want %d:\n%s", len(h.events), len(wants), strings.Join(got, "\n"))
	}
	for i, w := range wants {
		e := h.events[i]
		if e.Kind != w.kind || !reflect.DeepEqual(e.Args, w.args) || !strings.Contains(e.Msg, w.msg) {
			h.t.Errorf("event %d = %s %q %q, want %s %q containing %q", i, e.Kind, e.Args, e.Msg, w.kind, w.args, w.msg)
		}
		if e.Monitor != event.MonitorUpdown || len(e.State) == 0 {
			h.t.Errorf("event %d: monitor %q, state %s", i, e.Monitor, e.State)
		}
		var data map[string]any
		if err := json.Unmarshal(e.Data, &data); err != nil {
			h.t.Fatalf("event %d data: %v", i, err)
		}
		for k, v := range w.data {
			if got := fmt.Sprint(data[k]); got != fmt.Sprint(v) {
				h.t.Errorf("event %d data[%s] = %s, want %v (data %s)", i, k, got, v, e.Data)
			}
		}
	}
}

func ts(msec int) string { return at(msec).Format(event.TimeFormat) }

func TestMachine(t *testing.T) {
	base := Params{Target: ip, PingCount: 2, DownInterval: time.Second}
	withDNS := base
	withDNS.DNSServer, withDNS.DNSLookup = "192.0.2.53", "example.com"

	online := func(args ...string) want {
		return want{kind: event.KindUpdownOnline, args: append([]string{ip}, args...)}
	}
	offline := want{kind: event.KindUpdownOffline, args: []string{ip}, msg: "Monitored IP " + ip + " offline"}

	for name, tc := range map[string]struct {
		p     Params
		last  *State
		steps []step
		want  []want
		dns   int // DNS checks asked for
		end   func(t *testing.T, st State)
	}{
		"first reply is a status event": {
			p:     base,
			steps: []step{{at: 20, reply: 1}, {at: 270, reply: 2}},
			want:  []want{{kind: KindStatus, msg: "Monitored IP " + ip + " online", data: map[string]any{"up": true, "since": ts(20)}}},
		},
		"one loss is not an outage": {
			p:     base,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 520, reply: 3}, {at: 1750, lost: 4}},
			want:  []want{{kind: KindStatus}},
		},
		"pingcount losses: offline dated back to the last reply": {
			p:     base,
			steps: []step{{at: 20, reply: 1}, {at: 270, reply: 2}, {at: 1500, lost: 3}, {at: 1750, lost: 4}},
			want:  []want{{kind: KindStatus}, withData(offline, map[string]any{"since": ts(270), "ip": ip})},
			end: func(t *testing.T, st State) {
				if st.Status != StatusDown || st.Up || st.Outages != 1 || !st.Since.Equal(at(270)) || !st.LastOutageStart.Equal(at(270)) {
					t.Errorf("state %+v", st)
				}
			},
		},
		"recovery: online with the outage duration": {
			p: base,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3},
				{at: 1750, lost: 4}, {at: 65270, reply: 5}, {at: 65520, reply: 6}},
			want: []want{{kind: KindStatus}, offline,
				withData(online("0:0:1:5"), map[string]any{"since": ts(20), "until": ts(65270), "duration_s": 65.25, "via": "ping"})},
			end: func(t *testing.T, st State) {
				if st.Status != StatusUp || st.LastOutageDurationS != 65.25 || st.Outages != 1 {
					t.Errorf("state %+v", st)
				}
			},
		},
		"online message in the original's words": {
			p:     base,
			steps: []step{{at: 0, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 93784000, reply: 4}},
			want: []want{{kind: KindStatus}, offline,
				{kind: event.KindUpdownOnline, args: []string{ip, "1:2:3:4"}, msg: "Monitored IP " + ip + " online. Outage Duration: 1 days 2 hours, 3 minutes 4 seconds"}},
		},
		"late loss below a newer reply does not count": {
			p: base,
			// Reply to 3 overtakes the loss of 2; then 4 is lost: the last
			// two probes by Seq are 3 (ok) and 4 (lost).
			steps: []step{{at: 20, reply: 1}, {at: 520, reply: 3}, {at: 1250, lost: 2}, {at: 1750, lost: 4}},
			want:  []want{{kind: KindStatus}},
		},
		"down from the start: status event since the run start": {
			p:     base,
			steps: []step{{at: 1000, lost: 1}, {at: 1250, lost: 2}, {at: 5000, reply: 3}},
			want: []want{{kind: KindStatus, msg: "Monitored IP " + ip + " offline", data: map[string]any{"up": false, "since": ts(0)}},
				withData(online("0:0:0:5"), map[string]any{"since": ts(0), "until": ts(5000)})},
		},
		"dns refutes: no offline, refuted once per streak": {
			p: withDNS,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 1520, dnsOK: true},
				{at: 1750, lost: 4}, {at: 2000, lost: 5}, {at: 2520, tick: true}, {at: 2540, dnsOK: true},
				{at: 3000, reply: 6},
				{at: 4250, lost: 7}, {at: 4500, lost: 8}, {at: 4520, dnsOK: true}},
			want: []want{{kind: KindStatus},
				{kind: KindRefuted, msg: "Offline of " + ip + " refuted by DNS query of 'example.com' on DNS server '192.0.2.53'"},
				{kind: KindRefuted}},
			dns: 3,
		},
		"dns fails: offline after the check": {
			p:     withDNS,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 3500, dnsFail: true}},
			want:  []want{{kind: KindStatus}, withData(offline, map[string]any{"since": ts(20)})},
			dns:   1,
		},
		"refuted, then dns fails on recheck: offline": {
			p: withDNS,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 1520, dnsOK: true},
				{at: 2520, tick: true}, {at: 4520, dnsFail: true}},
			want: []want{{kind: KindStatus}, {kind: KindRefuted}, withData(offline, map[string]any{"since": ts(20)})},
			dns:  2,
		},
		"reply while the dns check runs: result ignored": {
			p:     withDNS,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 1520, reply: 4}, {at: 3500, dnsFail: true}},
			want:  []want{{kind: KindStatus}},
			dns:   1,
		},
		"down: dns recheck every down-interval, an answer ends the outage": {
			p: withDNS,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 3500, dnsFail: true},
				{at: 4000, tick: true}, {at: 4500, tick: true}, {at: 6500, dnsFail: true},
				{at: 7000, tick: true}, {at: 7500, tick: true}, {at: 7520, dnsOK: true}},
			want: []want{{kind: KindStatus}, offline, withData(online("0:0:0:7"), map[string]any{"via": "dns", "duration_s": 7.5})},
			dns:  3,
		},
		"online via dns while the pings keep failing: the next outage starts then": {
			p: withDNS,
			steps: []step{{at: 20, reply: 1}, {at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 3500, dnsFail: true},
				{at: 4500, tick: true}, {at: 4520, dnsOK: true},
				{at: 4750, lost: 4}, {at: 5000, lost: 5}, {at: 5520, tick: true}, {at: 5540, dnsFail: true},
				{at: 6000, reply: 6}},
			want: []want{{kind: KindStatus}, withData(offline, map[string]any{"since": ts(20)}),
				withData(online("0:0:0:4"), map[string]any{"via": "dns", "duration_s": 4.5}),
				withData(offline, map[string]any{"since": ts(4520)}),
				withData(online("0:0:0:1"), map[string]any{"via": "ping", "duration_s": 1.48})},
			dns: 3,
		},
		"restored outage keeps its start": {
			p:     base,
			last:  &State{Target: ip, Status: StatusDown, Since: At(t0.Add(-time.Hour)), Outages: 4, LastOutageStart: At(t0.Add(-time.Hour))},
			steps: []step{{at: 1000, lost: 1}, {at: 1250, lost: 2}, {at: 2000, reply: 3}},
			want:  []want{withData(online("0:1:0:2"), map[string]any{"since": t0.Add(-time.Hour).Format(event.TimeFormat)})},
			end: func(t *testing.T, st State) {
				if st.Outages != 4 || st.LastOutageDurationS != 3602 {
					t.Errorf("state %+v", st)
				}
			},
		},
		"restored up: no event while up, outage dated no earlier than the start": {
			p:     base,
			last:  &State{Target: ip, Status: StatusUp, Up: true, Since: At(t0.Add(-time.Hour)), LastReply: At(t0.Add(-time.Minute)), Outages: 1},
			steps: []step{{at: 1000, lost: 1}, {at: 1250, lost: 2}},
			want:  []want{withData(offline, map[string]any{"since": ts(0)})},
			end: func(t *testing.T, st State) {
				if st.Outages != 2 {
					t.Errorf("outages %d, want 2", st.Outages)
				}
			},
		},
		"restored up and still up: nothing": {
			p:     base,
			last:  &State{Target: ip, Status: StatusUp, Up: true, Since: At(t0.Add(-time.Hour))},
			steps: []step{{at: 20, reply: 1}, {at: 270, reply: 2}},
		},
		"restored state of another target is ignored": {
			p:     base,
			last:  &State{Target: "192.0.2.99", Status: StatusDown, Since: At(t0.Add(-time.Hour))},
			steps: []step{{at: 20, reply: 1}},
			want:  []want{{kind: KindStatus}},
		},
		"restored outage with dns: rechecked at once": {
			p:     withDNS,
			last:  &State{Target: ip, Status: StatusDown, Since: At(t0.Add(-time.Minute))},
			steps: []step{{at: 0, tick: true}, {at: 30, dnsOK: true}},
			want:  []want{withData(online("0:0:1:0"), map[string]any{"via": "dns"})},
			dns:   1,
		},
		"resolve failure journaled once per streak": {
			p: base,
			steps: []step{{at: 0, resFail: true}, {at: 1000, resFail: true}, {at: 2000, resOK: true},
				{at: 3000, resFail: true}},
			want: []want{{kind: KindResolveFailed, msg: "Cannot resolve monitored IP " + ip + ": no such host"}, {kind: KindResolveFailed}},
		},
		"addping results complete the event, order kept": {
			p: Params{Target: ip, PingCount: 2, DownInterval: time.Second, AddPing: []string{"192.0.2.10", "router"}},
			steps: []step{{at: 20, reply: 1},
				{at: 120, addping: []AddpingStatus{{IP: "192.0.2.10", Alive: true, RTTms: 0.5}, {IP: "router", Alive: true}}},
				{at: 1250, lost: 2}, {at: 1500, lost: 3}, {at: 1600, reply: 4}, // offline and online both wait
				{at: 2600, addping: []AddpingStatus{{IP: "192.0.2.10"}, {IP: "router", Alive: true}}},
				{at: 2700, addping: []AddpingStatus{{IP: "192.0.2.10", Alive: true}, {IP: "router", Alive: true}}}},
			want: []want{
				{kind: KindStatus, msg: "online; Secondary IP 192.0.2.10 online; Secondary IP router online"},
				{kind: event.KindUpdownOffline, args: []string{ip}, msg: "offline; Secondary IP 192.0.2.10 offline; Secondary IP router online"},
				{kind: event.KindUpdownOnline, args: []string{ip, "0:0:0:1"}, msg: "Secondary IP 192.0.2.10 online"}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.p, tc.last)
			h.run(tc.steps)
			h.check(tc.want)
			if h.dnsAsked != tc.dns {
				t.Errorf("asked for %d DNS checks, want %d", h.dnsAsked, tc.dns)
			}
			if tc.end != nil {
				tc.end(t, h.m.State())
			}
		})
	}
}

func withData(w want, data map[string]any) want {
	w.data = data
	return w
}

func TestAddpingOrderAcrossRounds(t *testing.T) {
	// The second round finishes first: its event still waits for the first.
	h := newHarness(t, Params{Target: ip, PingCount: 1, AddPing: []string{"a"}}, nil)
	h.run([]step{{at: 20, reply: 1}, {at: 1250, lost: 2}})
	if len(h.addIDs) != 2 || len(h.events) != 0 {
		t.Fatalf("rounds %v events %d", h.addIDs, len(h.events))
	}
	first, second := h.addIDs[0], h.addIDs[1]
	h.apply(h.m.AddpingResult(at(1300), second, []AddpingStatus{{IP: "a"}}))
	if len(h.events) != 0 {
		t.Fatal("second event left before the first")
	}
	h.apply(h.m.AddpingResult(at(1400), first, []AddpingStatus{{IP: "a", Alive: true}}))
	h.check([]want{{kind: KindStatus}, {kind: event.KindUpdownOffline, args: []string{ip}}})
}

func TestStateJSON(t *testing.T) {
	st := State{Target: ip, Status: StatusDown, Since: At(at(1234)), Outages: 1}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"target":"192.0.2.1","status":"down","up":false,"since":"2026-05-01T12:00:01.234Z","outages":1}`
	if string(b) != wantJSON {
		t.Errorf("got  %s\nwant %s", b, wantJSON)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil || !back.Since.Equal(st.Since.Time) || back.Status != st.Status {
		t.Errorf("round trip %+v %v", back, err)
	}
}

func TestDurationFormats(t *testing.T) {
	for _, tc := range []struct {
		d           time.Duration
		dhms, words string
	}{
		{65*time.Second + 900*time.Millisecond, "0:0:1:5", "0 days 0 hours, 1 minutes 5 seconds"},
		{10 * time.Second, "0:0:0:10", "0 days 0 hours, 0 minutes 10 seconds"},
		{49*time.Hour + 1*time.Second, "2:1:0:1", "2 days 1 hours, 0 minutes 1 seconds"},
		{-time.Second, "0:0:0:0", "0 days 0 hours, 0 minutes 0 seconds"},
	} {
		if got := DHMS(tc.d); got != tc.dhms {
			t.Errorf("DHMS(%v) = %q, want %q", tc.d, got, tc.dhms)
		}
		if got := Words(tc.d); got != tc.words {
			t.Errorf("Words(%v) = %q, want %q", tc.d, got, tc.words)
		}
	}
}

// TestNoRouteAtStart: at boot the default route comes after the agent
// starts (failover still choosing, dhcpcd with nogateway); probes that
// cannot be sent for want of a route are not losses until the first reply
// of the run or PathGrace, so no false outage is journaled (issue 13: the
// Internet went off 2.5 s after start and on at +5 s, Outages +1). Once
// the path was up, and after the grace, a missing route is an outage.
func TestNoRouteAtStart(t *testing.T) {
	noRoute := func(seq uint64, ms int) probe.Outcome {
		now := at(ms)
		return probe.Outcome{Seq: seq, Sent: now, At: now, Err: fmt.Errorf("write: %w", syscall.ENETUNREACH)}
	}
	reply := func(seq uint64, ms int) probe.Outcome {
		now := at(ms)
		return probe.Outcome{Seq: seq, Sent: now.Add(-time.Millisecond), At: now, OK: true, RTT: time.Millisecond}
	}
	p := Params{Target: ip, PingCount: 2, PathGrace: 10 * time.Second}

	t.Run("fresh start", func(t *testing.T) {
		h := newHarness(t, p, nil)
		for i := range 8 { // 4 s without a route: still unknown, nothing journaled
			h.apply(h.m.Probe(at(500*i), noRoute(uint64(i+1), 500*i)))
		}
		if st := h.m.State(); st.Status != StatusUnknown || st.Outages != 0 || len(h.events) != 0 {
			t.Fatalf("without a route: status %s, outages %d, events %v", st.Status, st.Outages, h.events)
		}
		h.apply(h.m.Probe(at(5000), reply(9, 5000)))
		if len(h.events) != 1 || h.events[0].Kind != KindStatus || !h.m.State().Up || h.m.State().Outages != 0 {
			t.Fatalf("first reply: events %v, state %+v", h.events, h.m.State())
		}
		// The route is gone later (both WANs down): a real outage.
		h.apply(h.m.Probe(at(6000), noRoute(10, 6000)))
		h.apply(h.m.Probe(at(6500), noRoute(11, 6500)))
		if len(h.events) != 2 || h.events[1].Kind != event.KindUpdownOffline || h.m.State().Outages != 1 {
			t.Fatalf("route lost after the path was up: events %v", h.events)
		}
	})
	t.Run("restored up", func(t *testing.T) {
		last := &State{Target: ip, Status: StatusUp, Up: true, Since: At(t0.Add(-time.Hour)), Outages: 3}
		h := newHarness(t, p, last)
		for i := range 8 {
			h.apply(h.m.Probe(at(500*i), noRoute(uint64(i+1), 500*i)))
		}
		h.apply(h.m.Probe(at(5000), reply(9, 5000)))
		if st := h.m.State(); len(h.events) != 0 || st.Status != StatusUp || st.Outages != 3 {
			t.Fatalf("reboot without a route yet: events %v, state %+v", h.events, st)
		}
	})
	t.Run("no route beyond the grace", func(t *testing.T) {
		h := newHarness(t, p, nil)
		for i := range 24 { // 12 s: the grace ends at 10 s
			h.apply(h.m.Probe(at(500*i), noRoute(uint64(i+1), 500*i)))
		}
		if len(h.events) != 1 || h.events[0].Kind != KindStatus || h.m.State().Status != StatusDown {
			t.Fatalf("no route for 12 s: events %v, status %s", h.events, h.m.State().Status)
		}
		if !h.m.State().Since.Equal(t0) {
			t.Errorf("outage since %v, want the start %v", h.m.State().Since, t0)
		}
	})
	t.Run("timeouts still count", func(t *testing.T) {
		h := newHarness(t, p, nil)
		h.apply(h.m.Probe(at(1000), probe.Outcome{Seq: 1, Sent: at(0), At: at(1000)}))
		h.apply(h.m.Probe(at(1500), probe.Outcome{Seq: 2, Sent: at(500), At: at(1500)}))
		if h.m.State().Status != StatusDown {
			t.Errorf("two timeouts at start: status %s", h.m.State().Status)
		}
	})
}
