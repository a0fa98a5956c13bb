package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/testbed"
)

// TestSoak runs the real agent on the failover testbed with every monitor
// at a 100 ms interval (failover, ddns against two whoami DNS servers in the
// testbed's internet, updown with its DNS check, ping) and the action
// script run for every action event, and cuts the primary's upstream for
// 6 s every 30 s. The goroutine count and RSS are printed at the start and
// the end and must stay flat; the journal stays gap-free and the action
// script gets every action event once. 2 minutes by default, 30 minutes
// with IMON_FULL=1 (make soak).
func TestSoak(t *testing.T) {
	fltRequire(t)
	b := testbed.New(t)
	// whoami: the TXT answer is the address the query came from (the
	// ISP's masquerade address), as the public whoami services do.
	whoami := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeTXT {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: q.Question[0].Qclass}, Txt: []string{host}})
		} else if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(testbed.Target.String())})
		}
		_ = w.WriteMsg(m)
	})
	fltServeDNS(t, b.Inet, testbed.DNSAddr.String()+":53", whoami)
	fltServeDNS(t, b.Inet, testbed.HTTPAddr.String()+":53", whoami)

	dir := fltDir(t)
	script, calls, _, _ := fltScript(t, dir)
	cfg := writeFltConfig(t, dir, "soak", fmt.Sprintf(`"action": %q`, script), strings.Join([]string{
		fmt.Sprintf(`"ddns": {"enable": true, "interval": 0.1, "timeout": 0.5, "allow-private": true,
    "providers": ["dns://%s/whoami.soak.test?type=TXT", "dns://%s/whoami.other.test?type=TXT"]}`, testbed.DNSAddr, testbed.HTTPAddr),
		fmt.Sprintf(`"updown": {"enable": true, "interval": 0.1, "pingcount": 2, "pingwait": 1, "monitorip": %q,
    "dnsserver": %q, "dnslookup": "probe.soak.test"}`, testbed.Target, testbed.DNSAddr),
		fltFailoverSection(0.1, 2, 8),
		fmt.Sprintf(`"ping": {"enable": true, "interval": 0.1, "pingcount": 1, "pingwait": 0.5, "monitorip": %q}`, testbed.Target2),
	}, ",\n  "))
	routes := fltWatchRoutes(t, b.Host)
	a := fltStart(t, b.Host.Name, cfg)
	w := fltWatch(t, cfg)
	w.WaitFor(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	w.WaitFor(20*time.Second, "ddns-ip-update", harness.Kind(event.KindDDNSIPUpdate))
	time.Sleep(15 * time.Second) // warm up: heap, journal file, first cycles
	st0 := fltMustStatus(t, cfg)
	d := fltPick(2*time.Minute, 30*time.Minute)
	t.Logf("soak %v (IMON_FULL=1: 30 min); start: %d goroutines, RSS %s (anonymous %s), journal at seq %d",
		d, st0.Goroutines, fltMB(st0.RSSBytes), fltMB(st0.RssAnon), st0.Journal.LastSeq)

	start := time.Now()
	cycle := time.NewTicker(30 * time.Second)
	defer cycle.Stop()
	cuts := 0
	for time.Since(start) < d {
		select {
		case <-cycle.C:
		case <-a.done:
			t.Fatalf("agent exited: %v", a.err)
		}
		b.CutUpstream(0)
		cuts++
		fltWaitUntil(t, 10*time.Second, "the switch to the standby", func() bool { return fltOneVia(routes.Current(), "wan1") })
		time.Sleep(6 * time.Second) // the outage lasts this long
		b.Heal()
		fltWaitUntil(t, 20*time.Second, "the failback", func() bool { return fltOneVia(routes.Current(), "wan0") })
		st := fltMustStatus(t, cfg)
		t.Logf("%4.0fs: %d goroutines, RSS %s (anonymous %s), journal at seq %d",
			time.Since(start).Seconds(), st.Goroutines, fltMB(st.RSSBytes), fltMB(st.RssAnon), st.Journal.LastSeq)
	}
	time.Sleep(5 * time.Second) // after the last failback: the same quiet state as at the start
	st1 := fltMustStatus(t, cfg)
	elapsed := time.Since(start)
	rate := float64(st1.Journal.LastSeq-st0.Journal.LastSeq) / elapsed.Seconds()
	t.Logf("end after %v and %d upstream cuts: %d goroutines, RSS %s (anonymous %s), %.1f events/s journaled",
		elapsed.Round(time.Second), cuts, st1.Goroutines, fltMB(st1.RSSBytes), fltMB(st1.RssAnon), rate)
	fltLeak(t, "soak", st0, st1)
	if err := a.Stop(); err != nil {
		t.Errorf("agent stop: %v", err)
	}
	evs := fltJournal(t, cfg)
	fltGapFree(t, evs)
	fltDelivery(t, evs, fltCalls(t, calls), 0)
	if n := fltCount(evs, event.KindMonitorError); n > 0 {
		t.Errorf("%d monitor-error events", n)
	}
	kinds := map[string]int{}
	for _, ev := range evs {
		kinds[ev.Kind]++
	}
	out, _ := json.Marshal(kinds)
	t.Logf("journal: %d events by kind %s", len(evs), out)
	if kinds[event.KindDDNSIPUpdate] < 2*cuts {
		t.Errorf("%d ddns-ip-update for %d failovers and failbacks", kinds[event.KindDDNSIPUpdate], 2*cuts)
	}
}
