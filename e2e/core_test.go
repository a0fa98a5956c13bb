package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
)

// coreBed is the updown/ping testbed: namespace "host" runs imon, namespace
// "tgt" holds the monitored target, an addping target and a DNS server.
type coreBed struct {
	host, tgt *harness.NS
	dir       string
	action    string
	log       string
}

const (
	tgtIP     = "10.99.0.2"
	tgtIP2    = "10.99.0.3"
	coreHost  = "10.99.0.1"
	dnsName   = "probe.imon.test"
	dnsAnswer = "10.99.0.53"
)

func newCoreBed(t *testing.T) *coreBed {
	nettest.NeedCmd(t, "ip", "nft")
	b := &coreBed{host: harness.NewNS(t, "host"), tgt: harness.NewNS(t, "tgt"), dir: t.TempDir()}
	if err := os.Chmod(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	harness.Link(t, b.host, "wan0", coreHost+"/24", b.tgt, "eth0", tgtIP+"/24")
	b.tgt.Sh(t, "ip", "addr", "add", tgtIP2+"/24", "dev", "eth0")
	b.action, b.log = harness.RecordingAction(t, b.dir)
	startDNS(t, b.tgt, tgtIP+":53")
	return b
}

// startDNS serves A records for dnsName inside ns.
func startDNS(t *testing.T, ns *harness.NS, addr string) {
	pc := ns.ListenPacket(t, "udp", addr)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Name == dns.Fqdn(dnsName) && r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(dnsAnswer)})
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
}

func (b *coreBed) config(t *testing.T, name, sections string) string {
	cfg := fmt.Sprintf(`{
  "global": {"action": %q, "instance": %q},
  %s,
  "journal": {"path": %q, "socket": %q}
}`, b.action, name, sections, filepath.Join(b.dir, name+".db"), filepath.Join(b.dir, name+".sock"))
	return harness.WriteFile(t, b.dir, "imon-"+name, cfg, 0o644)
}

// blackhole drops packets from the host to ip: all of them, or ICMP only.
func (b *coreBed) blackhole(t *testing.T, ip string, icmpOnly bool) {
	rule := fmt.Sprintf("ip daddr %s drop", ip)
	if icmpOnly {
		rule = fmt.Sprintf("ip daddr %s icmp type echo-request drop", ip)
	}
	b.host.Nft(t, fmt.Sprintf("table ip imtest\ndelete table ip imtest\ntable ip imtest {\n chain out {\n  type filter hook output priority 0;\n  %s\n }\n}\n", rule))
}

func (b *coreBed) heal(t *testing.T) {
	b.host.Nft(t, "table ip imtest\ndelete table ip imtest\n")
}

var durationArg = regexp.MustCompile(`^\d+:\d+:\d+:\d+$`)

// TestUpdownEndToEnd runs the real binary: the target goes offline (DNS
// blackholed too), comes back online with the outage duration, and a ping
// blackhole with a working DNS server is refuted. The action script's argv
// is checked against docs/action.md.
func TestUpdownEndToEnd(t *testing.T) {
	b := newCoreBed(t)
	cfg := b.config(t, "updown", fmt.Sprintf(`"updown": {"enable": true, "interval": 1, "pingcount": 2, "pingwait": 1,
    "monitorip": %q, "addping": %q, "dnsserver": %q, "dnslookup": %q}`, tgtIP, tgtIP2, tgtIP, dnsName))
	harness.Start(t, b.host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))

	// Ping blackholed, DNS answers: refuted, not offline.
	b.blackhole(t, tgtIP, true)
	w.Next(15*time.Second, "updown-refuted", harness.Kind("updown-refuted"))
	for _, ev := range w.Seen() {
		if ev.Kind == event.KindUpdownOffline {
			t.Fatalf("offline while DNS answered: %v", ev)
		}
	}

	// Everything to the target blackholed (DNS too): offline.
	b.blackhole(t, tgtIP, false)
	off := w.Next(20*time.Second, "updown-offline", harness.Kind(event.KindUpdownOffline))
	if got, want := off.Args, []string{tgtIP}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("offline args = %q, want %q", got, want)
	}
	if !strings.Contains(off.Msg, "Monitored IP "+tgtIP+" offline") {
		t.Errorf("offline msg = %q", off.Msg)
	}
	if !strings.Contains(string(off.Data), tgtIP2) {
		t.Errorf("offline data does not report the addping target %s: %s", tgtIP2, off.Data)
	}

	b.heal(t)
	on := w.Next(20*time.Second, "updown-online", harness.Kind(event.KindUpdownOnline))
	if len(on.Args) != 2 || on.Args[0] != tgtIP || !durationArg.MatchString(on.Args[1]) {
		t.Errorf("online args = %q, want [%s D:H:M:S]", on.Args, tgtIP)
	}

	// The action script got exactly ACTION INSTANCE SYSLOGFLAG COMMAND ARGS.
	deadline := time.Now().Add(10 * time.Second)
	var calls [][]string
	for time.Now().Before(deadline) {
		if calls = harness.ActionCalls(t, b.log); len(calls) >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a file another process writes
	}
	want := [][]string{{"updown", "1", "updown-offline", tgtIP}, {"updown", "1", "updown-online", tgtIP, on.Args[1]}}
	if len(calls) != 2 {
		t.Fatalf("action calls = %q, want %q", calls, want)
	}
	for i := range want {
		if strings.Join(calls[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("action call %d = %q, want %q", i, calls[i], want[i])
		}
	}
}

// TestPingEndToEnd: ping-result events and the action argv
// IP:ALIVE:MINRTT:AVGRTT:MAXRTT:LOSS:JITTER.
func TestPingEndToEnd(t *testing.T) {
	b := newCoreBed(t)
	cfg := b.config(t, "ping", fmt.Sprintf(`"ping": {"enable": true, "interval": 1, "pingcount": 3, "pingwait": 1, "monitorip": %q}`, tgtIP2))
	harness.Start(t, b.host.Name, cfg)
	w := harness.Watch(t, cfg)
	res := w.WaitFor(20*time.Second, "ping-result", harness.Kind(event.KindPingResult))
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(tgtIP2) + `:True:\d+\.\d+:\d+\.\d+:\d+\.\d+:0(\.0+)?:\d+\.\d+$`)
	if len(res.Args) != 1 || !re.MatchString(res.Args[0]) {
		t.Fatalf("ping-result args = %q, want one IP:True:MIN:AVG:MAX:0:JITTER", res.Args)
	}
	b.blackhole(t, tgtIP2, false)
	dead := w.Next(20*time.Second, "ping-result with loss", func(ev event.Event) bool {
		return ev.Kind == event.KindPingResult && len(ev.Args) == 1 && strings.Contains(ev.Args[0], ":False:")
	})
	if !strings.HasSuffix(dead.Args[0], ":1:0.000") && !strings.Contains(dead.Args[0], ":1.0") && !strings.Contains(dead.Args[0], ":1:") {
		t.Errorf("dead ping-result = %q, want loss 1", dead.Args[0])
	}
}
