// Command demo is `make demo` as root: it builds a small home out of
// network namespaces with the e2e testbed (a router with two WANs, two
// ISPs, an "internet" with ping targets, two whoami DNS servers and an HTTP
// /ip service), starts a Mosquitto broker when one is installed, runs imon
// on the router with all four monitors, MQTT and Home Assistant discovery,
// and plays a scripted minute while the journal prints live:
//
//  1. the primary's upstream is cut: failover to the standby in about a
//     second, the external IP changes, the action script prints its
//     arguments;
//  2. it heals: failback to the primary after the hold (5 s);
//  3. the updown target is black-holed, then restored: an outage with its
//     duration;
//  4. `imon failover standby`, then `imon failover auto`;
//  5. a config change (the ping monitor every 2 s instead of 5) applied
//     with SIGHUP, as `systemctl reload` does: the agent checks the file,
//     stops and starts again in the same process, the route stays.
//
// Then `imon report` for the minute (when this imon has the command) and
// the path of its HTML page. Every namespace is removed at the end, also on
// Ctrl-C or failure. It exits 1 when the journal lacks a failover, an
// outage or an IP change.
//
// Environment: IMON (required) is the imon binary; DEMO_DIR the folder for
// the config, journal and report (default: a new temporary folder).
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/testbed"
	"imon/mqtt/mqtttest"
)

// hold is the failback hold of the demo (seconds).
const hold = 5

func main() {
	imon := os.Getenv("IMON")
	if imon == "" {
		fmt.Fprintln(os.Stderr, "demo: set IMON to the imon binary")
		os.Exit(2)
	}
	os.Setenv("IMON_BIN", imon) // the harness runs this binary
	testing.Init()              // the testbed asks testing.Short()
	flag.Parse()
	d := &demo{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Printf("\n== %v: removing the demo's namespaces\n", s)
		d.cleanup()
		os.Exit(130)
	}()
	code := d.run(imon)
	d.cleanup()
	os.Exit(code)
}

// demo is the scenario's testing.TB: the testbed and the harness are
// written for tests, and this adapter gives them cleanups, logs and
// failure. Methods not defined here are not used by them (the embedded nil
// interface would panic).
type demo struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	once     sync.Once
	dir      string
}

func (d *demo) Helper()      {}
func (d *demo) Name() string { return "demo" }
func (d *demo) Failed() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.failed }
func (d *demo) Cleanup(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cleanups = append(d.cleanups, f)
}
func (d *demo) Log(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (d *demo) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (d *demo) Error(args ...any)               { d.fail(); d.Log(args...) }
func (d *demo) Errorf(format string, args ...any) {
	d.fail()
	d.Logf(format, args...)
}
func (d *demo) Fatal(args ...any) { d.Error(args...); d.exit(1) }
func (d *demo) Fatalf(format string, args ...any) {
	d.Errorf("demo: "+format, args...)
	d.exit(1)
}
func (d *demo) Skip(args ...any) { d.Log(args...); d.exit(2) }
func (d *demo) Skipf(format string, args ...any) {
	d.Logf(format, args...)
	d.exit(2)
}
func (d *demo) SkipNow() { d.exit(2) }
func (d *demo) TempDir() string {
	dir, err := os.MkdirTemp(d.dir, "tmp-")
	if err != nil {
		d.Fatalf("temporary folder: %v", err)
	}
	d.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (d *demo) fail() { d.mu.Lock(); d.failed = true; d.mu.Unlock() }

// exit ends the demo after the cleanups (Fatal and Skip end a test).
func (d *demo) exit(code int) {
	d.cleanup()
	os.Exit(code)
}

// cleanup runs the cleanups once, newest first.
func (d *demo) cleanup() {
	d.once.Do(func() {
		d.mu.Lock()
		fs := d.cleanups
		d.cleanups = nil
		d.mu.Unlock()
		for i := len(fs) - 1; i >= 0; i-- {
			fs[i]()
		}
	})
}

func say(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

// whoami answers A and TXT questions with the querier's address, as the
// public whoami services do: behind the ISPs' NAT that is the ISP's
// address, the "external IP".
var whoami = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
	ip := net.ParseIP(host)
	if len(r.Question) == 1 && ip != nil {
		q := r.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: q.Qclass}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.To4()})
		case dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{host}})
		}
	}
	_ = w.WriteMsg(m)
})

// serve runs srv until the cleanup.
func (d *demo) serve(start func() error, stop func() error) {
	done := make(chan struct{})
	go func() { defer close(done); _ = start() }()
	d.Cleanup(func() { _ = stop(); <-done })
}

// services starts the internet's whoami DNS servers (two operators) and
// the HTTP /ip service; it returns the ddns providers.
func (d *demo) services(b *testbed.Bed) []string {
	dns2 := netip.MustParseAddr("203.0.113.54")
	b.Run(b.Inet, "ip", "addr", "add", dns2.String()+"/32", "dev", "lo")
	var providers []string
	for i, a := range []netip.Addr{testbed.DNSAddr, dns2} {
		hp := net.JoinHostPort(a.String(), "53")
		pc := b.Inet.ListenPacket(d, "udp", hp)
		ln := b.Inet.Listen(d, "tcp", hp)
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: whoami}, {Listener: ln, Handler: whoami}} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			d.serve(srv.ActivateAndServe, srv.Shutdown)
			<-started
		}
		providers = append(providers, fmt.Sprintf("dns://%s/whoami.%c.test?type=TXT", a, 'a'+i))
	}
	ln := b.Inet.Listen(d, "tcp", net.JoinHostPort(testbed.HTTPAddr.String(), "80"))
	srv := &http.Server{ReadHeaderTimeout: 2 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		io.WriteString(w, host+"\n")
	})}
	d.serve(func() error { return srv.Serve(ln) }, srv.Close)
	return append(providers, "http://"+testbed.HTTPAddr.String()+"/ip")
}

// broker starts Mosquitto on a unix socket (the agent runs in a network
// namespace; a socket file is reachable from any) when it is installed,
// and returns the mqtt section.
func (d *demo) broker() string {
	if _, err := os.Stat(mqtttest.Binary); err != nil {
		return `"mqtt": {"enable": false}`
	}
	sock := filepath.Join(d.dir, "mqtt.sock")
	br := mqtttest.Start(d, mqtttest.Options{Extra: []string{"listener 0 " + sock}})
	fmt.Printf("   mosquitto: unix socket %s (try: mosquitto_sub -h 127.0.0.1 -p %d -t 'imon/#' -t 'homeassistant/#' -v)\n", sock, br.Port)
	return fmt.Sprintf(`"mqtt": {"enable": true, "server": "unix://%s", "node-id": "demo"},
  "homeassistant": {"enable": true}`, sock)
}

// actionScript writes the demo's action script: it prints what imon hands
// it (docs/action.md).
func (d *demo) actionScript() string {
	p := filepath.Join(d.dir, "demo-action")
	script := "#!/bin/sh\necho \"action script got: $*\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		d.Fatalf("action script: %v", err)
	}
	return p
}

// run plays the scenario and returns the exit code.
func (d *demo) run(imon string) int {
	d.dir = os.Getenv("DEMO_DIR")
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "imon-demo.")
		if err != nil {
			d.Fatalf("%v", err)
		}
		d.dir = dir
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		d.Fatalf("%v", err)
	}
	start := time.Now()
	say("imon demo: a home in network namespaces (folder %s)", d.dir)
	fmt.Println(`   router "host": wan0 -> isp1 (primary, "Fibre"), wan1 -> isp2 (standby, "LTE"), no default route`)
	fmt.Println("   internet: ping targets 203.0.113.1/.2, whoami DNS 203.0.113.53/.54, HTTP /ip 203.0.113.80")
	b := testbed.New(d)
	providers := d.services(b)
	mqtt := d.broker()
	cfg := filepath.Join(d.dir, "imon-demo.json")
	conf := fmt.Sprintf(`{
  "global": {"instance": "demo", "action": %q, "note": "network-namespace demo"},
  "updown": {"enable": true, "interval": 1, "pingcount": 2, "pingwait": 1, "monitorip": %q, "addping": %q},
  "ping": {"enable": true, "interval": 5, "pingcount": 3, "pingwait": 1, "monitorip": %q},
  "ddns": {"enable": true, "interval": 2, "timeout": 1, "allow-private": true, "providers": [%q, %q, %q]},
  "failover": {"enable": true, "interval": 1, "pingcount": 2, "pingwait": 1, "prefer-primary": true, "failback-hold": %d,
    "primary-if": %q, "primary-name": "Fibre", "primary-gw": %q, "primary-ping": %q,
    "standby-if": %q, "standby-name": "LTE", "standby-gw": %q, "standby-ping": %q},
  "journal": {"path": %q, "socket": %q},
  %s
}
`, d.actionScript(), testbed.Target2, testbed.Target, testbed.Target, providers[0], providers[1], providers[2], hold,
		testbed.WANIf[0], testbed.Gateway[0], testbed.Target, testbed.WANIf[1], testbed.Gateway[1], testbed.Target,
		filepath.Join(d.dir, "demo.db"), filepath.Join(d.dir, "demo.sock"), mqtt)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		d.Fatalf("config: %v", err)
	}
	fmt.Printf("   config: %s\n", cfg)

	// The agent in the router's namespace; only the action script's lines
	// of its output are shown (the journal tells the rest).
	agent := testbed.Command(b.Host, imon, "run", "--config", cfg, "--nosyslog")
	out, err := agent.StderrPipe()
	if err != nil {
		d.Fatalf("%v", err)
	}
	agent.Stdout = agent.Stderr
	// Its own session, as under systemd: no controlling terminal, so that
	// SIGHUP is a reload (step 5), not the terminal going away.
	agent.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var log strings.Builder
	var logMu sync.Mutex
	if err := agent.Start(); err != nil {
		d.Fatalf("start imon: %v", err)
	}
	agentDone := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		var line []byte
		for {
			n, err := out.Read(buf)
			for _, c := range buf[:n] {
				if c != '\n' {
					line = append(line, c)
					continue
				}
				s := string(line)
				line = line[:0]
				logMu.Lock()
				log.WriteString(s + "\n")
				logMu.Unlock()
				// The agent logs the script's output line by line.
				if _, got, ok := strings.Cut(s, "action script got: "); ok && !strings.Contains(got, " ping-result ") {
					fmt.Printf("   action script got: %s\n", strings.TrimRight(got, `"`))
				}
			}
			if err != nil {
				break
			}
		}
		_ = agent.Wait()
		close(agentDone)
	}()
	stopAgent := func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-agentDone:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-agent.Process.Pid, syscall.SIGKILL)
			<-agentDone
		}
	}
	d.Cleanup(func() {
		stopAgent()
		if d.Failed() {
			logMu.Lock()
			fmt.Fprintf(os.Stderr, "imon output:\n%s", log.String())
			logMu.Unlock()
		}
	})

	// The journal, live.
	follow := exec.Command(imon, "journal", "--config", cfg, "--follow")
	follow.Stdout, follow.Stderr = os.Stdout, os.Stderr
	if err := follow.Start(); err != nil {
		d.Fatalf("imon journal --follow: %v", err)
	}
	d.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })
	w := harness.Watch(d, cfg)

	say("start: failover picks a WAN, ddns learns the external IP, updown and ping start")
	w.WaitFor(20*time.Second, "failover to the primary", harness.Kind(event.KindFailoverPrimary))
	w.WaitFor(20*time.Second, "the external IP", harness.Kind(event.KindDDNSIPUpdate))
	w.WaitFor(20*time.Second, "updown's first status", harness.Kind("updown-status"))
	time.Sleep(2 * time.Second)

	say("1. the primary's upstream is cut (its modem still answers)")
	cut := time.Now()
	b.CutUpstream(0)
	w.Next(10*time.Second, "failover to the standby", harness.Kind(event.KindFailoverStandby))
	fmt.Printf("   -> on the standby %.1f s after the cut\n", time.Since(cut).Seconds())
	w.Next(15*time.Second, "the external IP change", harness.Kind(event.KindDDNSIPUpdate))
	time.Sleep(2 * time.Second)

	say("2. the primary heals: failback after the %d s hold", hold)
	b.Heal()
	w.Next(30*time.Second, "failback to the primary", harness.Kind(event.KindFailoverPrimary))
	w.Next(15*time.Second, "the external IP back", harness.Kind(event.KindDDNSIPUpdate))
	time.Sleep(time.Second)

	say("3. the updown target %s is black-holed for 5 s", testbed.Target2)
	b.Blackhole(testbed.Target2)
	w.Next(10*time.Second, "the outage", harness.Kind(event.KindUpdownOffline))
	time.Sleep(4 * time.Second)
	b.Heal()
	w.Next(10*time.Second, "the end of the outage", harness.Kind(event.KindUpdownOnline))
	time.Sleep(time.Second)

	say("4. by hand: imon failover standby, then imon failover auto")
	cli := func(mode string) {
		fmt.Printf("   $ imon failover %s\n", mode)
		o, err := exec.Command(imon, "failover", "--config", cfg, mode).CombinedOutput()
		if s := strings.TrimSpace(string(o)); s != "" {
			fmt.Printf("   %s\n", strings.ReplaceAll(s, "\n", "\n   "))
		}
		if err != nil {
			d.Errorf("imon failover %s: %v", mode, err)
		}
	}
	pinned := time.Now()
	cli("standby")
	w.Next(15*time.Second, "the manual switch to the standby", harness.Kind(event.KindFailoverStandby))
	// Mode changes by command are at least 10 s apart (the command budget,
	// docs/mqtt.md): an earlier auto would be refused as too soon.
	time.Sleep(time.Until(pinned.Add(10*time.Second + 200*time.Millisecond)))
	cli("auto")
	w.Next(30*time.Second, "back to the primary", harness.Kind(event.KindFailoverPrimary))
	time.Sleep(time.Second)

	say("5. a config change, applied with a reload: the ping monitor every 2 s, then kill -HUP (what systemctl reload does)")
	newConf := strings.Replace(conf, `"ping": {"enable": true, "interval": 5,`, `"ping": {"enable": true, "interval": 2,`, 1)
	if err := os.WriteFile(cfg, []byte(newConf), 0o644); err != nil {
		d.Fatalf("config: %v", err)
	}
	hup := time.Now()
	if err := agent.Process.Signal(syscall.SIGHUP); err != nil {
		d.Fatalf("SIGHUP: %v", err)
	}
	started := w.Next(15*time.Second, "the reloaded agent's start", harness.Kind(event.KindAgentStart))
	fmt.Printf("   -> running again %.2f s after the signal, same process (pid %d), the default route untouched\n",
		started.Time.Sub(hup).Seconds(), agent.Process.Pid)
	w.Next(10*time.Second, "a ping result of the reloaded agent", harness.Kind(event.KindPingResult))
	time.Sleep(time.Second)

	say("stopping imon (%.0f s after the start)", time.Since(start).Seconds())
	stopAgent()
	time.Sleep(300 * time.Millisecond) // let the follower print agent-stop
	_ = follow.Process.Kill()

	d.report(imon, cfg)
	return d.summary(w.Seen())
}

// report prints `imon report` for the demo's minute and writes its HTML
// page, when this imon has the command.
func (d *demo) report(imon, cfg string) {
	help, err := exec.Command(imon, "report", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "imon report") {
		fmt.Println("\n   (this imon has no `imon report` yet)")
		return
	}
	// The journal is the demo's own: the last hour is the whole run.
	since := "1h"
	say("imon report --since %s", since)
	c := exec.Command(imon, "report", "--config", cfg, "--since", since)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		fmt.Printf("   imon report: %v\n", err)
	}
	html := filepath.Join(d.dir, "report.html")
	if err := exec.Command(imon, "report", "--config", cfg, "--since", since, "--html", html).Run(); err != nil {
		fmt.Printf("   imon report --html: %v\n", err)
		return
	}
	fmt.Printf("\n   HTML report: %s\n", html)
}

// summary checks that the journal shows what the demo is for.
func (d *demo) summary(evs []event.Event) int {
	count := func(kind string) int {
		n := 0
		for _, ev := range evs {
			if ev.Kind == kind {
				n++
			}
		}
		return n
	}
	fo := count(event.KindFailoverStandby) + count(event.KindFailoverPrimary)
	out, ip := count(event.KindUpdownOnline), count(event.KindDDNSIPUpdate)
	say("summary: %d failovers, %d outage(s), %d external IP changes", fo, out, ip)
	for _, ev := range evs {
		if ev.Kind == event.KindUpdownOnline {
			fmt.Printf("   outage: %s\n", ev.Msg)
		}
	}
	if fo < 2 || out < 1 || ip < 2 || d.Failed() {
		fmt.Println("demo: FAILED (missing a failover, an outage or an IP change)")
		return 1
	}
	fmt.Println("demo: OK; the namespaces are removed now")
	return 0
}
