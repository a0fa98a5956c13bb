package probe_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"imon/agent/probe"
	"imon/agent/probe/probetest"
)

// TestNetns runs the real implementations against a testbed of two network
// namespaces. The checks themselves run in TestNetnsChild, a copy of this
// test binary executed inside namespace A, so that not a single packet can
// leave from the machine's own namespace.
func TestNetns(t *testing.T) {
	if probetest.InChild() {
		t.Skip("parent of TestNetnsChild")
	}
	tb := probetest.NewTestbed(t)
	tb.InstallBlackholes(t)
	tb.RunInNetns(t, tb.A, "TestNetnsChild", 2*time.Minute)
}

// slack is added to upper time bounds: the test machine is shared and
// -race slows everything down; the bounds still catch a hang or a missing
// timeout.
const slack = 500 * time.Millisecond

func TestNetnsChild(t *testing.T) {
	if !probetest.InChild() {
		t.Skip("run by TestNetns inside a network namespace")
	}
	probetest.AssertNotHostNetns(t)
	tb := probetest.ChildTestbed(t)
	unroutable := netip.MustParseAddr("198.19.0.1") // no route in A: ENETUNREACH
	blackhole := func(on bool) { tb.Blackhole(t, tb.AddrB, on) }
	pinger := probe.NewPinger(nil)
	ctx := t.Context()

	t.Run("PingReachable", func(t *testing.T) {
		opt := probe.PingOptions{Count: 3, Spacing: 100 * time.Millisecond, Wait: time.Second}
		start := time.Now()
		r, err := pinger.Ping(ctx, tb.AddrB, opt)
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if r.Sent != 3 || r.Recv != 3 || r.Loss != 0 || !r.Alive() || len(r.RTTs) != 3 {
			t.Fatalf("result %+v", r)
		}
		if r.Min <= 0 || r.Min > r.Avg || r.Avg > r.Max || r.Max > 100*time.Millisecond {
			t.Errorf("rtts min %v avg %v max %v", r.Min, r.Avg, r.Max)
		}
		// All replies in: returns at the tick after the last one, not at
		// the budget. On the grid: first send at the next tick (<= 250ms),
		// the spacing rounded up to 250ms, the last reply read one tick
		// later: <= 1s, against 1.5s for the budget on the grid.
		if el > 1250*time.Millisecond {
			t.Errorf("took %v, want at most 4 ticks", el)
		}
	})

	t.Run("PingIPv6", func(t *testing.T) {
		// Warm-up: right after the links come up, the first neighbour
		// solicitation is sometimes lost here and retransmitted a second
		// later; that is the kernel's, not the prober's.
		_, _ = pinger.Ping(ctx, tb.AddrB6, probe.PingOptions{Count: 1, Wait: 3 * time.Second})
		r, err := pinger.Ping(ctx, tb.AddrB6, probe.PingOptions{Count: 2, Spacing: 100 * time.Millisecond, Wait: time.Second})
		if err != nil || r.Recv != 2 || r.Addr != tb.AddrB6 {
			t.Fatalf("IPv6: %+v %v", r, err)
		}
	})

	t.Run("PingUntilReply", func(t *testing.T) {
		opt := probe.PingOptions{Count: 3, Spacing: 500 * time.Millisecond, Wait: time.Second, UntilReply: true}
		start := time.Now()
		r, err := pinger.Ping(ctx, tb.AddrB, opt)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 1 || r.Recv != 1 || r.Loss != 0 {
			t.Errorf("result %+v, want the round to end at the first reply", r)
		}
		if el := time.Since(start); el > 100*time.Millisecond+slack {
			t.Errorf("took %v, want one RTT", el)
		}
		r, err = pinger.Ping(ctx, tb.AddrB2, probe.PingOptions{Count: 2, Spacing: 100 * time.Millisecond, Wait: 300 * time.Millisecond, UntilReply: true})
		if err != nil || r.Sent != 2 || r.Alive() {
			t.Errorf("dead host: %+v %v", r, err)
		}
	})

	t.Run("PingBlackholed", func(t *testing.T) {
		opt := probe.PingOptions{Count: 2, Spacing: 100 * time.Millisecond, Wait: 300 * time.Millisecond}
		start := time.Now()
		r, err := pinger.Ping(ctx, tb.AddrB2, opt)
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if r.Alive() || r.Loss != 1 || r.Sent != 2 || r.Recv != 0 || r.NoRoute {
			t.Fatalf("result %+v", r)
		}
		// On the grid: the first request at once, the second at the next
		// tick, its 300ms wait settled at the second tick after that: 2 to
		// 3 ticks.
		if el < 2*probe.Grid-50*time.Millisecond || el > 3*probe.Grid+slack {
			t.Errorf("took %v, want 2 to 3 ticks (%v)", el, probe.Grid)
		}
	})

	t.Run("PingUnreachableNetwork", func(t *testing.T) {
		start := time.Now()
		r, err := pinger.Ping(ctx, unroutable, probe.PingOptions{Count: 2, Spacing: 100 * time.Millisecond, Wait: 500 * time.Millisecond})
		if err != nil {
			t.Fatalf("unreachable network must be a lost round, got error %v", err)
		}
		if r.Alive() || r.Loss != 1 || !r.NoRoute {
			t.Fatalf("result %+v, want every request lost for want of a route (NoRoute)", r)
		}
		if el := time.Since(start); el > 2*probe.Grid+slack {
			t.Errorf("took %v; a send error is known at once (two requests on two ticks)", el)
		}
	})

	t.Run("PingSource", func(t *testing.T) {
		r, err := pinger.Ping(ctx, tb.AddrB, probe.PingOptions{Count: 1, Wait: time.Second, Source: tb.AddrA})
		if err != nil || !r.Alive() {
			t.Fatalf("with local source: %+v, %v", r, err)
		}
		// SO_MARK needs CAP_NET_ADMIN (root here); without a fwmark rule
		// the main table still routes it.
		r, err = pinger.Ping(ctx, tb.AddrB, probe.PingOptions{Count: 1, Wait: time.Second, Source: tb.AddrA, Mark: 0x1c9})
		if err != nil || !r.Alive() {
			t.Fatalf("with a mark: %+v, %v", r, err)
		}
		_, err = pinger.Ping(ctx, tb.AddrB, probe.PingOptions{Count: 1, Wait: time.Second, Source: netip.MustParseAddr("198.18.0.99")})
		if err == nil {
			t.Fatal("a non-local source must be an error (nothing could be sent)")
		}
	})

	t.Run("PingCancel", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := pinger.Ping(cctx, tb.AddrB2, probe.PingOptions{Count: 5, Spacing: time.Second, Wait: time.Second})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if el := time.Since(start); el > 150*time.Millisecond+slack {
			t.Errorf("cancel took %v", el)
		}
	})

	t.Run("Stream", func(t *testing.T) {
		sp := probe.NewPinger(nil)
		sctx, cancel := context.WithCancel(ctx)
		// A round and another stream share the engine meanwhile.
		other, err := sp.Stream(sctx, tb.AddrB6, probe.StreamOptions{Spacing: 500 * time.Millisecond, Wait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range other { //nolint:revive // drained until the stream closes
			}
		}()
		go func() { _, _ = sp.Ping(sctx, tb.AddrB, probe.PingOptions{Count: 4, Spacing: 250 * time.Millisecond}) }()
		opt := probe.StreamOptions{Spacing: 250 * time.Millisecond, Wait: 300 * time.Millisecond}
		ch, err := sp.Stream(sctx, tb.AddrB, opt)
		if err != nil {
			t.Fatal(err)
		}
		var tr probe.Tracker
		next := func() probe.Outcome {
			t.Helper()
			select {
			case o, ok := <-ch:
				if !ok {
					t.Fatal("stream closed early")
				}
				if o.Seq == 0 {
					t.Fatalf("status outcome without Recheck: %+v", o)
				}
				tr.Add(o)
				return o
			case <-time.After(2 * time.Second):
				t.Fatal("no outcome for 2s")
			}
			return probe.Outcome{}
		}
		// Up: 12 replies, Seq gap-free (sorted by Seq all the same).
		got := make([]probe.Outcome, 12)
		for range 12 {
			o := next()
			if o.Seq < 1 || o.Seq > 12 || got[o.Seq-1].Seq != 0 {
				for i, g := range got {
					t.Logf("%d: %+v", i+1, g)
				}
				for range 5 {
					t.Logf("later: %+v", next())
				}
				t.Fatalf("unexpected outcome %+v", o)
			}
			got[o.Seq-1] = o
		}
		for i, o := range got {
			if !o.OK || o.RTT <= 0 || o.RTT > opt.Wait || o.Err != nil {
				t.Errorf("outcome %d: %+v", i+1, o)
			}
			// Each reply is read at the tick after its send, before the
			// next send: nothing was in flight at any read.
			if o.Newest < o.Seq || o.InFlight != nil || o.Read.Before(o.At) {
				t.Errorf("outcome %d: Newest %d, Read %v, InFlight %v (At %v)", i+1, o.Newest, o.Read, o.InFlight, o.At)
			}
		}
		first, last := got[0], got[11]
		// Paced: 11 gaps of the spacing rounded to the nearest grid tick
		// (lenient: the test machine is shared).
		per := probe.Grid * max((opt.Spacing+probe.Grid/2)/probe.Grid, 1)
		if span, want := last.Sent.Sub(first.Sent), 11*per; span < want-per || span > want+3*per {
			t.Errorf("12 probes spread over %v, want ~%v", span, want)
		}
		// Blackholed: losses, each reported Wait after its send.
		blackhole(true)
		cut := time.Now()
		var flights int
		for tr.LostStreak() < 3 {
			o := next()
			if !o.OK {
				if d := o.At.Sub(o.Sent); d != opt.Wait {
					t.Errorf("lost probe %d reported %v after send, want %v", o.Seq, d, opt.Wait)
				}
				// The 300 ms wait is two ticks: the probe sent one tick
				// after it is in flight, with no reply, at the read.
				if o.Newest == o.Seq && tr.LostStreak() > 1 {
					flights++
					if len(o.InFlight) != 1 || !o.InFlight[0].After(o.Sent) || !o.InFlight[0].Before(o.Read) {
						t.Errorf("lost probe %d (sent %v, read %v): InFlight %v, want the one sent a tick later", o.Seq, o.Sent, o.Read, o.InFlight)
					}
				}
			}
			if time.Since(cut) > 2*time.Second {
				t.Fatal("no loss streak after blackholing")
			}
		}
		if flights == 0 {
			t.Error("no lost probe was the newest settled one")
		}
		// On the grid: the 300ms wait is settled two ticks after a send.
		if el := time.Since(cut); el > 2*probe.Grid+3*opt.Spacing+slack {
			t.Errorf("3 losses took %v after the cut", el)
		}
		// Back: replies again.
		blackhole(false)
		for tr.OKStreak() < 3 {
			next()
			if time.Since(cut) > 4*time.Second {
				t.Fatal("no replies after removing the blackhole")
			}
		}
		cancel()
		closed := time.After(time.Second)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-closed:
				t.Fatal("stream channel not closed 1s after cancel")
			}
		}
	})

	// StreamOptions.Recheck: after a loss settles with newer probes in
	// flight, the engine reads again half a tick later and, with nothing
	// settled, hands out a status outcome (Seq 0) in which the probe sent
	// at the loss's tick is in flight too; only for the first Recheck
	// losses in a row.
	t.Run("StreamRecheck", func(t *testing.T) {
		sp := probe.NewPinger(nil)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		opt := probe.StreamOptions{Spacing: probe.Grid, Wait: 3 * probe.Grid, Recheck: 2}
		ch, err := sp.Stream(sctx, tb.AddrB, opt)
		if err != nil {
			t.Fatal(err)
		}
		next := func() probe.Outcome {
			t.Helper()
			select {
			case o := <-ch:
				return o
			case <-time.After(2 * time.Second):
				t.Fatal("no outcome for 2s")
			}
			return probe.Outcome{}
		}
		for o := next(); !o.OK; o = next() {
		}
		blackhole(true)
		defer blackhole(false)
		var lost []probe.Outcome
		statuses := 0
		for len(lost) < 5 {
			o := next()
			switch {
			case o.Seq == 0:
				statuses++
				if len(lost) == 0 {
					t.Fatalf("status outcome before any loss: %+v", o)
				}
				l := lost[len(lost)-1]
				if d := o.Read.Sub(l.Read); o.Newest != l.Seq || d < probe.Grid/2 || d > probe.Grid/2+slack {
					t.Errorf("status %+v %v after the loss of %d (read %v)", o, d, l.Seq, l.Read)
				}
				if len(o.InFlight) != len(l.InFlight)+1 {
					t.Errorf("status in flight %d, want the loss's %d and the probe sent at its tick", len(o.InFlight), len(l.InFlight))
				}
			case !o.OK:
				lost = append(lost, o)
			}
		}
		if statuses != 2 {
			t.Errorf("%d status outcomes for 5 losses in a row, want 2 (Recheck)", statuses)
		}
	})

	// Streams of one spacing send on the same ticks whatever tick they
	// started on (two WANs' streams cost one wakeup a spacing, not two),
	// and a reply that arrives between ticks is still delivered with its
	// exact RTT, at the latest when its wait ends.
	t.Run("StreamsShareTicks", func(t *testing.T) {
		sp := probe.NewPinger(nil)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		opt := probe.StreamOptions{Spacing: time.Second, Wait: time.Second}
		a, err := sp.Stream(sctx, tb.AddrB, opt)
		if err != nil {
			t.Fatal(err)
		}
		<-a
		time.Sleep(3 * probe.Grid / 2) // start the second stream in another phase
		b, err := sp.Stream(sctx, tb.AddrB, opt)
		if err != nil {
			t.Fatal(err)
		}
		var sentA, sentB []time.Time
		for len(sentA) < 4 || len(sentB) < 4 {
			select {
			case o := <-a:
				if !o.OK || o.RTT <= 0 || o.RTT > 100*time.Millisecond {
					t.Errorf("stream a: %+v, want a reply with its RTT", o)
				}
				sentA = append(sentA, o.Sent)
			case o := <-b:
				if !o.OK || o.RTT <= 0 || o.RTT > 100*time.Millisecond {
					t.Errorf("stream b: %+v, want a reply with its RTT", o)
				}
				sentB = append(sentB, o.Sent)
			case <-time.After(3 * time.Second):
				t.Fatalf("no outcome for 3 s (a %d, b %d)", len(sentA), len(sentB))
			}
		}
		// b's first request goes out at once; its later ones on a's ticks.
		for _, sb := range sentB[1:] {
			near := false
			for _, sa := range sentA {
				if d := sb.Sub(sa).Abs(); d < probe.Grid/4 {
					near = true
				}
			}
			if !near {
				t.Errorf("stream b sent at %v, on none of stream a's ticks %v", sb.Format("15:04:05.000"), sentA)
			}
		}
	})

	t.Run("StreamUnreachableNetwork", func(t *testing.T) {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := pinger.Stream(sctx, unroutable, probe.StreamOptions{Spacing: 50 * time.Millisecond, Wait: 300 * time.Millisecond})
		if err != nil {
			t.Fatalf("a send error is a lost probe, not a stream error: %v", err)
		}
		for i := 1; i <= 4; i++ {
			select {
			case o := <-ch:
				if o.OK || o.Err == nil || o.Seq != uint64(i) {
					t.Fatalf("outcome %+v, want lost with send error, seq %d", o, i)
				}
			case <-time.After(time.Second):
				t.Fatal("stream stalled after a send error")
			}
		}
	})

	t.Run("StreamBadSource", func(t *testing.T) {
		_, err := pinger.Stream(ctx, tb.AddrB, probe.StreamOptions{Source: netip.MustParseAddr("198.18.0.99")})
		if err == nil {
			t.Fatal("want an error: the socket cannot bind a non-local source")
		}
	})

	srv := startDNS(t)

	t.Run("DNSCheck", func(t *testing.T) {
		c := probe.NewDNSChecker(nil)
		c.Timeout = 500 * time.Millisecond
		if err := c.Check(ctx, srv.addr, "ok.test"); err != nil {
			t.Errorf("ok.test: %v", err)
		}
		if err := c.Check(ctx, srv.addr, "v6only.test"); err != nil {
			t.Errorf("v6only.test (AAAA only): %v", err)
		}
		var rc *probe.RcodeError
		if err := c.Check(ctx, srv.addr, "nx.test"); !errors.As(err, &rc) || rc.Rcode != dns.RcodeNameError {
			t.Errorf("nx.test: %v, want NXDOMAIN", err)
		}
		if err := c.Check(ctx, srv.addr, "empty.test"); !errors.Is(err, probe.ErrNoRecords) {
			t.Errorf("empty.test: %v, want ErrNoRecords", err)
		}
		before := srv.tcp.Load()
		if err := c.Check(ctx, srv.addr, "big.test"); err != nil {
			t.Errorf("big.test (truncated over UDP): %v", err)
		}
		if srv.tcp.Load() == before {
			t.Error("truncated answer was not retried over TCP")
		}
		start := time.Now()
		if err := c.Check(ctx, srv.addr, "flaky.test"); err != nil {
			t.Errorf("flaky.test (first UDP query lost): %v", err)
		}
		if el := time.Since(start); el < 150*time.Millisecond || srv.flaky.Load() != 2 {
			t.Errorf("flaky.test answered after %v and %d queries; want a resend after ~166ms", el, srv.flaky.Load())
		}
		start = time.Now()
		err := c.Check(ctx, tb.AddrB2.String(), "ok.test") // blackholed server
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("blackholed server: %v, want a timeout", err)
		}
		if el := time.Since(start); el < 400*time.Millisecond || el > 500*time.Millisecond+slack {
			t.Errorf("blackholed server took %v, want the 500ms timeout", el)
		}
		start = time.Now()
		if err := c.Check(ctx, "127.0.0.1:1", "ok.test"); err == nil {
			t.Error("closed port: want an error")
		}
		if el := time.Since(start); el > slack {
			t.Errorf("closed port took %v, want at once", el)
		}
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		start = time.Now()
		c.Timeout = 5 * time.Second
		if err := c.Check(cctx, tb.AddrB2.String(), "ok.test"); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: %v", err)
		}
		if el := time.Since(start); el > 100*time.Millisecond+slack {
			t.Errorf("cancel took effect after %v", el)
		}
	})

	t.Run("Resolver", func(t *testing.T) {
		r := probe.NewResolver(nil)
		r.Timeout = 2 * time.Second
		target := srv.addr
		r.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target)
		}}
		a, err := r.Resolve(ctx, "ok.test")
		if err != nil || a != tb.AddrB {
			t.Errorf("ok.test = %v, %v", a, err)
		}
		a, err = r.Resolve(ctx, "2001:db8::1")
		if err != nil || a != netip.MustParseAddr("2001:db8::1") {
			t.Errorf("IP literal = %v, %v", a, err)
		}
		start := time.Now()
		if _, err := r.Resolve(ctx, "nx.test"); err == nil {
			t.Error("nx.test resolved")
		} else if msg := err.Error(); !strings.HasPrefix(msg, "lookup nx.test") || strings.Count(msg, "nx.test") != 1 {
			// Logged after "Cannot resolve ... nx.test: ": the name once.
			t.Errorf("nx.test error %q, want the resolver's own \"lookup nx.test ...\"", msg)
		}
		if el := time.Since(start); el > slack {
			t.Errorf("NXDOMAIN took %v, want at once", el)
		}
		target = netip.AddrPortFrom(tb.AddrB2, 53).String() // black hole
		r.Timeout = 500 * time.Millisecond
		start = time.Now()
		if _, err := r.Resolve(ctx, "other.test"); err == nil {
			t.Error("resolved through a black hole")
		}
		if el := time.Since(start); el > 500*time.Millisecond+slack {
			t.Errorf("black-holed resolver took %v, want the 500ms timeout", el)
		}
	})
}

type dnsServer struct {
	addr  string
	tcp   atomic.Int64
	flaky atomic.Int64
}

// startDNS serves test.: ok → AddrB, v6only → AAAA only, nx → NXDOMAIN,
// empty → NOERROR without records, big → truncated over UDP, flaky →
// ignores its first query.
func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{addr: pc.LocalAddr().String()}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		_, isTCP := w.RemoteAddr().(*net.TCPAddr)
		if isTCP {
			s.tcp.Add(1)
		}
		q := r.Question[0]
		switch q.Name {
		case "ok.test.", "big.test.":
			if q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR(q.Name + " 60 IN A 198.18.0.2")
				m.Answer = append(m.Answer, rr)
			}
			if q.Name == "big.test." && !isTCP {
				m.Answer = nil
				m.Truncated = true
			}
		case "v6only.test.":
			if q.Qtype == dns.TypeAAAA {
				rr, _ := dns.NewRR(q.Name + " 60 IN AAAA 2001:db8::2")
				m.Answer = append(m.Answer, rr)
			}
		case "empty.test.":
		case "flaky.test.": // the first query is "lost"
			if s.flaky.Add(1) == 1 {
				return
			}
			rr, _ := dns.NewRR(q.Name + " 60 IN A 198.18.0.2")
			m.Answer = append(m.Answer, rr)
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs last: after both Shutdowns
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

// BenchmarkNetnsStreamCPU reports the CPU time one stream (4 probes a
// second, the updown pace with interval 1 and pingcount 2) costs per
// minute, measured with getrusage in a child inside the testbed over 10 s
// per iteration.
func BenchmarkNetnsStreamCPU(b *testing.B) {
	if probetest.InChild() {
		b.Skip("child")
	}
	tb := probetest.NewTestbed(b)
	var total float64
	for range b.N {
		out := tb.RunInNetns(b, tb.A, "TestNetnsStreamCPUChild", time.Minute)
		m := regexp.MustCompile(`CPU_MS_PER_MIN ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			b.Fatal("no CPU figure")
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		total += v
	}
	b.ReportMetric(total/float64(b.N), "cpu-ms/min")
}

func TestNetnsStreamCPUChild(t *testing.T) {
	if !probetest.InChild() {
		t.Skip("run by BenchmarkNetnsStreamCPU inside a network namespace")
	}
	probetest.AssertNotHostNetns(t)
	tb := probetest.ChildTestbed(t)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := probe.NewPinger(nil).Stream(ctx, tb.AddrB, probe.StreamOptions{Spacing: 250 * time.Millisecond, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	before, start := cpu(), time.Now()
	n := 0
	for time.Since(start) < 10*time.Second {
		if o := <-ch; o.OK {
			n++
		}
	}
	used := cpu() - before
	fmt.Printf("CPU_MS_PER_MIN %.1f\n", float64(used)/1e6*6)
	if n < 35 {
		t.Errorf("%d replies in 10s, want ~40", n)
	}
}
