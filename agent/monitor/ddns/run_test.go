package ddns_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/monitor"
	"imon/agent/monitor/ddns"
	"imon/agent/probe/extip"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
)

// Providers of the Run tests: three independent DNS operators, an HTTP
// fallback of a fourth, and one IPv6 provider.
const (
	pA  = "dns://192.0.2.1/a.test?type=A"
	pB  = "dns://192.0.2.2/b.test?type=TXT"
	pC  = "dns://192.0.2.3/c.test?type=A"
	pH  = "https://192.0.2.4/ip"
	pA6 = "dns://[2001:db8::1]/a6.test?type=AAAA"
)

// behaviour is what a fake provider does when asked.
type behaviour func(ctx context.Context) (string, error)

func answer(s string) behaviour {
	return func(context.Context) (string, error) { return s, nil }
}

// blackhole never answers: the query ends with its context.
func blackhole(ctx context.Context) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func refused(context.Context) (string, error) {
	return "", errors.New("connection refused")
}

// fakeNet is the providers' world: what each provider answers, and how
// often it was asked. Safe for concurrent use.
type fakeNet struct {
	mu      sync.Mutex
	answers map[string]behaviour
	calls   map[string]int
	active  int // queries running now
	maxAct  int
}

func newFakeNet() *fakeNet {
	return &fakeNet{answers: map[string]behaviour{}, calls: map[string]int{}}
}

func (n *fakeNet) set(p string, b behaviour) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.answers[p] = b
}

func (n *fakeNet) setAll(b behaviour, ps ...string) {
	for _, p := range ps {
		n.set(p, b)
	}
}

func (n *fakeNet) count(p string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[p]
}

type fakeQuerier struct {
	n    *fakeNet
	name string
}

func (q fakeQuerier) Query(ctx context.Context) (string, error) {
	q.n.mu.Lock()
	q.n.calls[q.name]++
	b := q.n.answers[q.name]
	q.n.active++
	q.n.maxAct = max(q.n.maxAct, q.n.active)
	q.n.mu.Unlock()
	defer func() {
		q.n.mu.Lock()
		q.n.active--
		q.n.mu.Unlock()
	}()
	if b == nil {
		return refused(ctx)
	}
	return b(ctx)
}

// runHarness runs a Monitor inside a synctest bubble.
type runHarness struct {
	t       *testing.T
	net     *fakeNet
	j       *nettest.Recorder
	watch   chan event.Event
	m       *ddns.Monitor
	cancel  context.CancelFunc
	done    chan error
	seen    int // events already checked by expect
	ifAddrs []netip.Addr
	ifMu    sync.Mutex
	live    chan func()                                           // the agent watchdog's liveness requests
	every   func(context.Context, time.Duration) <-chan time.Time // env.Every; nil: time.Tickers
}

const (
	testInterval = 10 * time.Second
	testTimeout  = 2 * time.Second
)

func newHarness(t *testing.T, cfg config.DDNS, n *fakeNet) *runHarness {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = testInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = testTimeout
	}
	h := &runHarness{t: t, net: n, j: &nettest.Recorder{Instance: "test"}, watch: make(chan event.Event)}
	m, err := ddns.New(cfg, ddns.Deps{
		NewQuerier: func(s extip.Spec) (extip.Querier, error) { return fakeQuerier{n: n, name: s.Raw}, nil },
		InterfaceAddrs: func(string) ([]netip.Addr, error) {
			h.ifMu.Lock()
			defer h.ifMu.Unlock()
			return slices.Clone(h.ifAddrs), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// settle is how long after a round's start its outcome is certain: the
// timeout twice (DNS, then the HTTP fallback), plus the decision grace.
const settle = 5 * time.Second

// start runs the monitor with env.Last = last and waits until its first
// round is over: the bubble's clock then stands settle after the round's
// start, and each next() lands settle after the next round's start.
func (h *runHarness) start(last event.Event) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	env := monitor.Env{
		Instance: "test",
		Emit:     h.j.Emit,
		Last:     last,
		Watch:    func(context.Context) <-chan event.Event { return h.watch },
		Liveness: h.live,
		Every:    h.every,
	}
	go func() { h.done <- h.m.Run(ctx, env) }()
	time.Sleep(settle)
	synctest.Wait()
}

// stop cancels the run and checks that Run returned nil.
func (h *runHarness) stop() {
	h.t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run returned %v", err)
	}
}

// next lets one interval pass: the next round runs to completion.
func (h *runHarness) next() {
	time.Sleep(testInterval)
	synctest.Wait()
}

// expect checks the events since the last expect, as "KIND ARGS..." lines
// (ddns-status and ddns-provider-fault included).
func (h *runHarness) expect(want ...string) {
	h.t.Helper()
	evs := h.j.Events()
	var got []string
	for _, ev := range evs[h.seen:] {
		got = append(got, strings.TrimSpace(ev.Kind+" "+strings.Join(ev.Args, " ")))
	}
	h.seen = len(evs)
	if !slices.Equal(got, want) {
		h.t.Errorf("events:\n  got  %q\n  want %q", got, want)
	}
}

// lastEvent returns the latest event.
func (h *runHarness) lastEvent() event.Event {
	evs := h.j.Events()
	if len(evs) == 0 {
		h.t.Fatal("no events")
	}
	return evs[len(evs)-1]
}

func state(t *testing.T, ev event.Event) ddns.State {
	t.Helper()
	var st ddns.State
	if err := ev.DecodeState(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

var three = config.DDNS{Providers: []string{pA, pB, pC}}

func TestRunFirstDetectionRestartAndChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		ev := h.lastEvent()
		if ev.Msg != "External IP Address changed from unknown to 93.184.216.34" {
			t.Errorf("Msg = %q", ev.Msg)
		}
		st := state(t, ev)
		if st.IP != "93.184.216.34" || st.ChangedAt == nil || len(st.Agreed) != 3 || st.Consensus != ddns.Accepted {
			t.Errorf("state = %+v", st)
		}
		for _, p := range st.Providers {
			if !p.OK || p.Status != "ok" || p.Answer != "93.184.216.34" {
				t.Errorf("provider state %+v", p)
			}
		}
		var data map[string]any
		if err := ev.DecodeData(&data); err != nil || data["ip"] != "93.184.216.34" || data["old"] != "unknown" {
			t.Errorf("data = %v (%v)", data, err)
		}
		h.next()
		h.next()
		h.expect() // unchanged: nothing
		h.stop()

		// A restart with an unchanged address fires nothing.
		h.start(h.j.LastState())
		h.next()
		h.expect()
		// A new address, confirmed by the consensus: NEW OLD at once.
		n.setAll(answer("1.2.3.4"), pA, pB, pC)
		h.next()
		h.expect("ddns-ip-update 1.2.3.4 93.184.216.34")
		h.stop()

		// A restart onto a changed address reports NEW OLD, never unknown.
		n.setAll(answer("5.6.7.8"), pA, pB, pC)
		h.start(h.j.LastState())
		h.expect("ddns-ip-update 5.6.7.8 1.2.3.4")
		h.stop()
	})
}

func TestRunLyingProviderNeverChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB)
		n.set(pC, answer("104.18.0.0"))
		h := newHarness(t, three, n)
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		st := state(t, h.lastEvent())
		if !slices.Equal(st.Agreed, []string{pA, pB}) && !slices.Equal(st.Agreed, []string{pB, pA}) {
			t.Errorf("agreed = %v", st.Agreed)
		}
		// The liar alone, with the others down or split, changes nothing.
		n.set(pA, refused)
		for range 5 {
			h.next()
		}
		n.set(pB, refused)
		for range 5 {
			h.next()
		}
		for _, ev := range h.j.Events()[1:] {
			if ev.Kind == event.KindDDNSIPUpdate || event.IsAction(ev.Kind) {
				t.Errorf("unexpected %s %v", ev.Kind, ev.Args)
			}
		}
		h.stop()
	})
}

func TestRunFlipFlopNeverChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		n.set(pB, refused)
		for i := range 20 {
			n.set(pC, answer([]string{"1.2.3.4", "93.184.216.34"}[i%2]))
			if i%3 == 0 {
				n.set(pA, refused)
			} else {
				n.set(pA, answer("93.184.216.34"))
			}
			h.next()
		}
		for _, ev := range h.j.Events()[1:] {
			if event.IsAction(ev.Kind) {
				t.Errorf("unexpected %s %v", ev.Kind, ev.Args)
			}
		}
		h.stop()
	})
}

func TestRunSingleProviderConfirmsInTwoRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.set(pA, answer("93.184.216.34"))
		h := newHarness(t, config.DDNS{Providers: []string{pA}}, n)
		h.start(event.Event{})
		h.expect("ddns-status") // the first state: provider ok, not confirmed yet
		h.next()
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		n.set(pA, answer("1.2.3.4"))
		h.next()
		h.expect()
		h.next()
		h.expect("ddns-ip-update 1.2.3.4 93.184.216.34")
		h.stop()
	})
}

func TestRunNoAnswerOncePerStreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		n.setAll(blackhole, pA, pB, pC)
		h.next()
		h.expect("ddns-status") // providers failed: health, not yet a streak
		h.next()
		h.expect("ddns-no-update") // the second round: an outage
		ev := h.lastEvent()
		if ev.Msg != "%% Unable to obtain External IP Address" || len(ev.Args) != 0 || ev.Level != event.LevelWarn {
			t.Errorf("no-update event %+v", ev)
		}
		st := state(t, ev)
		if st.NoAnswerSince == nil || st.IP != "93.184.216.34" {
			t.Errorf("state during the outage: %+v", st)
		}
		for range 30 {
			h.next()
		}
		h.expect() // still down: not again
		// Back with the same address: a status event (health), no action.
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		time.Sleep(time.Minute) // the outage backoff is at most a minute
		synctest.Wait()
		h.expect("ddns-status")
		if st := state(t, h.lastEvent()); st.NoAnswerSince != nil || st.Consensus != ddns.Accepted {
			t.Errorf("state after recovery: %+v", st)
		}
		// Down again: a new streak, a new report.
		n.setAll(refused, pA, pB, pC)
		h.next()
		h.next()
		h.expect("ddns-no-update")
		h.stop()
		// The outage spans a restart: no second report.
		h.start(h.j.LastState())
		h.next()
		h.expect()
		h.stop()
	})
}

func TestRunOutageBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(refused, pA, pB, pC)
		h := newHarness(t, three, n)
		h.start(event.Event{})
		// 10 minutes of outage at a 10 s interval: without backoff 61 queries
		// per provider; with the doubling capped at one minute: rounds at
		// 0, 10, 30, 70, 130, 190, ... seconds.
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		for _, p := range []string{pA, pB, pC} {
			if c := n.count(p); c < 10 || c > 14 {
				t.Errorf("%s asked %d times in 10 minutes of outage, want 10..14", p, c)
			}
		}
		// A failover re-checks at once, backoff cleared.
		before := n.count(pA)
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h.watch <- event.Event{Monitor: event.MonitorFailover, Kind: event.KindFailoverStandby}
		synctest.Wait()
		if n.count(pA) != before+1 {
			t.Errorf("no re-check after failover: %d queries, want %d", n.count(pA), before+1)
		}
		evs := h.j.Events()
		if last := evs[len(evs)-1]; !slices.ContainsFunc(evs, func(ev event.Event) bool { return ev.Kind == event.KindDDNSIPUpdate }) {
			t.Errorf("no ddns-ip-update after the re-check; last event %s", last.Kind)
		}
		h.stop()
	})
}

func TestRunFailingProviderBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB)
		n.set(pC, refused)
		h := newHarness(t, three, n)
		h.start(event.Event{})
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		// Doubling from 10 s to the 5 min cap: 0, 10, 30, 70, 150, 310, then
		// every 300 s: about 11 queries in 30 min instead of 181.
		if c := n.count(pC); c < 9 || c > 13 {
			t.Errorf("failing provider asked %d times in 30 min, want 9..13", c)
		}
		if c := n.count(pA); c != 181 {
			t.Errorf("healthy provider asked %d times, want 181", c)
		}
		st := state(t, h.j.LastState())
		p := st.Providers[2]
		if p.OK || p.Status != "failed" || p.LastError == "" {
			t.Errorf("failing provider state %+v", p)
		}
		h.stop()
	})
}

func TestRunFallbackOnlyWhenDNSCannotReachQuorum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC, pH)
		h := newHarness(t, config.DDNS{Providers: []string{pA, pB, pC, pH}}, n)
		h.start(event.Event{})
		h.next()
		if c := n.count(pH); c != 0 {
			t.Errorf("HTTP fallback asked %d times while DNS reached the quorum", c)
		}
		// Two DNS operators down: DNS alone cannot reach the quorum.
		n.setAll(refused, pA, pB)
		n.setAll(answer("1.2.3.4"), pC, pH)
		h.next()
		if c := n.count(pH); c != 1 {
			t.Errorf("HTTP fallback asked %d times, want 1", c)
		}
		h.expect("ddns-ip-update 93.184.216.34 unknown", "ddns-ip-update 1.2.3.4 93.184.216.34")
		h.stop()
	})
}

func TestRunFallbackStartsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		// A and B fail at once, C is blackholed: the fallback must not wait
		// for C's timeout, since C alone cannot make the quorum.
		n.setAll(refused, pA, pB)
		n.set(pC, blackhole)
		var askedAt time.Time
		start := time.Now()
		n.set(pH, func(context.Context) (string, error) {
			askedAt = time.Now()
			return "93.184.216.34", nil
		})
		h := newHarness(t, config.DDNS{Providers: []string{pA, pB, pC, pH}}, n)
		h.start(event.Event{})
		if askedAt.IsZero() || askedAt.Sub(start) != 0 {
			t.Errorf("fallback asked after %v, want at once", askedAt.Sub(start))
		}
		h.stop()
	})
}

func TestRunBlackholedProviderDoesNotDelayDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB)
		n.set(pC, blackhole)
		h := newHarness(t, three, n)
		start := time.Now()
		go func() {
			// Stop the clock right after the decision: the event must exist
			// long before the blackholed provider's timeout.
			time.Sleep(testTimeout / 2)
			evs := h.j.Events()
			if len(evs) == 0 || evs[0].Kind != event.KindDDNSIPUpdate {
				t.Errorf("no ddns-ip-update within %v", testTimeout/2)
			} else if d := evs[0].Time.Sub(start); d > testTimeout/5 {
				t.Errorf("decision after %v, want ≤ %v", d, testTimeout/5)
			}
		}()
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown", "ddns-status")
		if st := state(t, h.lastEvent()); st.Providers[2].Status != "failed" {
			t.Errorf("blackholed provider %+v", st.Providers[2])
		}
		h.stop()
	})
}

func TestRunRoundsDoNotOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		// Each query takes longer than the interval.
		slow := func(ctx context.Context) (string, error) {
			select {
			case <-time.After(15 * time.Second):
				return "93.184.216.34", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		n.setAll(slow, pA, pB, pC)
		h := newHarness(t, config.DDNS{Providers: []string{pA, pB, pC}, Timeout: time.Minute}, n)
		h.start(event.Event{})
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		n.mu.Lock()
		maxAct := n.maxAct
		n.mu.Unlock()
		if maxAct != 3 {
			t.Errorf("at most %d queries ran at once, want 3 (one round at a time)", maxAct)
		}
		// Rounds start every 15 s (0, 15, ..., 300), the clock at 305 s.
		if c := n.count(pA); c != 21 {
			t.Errorf("%d rounds in 305 s of 15 s rounds, want 21", c)
		}
		h.stop()
	})
}

func TestRunFaultsAreJournaledNotActedOn(t *testing.T) {
	payloads := []string{
		"1.2.3.4; reboot", "<html><body>1.2.3.4</body></html>", "$(reboot)", "1.2.3.4 5.6.7.8",
		"192.168.1.1", "100.64.1.1", "127.0.0.1", "\x00\xff\x1b[2J", "2a00:1450::1", strings.Repeat("A", 200),
	}
	for _, payload := range payloads {
		t.Run(fmt.Sprintf("%.20q", payload), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newFakeNet()
				n.setAll(answer(payload), pA, pB, pC)
				h := newHarness(t, three, n)
				h.start(event.Event{})
				h.next()
				h.next()
				evs := h.j.Events()
				var faults int
				for _, ev := range evs {
					switch ev.Kind {
					case ddns.KindProviderFault:
						faults++
						var d map[string]string
						if err := ev.DecodeData(&d); err != nil {
							t.Fatal(err)
						}
						if d["provider"] == "" || d["operator"] == "" || d["reason"] == "" || len(d["answer"]) > extip.MaxAnswer+3 {
							t.Errorf("fault data %v", d)
						}
						for _, c := range d["answer"] {
							if c < 0x20 || c > 0x7e {
								t.Errorf("unsanitized answer %q", d["answer"])
							}
						}
						if ev.Level != event.LevelWarn {
							t.Errorf("fault level %q", ev.Level)
						}
					case event.KindDDNSNoUpdate, ddns.KindStatus:
					default:
						t.Errorf("unexpected %s %v", ev.Kind, ev.Args)
					}
				}
				// One fault per provider and streak, not one per round.
				if faults != 3 {
					t.Errorf("%d fault events, want 3", faults)
				}
				h.stop()
			})
		})
	}
}

func TestRunAllowPrivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("10.0.1.2\n"), pA, pB, pC)
		h := newHarness(t, config.DDNS{Providers: []string{pA, pB, pC}, AllowPrivate: true}, n)
		h.start(event.Event{})
		h.expect("ddns-ip-update 10.0.1.2 unknown")
		h.stop()
	})
}

func TestRunIPv6TrackedSeparately(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		n.set(pA6, answer("2a00:1450:4001:82b::200e"))
		h := newHarness(t, config.DDNS{Providers: []string{pA, pB, pC, pA6}}, n)
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown") // one IPv6 operator: two rounds
		h.next()
		h.expect("ddns-ip6-update 2a00:1450:4001:82b::200e unknown")
		ev := h.lastEvent()
		if ev.Msg != "External IPv6 Address changed from unknown to 2a00:1450:4001:82b::200e" {
			t.Errorf("Msg = %q", ev.Msg)
		}
		st := state(t, ev)
		if st.IP != "93.184.216.34" || st.IP6 != "2a00:1450:4001:82b::200e" || st.ChangedAt6 == nil {
			t.Errorf("state %+v", st)
		}
		// IPv6 down: its own no-update, IPv4 unaffected.
		n.set(pA6, refused)
		h.next()
		h.expect("ddns-status")
		h.next()
		h.expect("ddns-no-update")
		var d map[string]any
		_ = h.lastEvent().DecodeData(&d)
		if d["family"] != "ipv6" {
			t.Errorf("no-update data %v", d)
		}
		h.stop()
		h.start(h.j.LastState())
		h.next()
		h.expect()
		h.stop()
	})
}

func TestRunCGNAT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, config.DDNS{Providers: []string{pA, pB, pC}, Interface: "wan0"}, n)
		h.ifAddrs = []netip.Addr{netip.MustParseAddr("192.168.1.2")}
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		h.ifMu.Lock()
		h.ifAddrs = []netip.Addr{netip.MustParseAddr("100.72.1.2"), netip.MustParseAddr("fe80::1")}
		h.ifMu.Unlock()
		h.next()
		h.expect("ddns-cgnat")
		st := state(t, h.lastEvent())
		if !st.CGNAT || st.CGNATAddress != "100.72.1.2" {
			t.Errorf("state %+v", st)
		}
		h.next()
		h.next()
		h.expect() // once per change
		h.stop()
		h.start(h.j.LastState()) // restored: no repeat
		h.expect()
		h.ifMu.Lock()
		h.ifAddrs = []netip.Addr{netip.MustParseAddr("81.2.3.4")}
		h.ifMu.Unlock()
		h.next()
		h.expect("ddns-cgnat")
		if st := state(t, h.lastEvent()); st.CGNAT {
			t.Errorf("state %+v", st)
		}
		h.stop()
	})
}

func TestRunStatusRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		// C flaps every round for 10 minutes.
		for i := range 60 {
			if i%2 == 0 {
				n.set(pC, refused)
			} else {
				n.set(pC, answer("93.184.216.34"))
			}
			h.next()
		}
		var status int
		for _, ev := range h.j.Events() {
			if ev.Kind == ddns.KindStatus {
				status++
			}
		}
		if status < 1 || status > 10 {
			t.Errorf("%d status events in 10 minutes, want 1..10 (at most one a minute)", status)
		}
		h.stop()
	})
}

func TestRunRestoreIgnoresBadState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		h.start(event.Event{Seq: 7, Monitor: "ddns", Kind: ddns.KindStatus, State: []byte(`{"ip": 5}`)})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		h.stop()
	})
}

func TestRunUnknownEventsDoNotRecheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		h.start(event.Event{})
		h.watch <- event.Event{Monitor: event.MonitorPing, Kind: event.KindPingResult}
		synctest.Wait()
		if c := n.count(pA); c != 1 {
			t.Errorf("%d queries after a ping event, want 1", c)
		}
		h.watch <- event.Event{Monitor: event.MonitorUpdown, Kind: event.KindUpdownOnline}
		synctest.Wait()
		if c := n.count(pA); c != 2 {
			t.Errorf("%d queries after updown-online, want 2", c)
		}
		h.stop()
	})
}

// realDeps are the real seams, as cmd/imon injects them, with the
// queriers built with opts.
func realDeps(opts extip.Options) ddns.Deps {
	return ddns.Deps{
		NewQuerier:     func(s extip.Spec) (extip.Querier, error) { return extip.New(s, opts) },
		InterfaceAddrs: ddns.InterfaceAddrs,
	}
}

func TestNewRejectsBadProviders(t *testing.T) {
	t.Parallel()
	for _, ps := range [][]string{
		{"ftp://x"}, {pA, pA}, {"dns://1.1.1.1/a.test?type=MX"},
	} {
		if _, err := ddns.New(config.DDNS{Providers: ps}, realDeps(extip.Options{})); err == nil {
			t.Errorf("New(%q) succeeded", ps)
		}
	}
	if _, err := ddns.New(config.DDNS{}, realDeps(extip.Options{})); err != nil {
		t.Errorf("New with the default providers: %v", err)
	}
	deps := realDeps(extip.Options{})
	deps.InterfaceAddrs = nil
	if _, err := ddns.New(config.DDNS{}, deps); err == nil || !strings.Contains(err.Error(), "InterfaceAddrs") {
		t.Errorf("New without InterfaceAddrs: %v", err)
	}
}

// TestRunAnswersLiveness: between rounds the loop answers the agent
// watchdog's liveness requests at once, without running a round for them.
func TestRunAnswersLiveness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		h.live = make(chan func(), 1)
		h.start(event.Event{})
		h.expect("ddns-ip-update 93.184.216.34 unknown")
		for i := range 3 {
			answered := make(chan struct{})
			h.live <- func() { close(answered) }
			synctest.Wait()
			select {
			case <-answered:
			default:
				t.Fatalf("liveness request %d not answered", i)
			}
		}
		h.expect() // no round ran for them
		h.next()
		h.expect() // and the next round is on time, unchanged
		h.stop()
	})
}

// TestRunRoundsOnEnvTicks: with env.Every (imon's: the probe engine's
// grid), a round runs at each of its ticks, asked for at the interval, and
// none between them.
func TestRunRoundsOnEnvTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		n.setAll(answer("93.184.216.34"), pA, pB, pC)
		h := newHarness(t, three, n)
		ticks := make(chan time.Time, 1)
		var period time.Duration
		h.every = func(_ context.Context, d time.Duration) <-chan time.Time { period = d; return ticks }
		h.start(event.Event{})
		time.Sleep(5 * testInterval)
		synctest.Wait()
		if c := n.count(pA); c != 1 || period != testInterval {
			t.Fatalf("without a tick: %d rounds, ticks asked every %v; want 1 (the first), %v", c, period, testInterval)
		}
		for range 2 {
			ticks <- time.Now()
			time.Sleep(settle)
			synctest.Wait()
		}
		if c := n.count(pA); c != 3 {
			t.Errorf("%d rounds after two ticks, want 3", c)
		}
		h.stop()
	})
}
