package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
)

// Helpers of the fault, crash and soak tests (fault_test.go, crash_test.go,
// soak_test.go). Their names start with "flt" so as not to collide with the
// other end-to-end tests of the package.

// fltFull reports whether the long variants run (IMON_FULL=1: `make
// test-faults`, `make soak`); the default run keeps CI time bounded.
func fltFull() bool { return os.Getenv("IMON_FULL") == "1" }

// fltPick returns full with IMON_FULL=1, ci otherwise.
func fltPick[T any](ci, full T) T {
	if fltFull() {
		return full
	}
	return ci
}

// fltRequire skips with -short (these tests run real agents in network
// namespaces for seconds to minutes), and needs root, ip and nft.
func fltRequire(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault end-to-end tests: skipped with -short")
	}
	nettest.NeedRoot(t, "network namespaces")
	nettest.NeedCmd(t, "ip", "nft")
}

// fltDir is a temporary folder readable by everyone (as core_test.go's).
func fltDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fltProc is an agent process started by the fault tests: like
// harness.Agent, but started from any command (e.g. wrapped in unshare to
// give it a private tmpfs), killed and restarted many times per test.
type fltProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *nettest.Buffer
	done chan struct{}
	err  error

	killed bool // by Kill
}

// fltStart starts `imon run --config cfg --nosyslog` inside netns ns.
func fltStart(t *testing.T, ns, cfg string) *fltProc {
	t.Helper()
	return fltStartCmd(t, harness.Command(t, ns, "run", "--config", cfg, "--nosyslog"))
}

// fltStartCmd starts cmd in its own process group (unless cmd.SysProcAttr
// is set: a new session is one too); the process is stopped (SIGTERM, then
// SIGKILL) at cleanup and its output logged if the test failed.
func fltStartCmd(t *testing.T, cmd *exec.Cmd) *fltProc {
	t.Helper()
	p := &fltProc{t: t, cmd: cmd, out: &nettest.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			// Crash tests start dozens of agents: the tail of each.
			out, limit := p.Output(), 20000
			if p.killed {
				limit = 3000
			}
			if len(out) > limit {
				out = "...\n" + out[len(out)-limit:]
			}
			t.Logf("agent pid %d (killed %v) output:\n%s", p.Pid(), p.killed, out)
		}
	})
	return p
}

// Pid is the process id (the agent's: ip netns exec, unshare and sh -c
// 'exec ...' all exec in place).
func (p *fltProc) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process printed so far.
func (p *fltProc) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *fltProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the agent's process group (not to action scripts,
// which run in their own groups) and waits for it.
func (p *fltProc) Kill() {
	p.killed = true
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to 20 s, then kills.
func (p *fltProc) Stop() error {
	if p.Exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("agent pid %d did not stop within 20 s of SIGTERM: killed", p.Pid())
		p.Kill()
	}
	return p.err
}

// fltStatus is the part of `imon status --json` these tests read.
type fltStatus struct {
	Agent      string `json:"agent"`
	PID        int    `json:"pid"`
	Goroutines int    `json:"goroutines"`
	RSSBytes   int64  `json:"rss_bytes"`
	HeapLive   int64  `json:"heap_live_bytes"`
	Journal    struct {
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"journal"`
	Monitors map[string]struct {
		Kind  string          `json:"kind"`
		State json.RawMessage `json:"state"`
	} `json:"monitors"`

	// From /proc/PID/status (fltMustStatus): RSS of anonymous memory (heap,
	// stacks) and of file mappings (the journal's mmap, the binary).
	RssAnon, RssFile int64 `json:"-"`
}

// fltGetStatus runs `imon status --json`; ok is false when it failed.
func fltGetStatus(t *testing.T, cfg string) (fltStatus, bool) {
	t.Helper()
	out, err := harness.Command(t, "", "status", "--config", cfg, "--json").Output()
	var st fltStatus
	if err != nil || json.Unmarshal(out, &st) != nil {
		return st, false
	}
	return st, true
}

// fltMustStatus is fltGetStatus of a running agent, failing otherwise.
func fltMustStatus(t *testing.T, cfg string) fltStatus {
	t.Helper()
	st, ok := fltGetStatus(t, cfg)
	if !ok || st.Agent != "running" {
		t.Fatalf("imon status: agent not running (%+v)", st)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.PID))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			st.RssAnon = kb << 10
		case "RssFile:":
			st.RssFile = kb << 10
		}
	}
	return st
}

// fltWatch waits until the agent of cfg answers on its control socket,
// then follows its journal (before that, `imon journal --follow` would read
// the file, or find none).
func fltWatch(t *testing.T, cfg string) *harness.Watcher {
	t.Helper()
	fltWaitUntil(t, 20*time.Second, "the agent to answer imon status", func() bool {
		st, ok := fltGetStatus(t, cfg)
		return ok && st.Agent == "running"
	})
	return harness.Watch(t, cfg)
}

// fltMB formats bytes as MiB.
func fltMB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// fltJournal reads the whole journal with `imon journal --json` (from the
// running agent, or from the file when none runs).
func fltJournal(t *testing.T, cfg string) []event.Event {
	t.Helper()
	cmd := harness.Command(t, "", "journal", "--config", cfg, "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("imon journal: %v\n%s", err, stderr.String())
	}
	var evs []event.Event
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("imon journal printed a bad line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// fltGapFree fails unless evs are seq 1, 2, 3, ... with no gap or
// duplicate.
func fltGapFree(t *testing.T, evs []event.Event) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("journal seq %d at position %d (previous %v): a gap or a duplicate", ev.Seq, i+1, evs[max(i-1, 0)].Seq)
		}
	}
}

// fltCount counts events of kind.
func fltCount(evs []event.Event, kind string) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// fltScript writes an action script that appends "IMON_SEQ<TAB>argv..."
// (argv after the script path) to log, then misbehaves once if the mode
// file names a fault (the file is emptied, so only the next run does):
//
//	(empty)  exit 0
//	fail     print a line and exit 3
//	hang     sleep (until killed by the action timeout); marker is the
//	         sleep's argument, to find leftovers
//	flood    write 20 MB to stdout, then exit 0
//	delete   delete the script itself, then exit 0
func fltScript(t *testing.T, dir string) (script, log, mode, marker string) {
	t.Helper()
	log = filepath.Join(dir, "calls.log")
	mode = filepath.Join(dir, "action.mode")
	marker = fmt.Sprintf("%d.%d", 3000+os.Getpid()%1000, time.Now().UnixNano()%1e6)
	script = harness.WriteFile(t, dir, "action.sh", fltScriptText(log, mode, marker), 0o755)
	return script, log, mode, marker
}

func fltScriptText(log, mode, marker string) string {
	return fmt.Sprintf(`#!/bin/sh
(IFS="$(printf '\t')"; echo "$IMON_SEQ	$*") >> %[1]s
m=$(head -n1 %[2]s 2>/dev/null)
[ -n "$m" ] && : > %[2]s
case "$m" in
fail) echo "failing on purpose"; exit 3 ;;
hang) exec sleep %[3]s ;;
flood) head -c 20000000 /dev/zero | tr '\0' x; echo; exit 0 ;;
delete) rm -f "$0"; exit 0 ;;
esac
exit 0
`, log, mode, marker)
}

// fltSetMode writes the action script's mode file.
func fltSetMode(t *testing.T, mode, m string) {
	t.Helper()
	if err := os.WriteFile(mode, []byte(m+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fltCall is one recorded run of the action script.
type fltCall struct {
	Seq  uint64
	Argv []string // INSTANCE SYSLOGFLAG COMMAND ARGS...
}

// fltCalls reads the runs recorded by a fltScript.
func fltCalls(t *testing.T, log string) []fltCall {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls []fltCall
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		seq, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			t.Fatalf("action log line %q: bad IMON_SEQ", l)
		}
		calls = append(calls, fltCall{Seq: seq, Argv: f[1:]})
	}
	return calls
}

// fltDelivery compares the action script's runs with the journal: every
// action event was handed over (at least once, none skipped), nothing that
// is not an action event of the journal was run, first runs are in journal
// order, and at most maxDup runs repeat one already made (the event in
// flight at a kill). It returns the number of repeated runs.
func fltDelivery(t *testing.T, evs []event.Event, calls []fltCall, maxDup int) int {
	t.Helper()
	want := map[uint64]event.Event{}
	for _, ev := range evs {
		if event.IsAction(ev.Kind) {
			want[ev.Seq] = ev
		}
	}
	got := map[uint64]int{}
	var last uint64
	dups := 0
	for i, c := range calls {
		ev, ok := want[c.Seq]
		if !ok {
			t.Errorf("action script run %d for seq %d (%v), which is not an action event of the journal", i, c.Seq, c.Argv)
			continue
		}
		if len(c.Argv) < 3 || c.Argv[2] != ev.Kind || !slices.Equal(c.Argv[3:], ev.Args) {
			t.Errorf("action script run for seq %d got %q, journal has %s %q", c.Seq, c.Argv, ev.Kind, ev.Args)
		}
		if got[c.Seq] > 0 {
			// A repeat: the script of a killed agent may finish
			// recording after its successor ran later events.
			dups++
			got[c.Seq]++
			continue
		}
		if c.Seq < last {
			t.Errorf("action script run for seq %d after seq %d: out of journal order", c.Seq, last)
		}
		last = max(last, c.Seq)
		got[c.Seq]++
	}
	var missing []uint64
	for seq := range want {
		if got[seq] == 0 {
			missing = append(missing, seq)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d action events never handed to the script (seqs %v)", len(missing), missing[:min(len(missing), 20)])
	}
	if dups > maxDup {
		t.Errorf("%d repeated action runs, more than the %d allowed (one in flight per kill)", dups, maxDup)
	}
	return dups
}

// fltWaitUntil polls cond (state of other processes: files, routes, the
// journal) every 50 ms until it holds, failing after timeout.
func fltWaitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond) // polling another process's state
	}
}

// fltRoutes watches the IPv4 default routes of the main table in a
// namespace: a netlink subscription counts every change, and a 20 ms poll
// records the most default routes seen at once and whether the table was
// ever left without one after the first appeared.
type fltRoutes struct {
	changes  atomic.Int64 // RTM_NEWROUTE/RTM_DELROUTE of a main-table default route
	maxSeen  atomic.Int64 // most default routes at one poll
	gone     atomic.Int64 // polls with none after one existed
	polls    atomic.Int64
	mu       sync.Mutex
	current  []string // latest poll, "via GW dev IF proto P metric M"
	h        *netlink.Handle
	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// fltWatchRoutes starts watching ns; it stops at test cleanup.
func fltWatchRoutes(t *testing.T, ns *harness.NS) *fltRoutes {
	t.Helper()
	nh, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nh.Close() })
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		t.Fatal(err)
	}
	r := &fltRoutes{h: h, stop: make(chan struct{})}
	updates := make(chan netlink.RouteUpdate, 256)
	done := make(chan struct{})
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{Namespace: &nh}); err != nil {
		t.Fatal(err)
	}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		for u := range updates {
			if u.Family == netlink.FAMILY_V4 && u.Table == syscall.RT_TABLE_MAIN && fltIsDefault(u.Route) {
				r.changes.Add(1)
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		seen := false
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			cur := r.list()
			r.polls.Add(1)
			if n := int64(len(cur)); n > r.maxSeen.Load() {
				r.maxSeen.Store(n)
			}
			if len(cur) > 0 {
				seen = true
			} else if seen {
				r.gone.Add(1)
			}
			r.mu.Lock()
			r.current = cur
			r.mu.Unlock()
		}
	}()
	t.Cleanup(r.Stop)
	return r
}

func fltIsDefault(rt netlink.Route) bool {
	if rt.Dst == nil {
		return true
	}
	ones, _ := rt.Dst.Mask.Size()
	return ones == 0 && rt.Dst.IP.To4() != nil
}

// list returns the main table's IPv4 default routes.
func (r *fltRoutes) list() []string {
	rs, err := r.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: syscall.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil
	}
	var out []string
	for _, rt := range rs {
		if !fltIsDefault(rt) {
			continue
		}
		dev := strconv.Itoa(rt.LinkIndex)
		if l, err := r.h.LinkByIndex(rt.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		out = append(out, fmt.Sprintf("via %s dev %s proto %d metric %d", rt.Gw, dev, rt.Protocol, rt.Priority))
	}
	slices.Sort(out)
	return out
}

// Current is the default routes at the latest poll.
func (r *fltRoutes) Current() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.current)
}

// Now lists the default routes at once (not from the poll).
func (r *fltRoutes) Now() []string { return r.list() }

// Stop ends the watch.
func (r *fltRoutes) Stop() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
		r.h.Close()
	})
}

// fltOneVia reports whether routes is exactly one imon default route via
// interface dev.
func fltOneVia(routes []string, dev string) bool {
	return len(routes) == 1 && strings.Contains(routes[0], "dev "+dev+" ") && strings.Contains(routes[0], "proto 201")
}

// fltServeDNS serves h over UDP and TCP on addr ("IP:PORT") inside ns until
// the test ends.
func fltServeDNS(t *testing.T, ns *harness.NS, addr string, h dns.Handler) {
	t.Helper()
	pc := ns.ListenPacket(t, "udp", addr)
	ln := ns.Listen(t, "tcp", addr)
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
}

// fltRawUDP answers every datagram on addr inside ns with whatever reply
// returns for it (nil: no answer), bypassing any DNS library, for servers
// that send garbage or replies with the wrong ID.
func fltRawUDP(t *testing.T, ns *harness.NS, addr string, reply func(query []byte) []byte) {
	t.Helper()
	pc := ns.ListenPacket(t, "udp", addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if b := reply(slices.Clone(buf[:n])); b != nil {
				_, _ = pc.WriteTo(b, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
}

// fltIsAddr reports whether s is a plain IP address.
func fltIsAddr(s string) bool { return net.ParseIP(s) != nil }
