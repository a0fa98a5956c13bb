package ddns_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"imon/agent/monitor"
	"imon/agent/monitor/ddns"
	"imon/agent/probe/extip"
	"imon/agent/probe/extip/extiptest"
	"imon/config"
	"imon/event"
	"imon/internal/nettest"
)

// switchable is a DNS handler whose answer the test changes.
type switchable struct {
	text atomic.Pointer[string]
}

func newSwitchable(text string) *switchable {
	s := &switchable{}
	s.set(text)
	return s
}

func (s *switchable) set(text string) { s.text.Store(&text) }

func (s *switchable) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	extiptest.Answer(*s.text.Load()).ServeDNS(w, r)
}

// waitFor returns the next event of kind, failing on any other action
// event, or after 10 s.
func waitFor(t *testing.T, j *nettest.Recorder, kind string) event.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-j.C:
			if ev.Kind == kind {
				return ev
			}
			if event.IsAction(ev.Kind) {
				t.Fatalf("unexpected %s %v while waiting for %s", ev.Kind, ev.Args, kind)
			}
		case <-timeout:
			t.Fatalf("no %s within 10s", kind)
		}
	}
}

// TestRunAgainstLoopbackServers runs the monitor with the real queriers
// against DNS servers and an HTTP fallback on loopback (three operators on
// 127.0.0.1, .2, .3; the fallback on .4), in real time.
func TestRunAgainstLoopbackServers(t *testing.T) {
	t.Parallel()
	a, b, c := newSwitchable("93.184.216.34"), newSwitchable("93.184.216.34"), newSwitchable("93.184.216.34")
	sa := extiptest.StartDNS(t, "127.0.0.1", a)
	sb := extiptest.StartDNS(t, "127.0.0.2", b)
	sc := extiptest.StartDNS(t, "127.0.0.3", c)
	var httpAnswer atomic.Pointer[string]
	ans := "93.184.216.34\n"
	httpAnswer.Store(&ans)
	var httpHits atomic.Int32
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpHits.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, *httpAnswer.Load())
	}))
	_ = hs.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)

	cfg := config.DDNS{
		Providers: []string{sa.Provider("a.test", "A"), sb.Provider("b.test", "TXT") + "&class=CH", sc.Provider("c.test", "TXT"), hs.URL + "/ip"},
		Probe:     config.Probe{Interval: 100 * time.Millisecond},
		Timeout:   500 * time.Millisecond,
	}
	m, err := ddns.New(cfg, realDeps(extip.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	j := &nettest.Recorder{C: make(chan event.Event, 100)}
	ctx, cancel := context.WithCancel(t.Context())
	watch := make(chan event.Event)
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, monitor.Env{Instance: "t", Emit: j.Emit, Watch: func(context.Context) <-chan event.Event { return watch }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	ev := waitFor(t, j, event.KindDDNSIPUpdate)
	if !slices.Equal(ev.Args, []string{"93.184.216.34", "unknown"}) {
		t.Fatalf("first update %v", ev.Args)
	}
	if httpHits.Load() != 0 {
		t.Errorf("HTTP fallback asked while DNS reached the quorum")
	}
	// C injects a command: a fault naming C, never an update.
	c.set("1.2.3.4; reboot")
	f := waitFor(t, j, ddns.KindProviderFault)
	var d map[string]string
	if err := f.DecodeData(&d); err != nil || d["provider"] != cfg.Providers[2] || d["reason"] != "not an address" || d["answer"] != "1.2.3.4; reboot" {
		t.Errorf("fault %v (%v)", d, err)
	}
	// The address really changes, seen by A and B: reported at once.
	a.set("5.6.7.8")
	b.set("5.6.7.8")
	ev = waitFor(t, j, event.KindDDNSIPUpdate)
	if !slices.Equal(ev.Args, []string{"5.6.7.8", "93.184.216.34"}) {
		t.Fatalf("update %v", ev.Args)
	}
	// B lies with a valid address: A alone cannot reach the quorum, so the
	// HTTP fallback is asked and breaks the tie.
	b.set("1.1.1.1")
	ans2 := "9.9.9.9"
	httpAnswer.Store(&ans2)
	a.set("9.9.9.9")
	ev = waitFor(t, j, event.KindDDNSIPUpdate)
	if !slices.Equal(ev.Args, []string{"9.9.9.9", "5.6.7.8"}) {
		t.Fatalf("update %v", ev.Args)
	}
	if httpHits.Load() == 0 {
		t.Error("HTTP fallback not asked")
	}
	var st ddns.State
	if err := ev.DecodeState(&st); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Agreed, []string{cfg.Providers[0], cfg.Providers[3]}) {
		t.Errorf("agreed %v", st.Agreed)
	}
}

// median returns the median of ds.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchRound times rounds of a fresh monitor (no known address, so each
// round confirms one): the time from the round's start to the journaled
// ddns-ip-update, and to the round's end. Each benchmark iteration runs
// samples rounds, so that `make bench` (-benchtime 1x) still reports a
// median.
func benchRound(b *testing.B, cfg config.DDNS, samples int) (decision, round []time.Duration) {
	m, err := ddns.New(cfg, realDeps(extip.Options{}))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for range samples {
			var decidedAt time.Time
			start := time.Now()
			env := monitor.Env{Instance: "bench", Emit: func(_ context.Context, ev event.Event) (event.Event, error) {
				if ev.Kind == event.KindDDNSIPUpdate {
					decidedAt = time.Now()
				}
				return ev, nil
			}}
			if err := m.RoundForTest(b.Context(), env); err != nil {
				b.Fatal(err)
			}
			end := time.Since(start)
			if decidedAt.IsZero() {
				b.Fatal("round confirmed no address")
			}
			decision = append(decision, decidedAt.Sub(start))
			round = append(round, end)
		}
	}
	return decision, round
}

// BenchmarkConfirmThreeProviders: three DNS operators on loopback answer;
// target: confirmed address ≤ 50 ms median.
func BenchmarkConfirmThreeProviders(b *testing.B) {
	var ps []string
	for i, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		s := extiptest.StartDNS(b, ip, extiptest.Answer("93.184.216.34"))
		ps = append(ps, s.Provider(fmt.Sprintf("op%d.test", i), []string{"A", "TXT", "A"}[i]))
	}
	decision, _ := benchRound(b, config.DDNS{Providers: ps, Timeout: 2 * time.Second}, 101)
	b.ReportMetric(ms(median(decision)), "ms-median-confirm")
	b.ReportMetric(ms(slices.Max(decision)), "ms-max-confirm")
	if median(decision) > 50*time.Millisecond {
		b.Errorf("median %v above the 50 ms target", median(decision))
	}
}

// BenchmarkConfirmOneBlackholed: two operators answer, the third never
// does; target: confirmed address within its timeout (queries in
// parallel), here 500 ms.
func BenchmarkConfirmOneBlackholed(b *testing.B) {
	const timeout = 500 * time.Millisecond
	s1 := extiptest.StartDNS(b, "127.0.0.1", extiptest.Answer("93.184.216.34"))
	s2 := extiptest.StartDNS(b, "127.0.0.2", extiptest.Answer("93.184.216.34"))
	hole := extiptest.StartBlackhole(b, "127.0.0.3")
	ps := []string{s1.Provider("a.test", "A"), "dns://" + hole + "/c.test?type=A", s2.Provider("b.test", "TXT")}
	decision, round := benchRound(b, config.DDNS{Providers: ps, Timeout: timeout}, 5)
	b.ReportMetric(ms(timeout), "ms-timeout")
	b.ReportMetric(ms(median(decision)), "ms-median-confirm")
	b.ReportMetric(ms(slices.Max(decision)), "ms-max-confirm")
	b.ReportMetric(ms(median(round)), "ms-median-round")
	if slices.Max(decision) > timeout {
		b.Errorf("confirmation took %v, beyond the %v timeout", slices.Max(decision), timeout)
	}
}
