// Package testbed builds, for one test, a small routed network out of Linux
// network namespaces: a host that runs imon with two WAN links, two ISP
// routers that forward and masquerade, an "internet" with target hosts, and
// a LAN client behind the host. It injects the faults the failover monitor
// must handle (an upstream cut while the gateway still answers, carrier
// loss, random loss, a black-holed address) and heals them.
//
// # Topology
//
//	lan (198.18.0.2) ── lan0 ─ host ─ wan0 (192.0.2.2/29)  ── isp1 (192.0.2.1)  ── up0 198.51.100.2 ─┐
//	                   198.18.0.1  └ wan1 (192.0.2.10/29) ── isp2 (192.0.2.9)  ── up0 198.51.100.10 ─┴ inet
//
// inet owns the target addresses 203.0.113.0/24 on its loopback (Target,
// DNSAddr, HTTPAddr) and the upstream ends 198.51.100.1 and 198.51.100.9.
// isp1 masquerades everything it forwards to 198.51.100.2, isp2 to
// 198.51.100.10, so inet sees which ISP a packet came through by its source.
// The host has no default route: that is imon's job. It forwards and
// masquerades LAN traffic out of either WAN. Every address is in a
// documentation or benchmarking range and exists only inside the namespaces.
//
// Namespaces are named imh-PID-N-ROLE (see harness.NewNS) and are deleted,
// with every process left in them, when the test ends, also on failure.
// Tests need root, ip and nft: without them they skip, or fail when CI=true.
package testbed

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"imon/internal/harness"
	"imon/internal/nettest"
)

// Addresses of the testbed.
var (
	// HostWAN are the host's addresses on wan0 (primary) and wan1 (standby).
	HostWAN = [2]netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.10")}
	// Gateway are the ISP routers' addresses facing the host.
	Gateway = [2]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.9")}
	// WANPrefix are the two WAN link subnets.
	WANPrefix = [2]netip.Prefix{netip.MustParsePrefix("192.0.2.0/29"), netip.MustParsePrefix("192.0.2.8/29")}
	// Upstream are the ISPs' masquerade (public) addresses as inet sees them.
	Upstream = [2]netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.10")}
	// Target is an internet host that answers pings.
	Target = netip.MustParseAddr("203.0.113.1")
	// Target2 is a second internet host (post-ping checks, blackhole tests).
	Target2 = netip.MustParseAddr("203.0.113.2")
	// DNSAddr is where a test may start a DNS server inside inet.
	DNSAddr = netip.MustParseAddr("203.0.113.53")
	// HTTPAddr is where a test may start an HTTP server inside inet.
	HTTPAddr = netip.MustParseAddr("203.0.113.80")
	// LANHost is the host's LAN address; LANClient the client's.
	LANHost   = netip.MustParseAddr("198.18.0.1")
	LANClient = netip.MustParseAddr("198.18.0.2")
)

// WANIf are the WAN interface names in the host namespace.
var WANIf = [2]string{"wan0", "wan1"}

// ispPeer is the ISP router's interface facing the host.
const ispPeer = "down0"

// Bed is one testbed. Its methods fail the test on error.
type Bed struct {
	t testing.TB
	// Host runs imon; LAN is a client behind it; ISP are the two ISP
	// routers; Inet is the internet.
	Host, LAN, Inet *harness.NS
	ISP             [2]*harness.NS

	mu     sync.Mutex // guards faults
	faults map[string]bool
}

// Require skips the test with -short, or unless it runs as root with ip and
// nft installed (when CI=true, a missing prerequisite fails it instead).
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("network namespaces: skipped with -short")
	}
	nettest.NeedRoot(t, "network namespaces")
	nettest.NeedCmd(t, "ip", "nft")
}

// New builds the testbed; everything is removed at test cleanup.
func New(t testing.TB) *Bed {
	t.Helper()
	Require(t)
	b := &Bed{t: t, faults: map[string]bool{}}
	b.Host = harness.NewNS(t, "host")
	b.LAN = harness.NewNS(t, "lan")
	b.Inet = harness.NewNS(t, "inet")
	for i := range b.ISP {
		b.ISP[i] = harness.NewNS(t, fmt.Sprintf("isp%d", i+1))
	}

	// inet: targets on loopback.
	for _, a := range []netip.Addr{Target, Target2, DNSAddr, HTTPAddr} {
		b.Inet.Sh(t, "ip", "addr", "add", a.String()+"/32", "dev", "lo")
	}
	inetUp := [2]string{"198.51.100.1/29", "198.51.100.9/29"}
	for i, isp := range b.ISP {
		gw := Gateway[i].String() + "/29"
		harness.Link(t, b.Host, WANIf[i], HostWAN[i].String()+"/29", isp, ispPeer, gw)
		harness.Link(t, isp, "up0", Upstream[i].String()+"/29", b.Inet, fmt.Sprintf("isp%d", i+1), inetUp[i])
		isp.Sh(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		isp.Sh(t, "ip", "route", "add", "default", "via", strings.TrimSuffix(inetUp[i], "/29"))
		isp.Nft(t, `table ip imtnat {
	chain post { type nat hook postrouting priority 100; oifname "up0" masquerade; }
}
table ip imtfault {
	chain cpre { type filter hook prerouting priority -300; }
	chain cfwd { type filter hook forward priority -300; }
}
`)
	}
	b.Inet.Nft(t, `table ip imtfault {
	chain cin { type filter hook input priority -300; }
}
`)

	// LAN client behind the host; the host routes and masquerades it.
	harness.Link(t, b.Host, "lan0", LANHost.String()+"/24", b.LAN, "eth0", LANClient.String()+"/24")
	b.LAN.Sh(t, "ip", "route", "add", "default", "via", LANHost.String())
	b.Host.Sh(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// Loose reverse-path filtering, as systemd and Raspberry Pi OS set it.
	b.Host.Sh(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2")
	// Deleting an address promotes a secondary of the same subnet instead
	// of deleting it too (systemd's default; DHCP renumbering relies on it).
	b.Host.Sh(t, "sysctl", "-qw", "net.ipv4.conf.all.promote_secondaries=1")
	b.Host.Nft(t, `table ip imtnat {
	chain post { type nat hook postrouting priority 100; oifname { "wan0", "wan1" } masquerade; }
}
`)
	return b
}

// Run runs a command inside ns and returns its combined output; it fails
// the test on error.
func (b *Bed) Run(ns *harness.NS, args ...string) string {
	b.t.Helper()
	return ns.Sh(b.t, args...)
}

// Exec runs a command inside ns and returns its combined output and error,
// without failing the test.
func Exec(ns *harness.NS, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// Command returns an unstarted command that runs inside ns (through `ip
// netns exec`), for long-running processes such as imon or tcpdump. The
// caller starts and stops it.
func Command(ns *harness.NS, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// isp returns the ISP namespace of WAN i (0 = primary, 1 = standby).
func (b *Bed) isp(i int) *harness.NS {
	if i < 0 || i > 1 {
		b.t.Fatalf("testbed: no WAN %d", i)
	}
	return b.ISP[i]
}

// CutUpstream makes ISP i stop forwarding (its gateway keeps answering
// pings from the host): the classic "modem up, internet down".
func (b *Bed) CutUpstream(i int) {
	b.t.Helper()
	b.isp(i).Sh(b.t, "nft", "add", "rule", "ip", "imtfault", "cfwd", "drop")
	b.mark(fmt.Sprintf("cut%d", i))
}

// CarrierLoss takes the ISP side of WAN i administratively down, so the
// host's WAN interface loses carrier (its addresses and routes stay).
func (b *Bed) CarrierLoss(i int) {
	b.t.Helper()
	b.isp(i).Sh(b.t, "ip", "link", "set", ispPeer, "down")
	b.mark(fmt.Sprintf("carrier%d", i))
}

// RandomLoss drops percent % of the packets the host sends to ISP i
// (nftables numgen random), to its gateway and beyond.
func (b *Bed) RandomLoss(i int, percent int) {
	b.t.Helper()
	if percent <= 0 || percent > 100 {
		b.t.Fatalf("testbed: random loss %d%%", percent)
	}
	args := []string{"nft", "add", "rule", "ip", "imtfault", "cpre", "iifname", ispPeer}
	if percent < 100 {
		args = append(args, "numgen", "random", "mod", "100", "<", fmt.Sprint(percent))
	}
	b.isp(i).Sh(b.t, append(args, "drop")...)
	b.mark(fmt.Sprintf("loss%d", i))
}

// Blackhole makes the internet host addr (one of inet's addresses) stop
// answering: inet drops every packet to it.
func (b *Bed) Blackhole(addr netip.Addr) {
	b.t.Helper()
	b.Inet.Sh(b.t, "nft", "add", "rule", "ip", "imtfault", "cin", "ip", "daddr", addr.String(), "drop")
	b.mark("blackhole")
}

// Heal removes every injected fault: all fault rules are flushed and the
// ISP links are up again.
func (b *Bed) Heal() {
	b.t.Helper()
	for _, isp := range b.ISP {
		isp.Sh(b.t, "nft", "flush", "table", "ip", "imtfault")
		isp.Sh(b.t, "ip", "link", "set", ispPeer, "up")
	}
	b.Inet.Sh(b.t, "nft", "flush", "table", "ip", "imtfault")
	b.mu.Lock()
	clear(b.faults)
	b.mu.Unlock()
}

// HealWAN removes the faults of WAN i only (upstream cut, random loss,
// carrier loss).
func (b *Bed) HealWAN(i int) {
	b.t.Helper()
	isp := b.isp(i)
	isp.Sh(b.t, "nft", "flush", "table", "ip", "imtfault")
	isp.Sh(b.t, "ip", "link", "set", ispPeer, "up")
}

func (b *Bed) mark(f string) {
	b.mu.Lock()
	b.faults[f] = true
	b.mu.Unlock()
}

// Faults lists the faults injected since the last Heal (for test logs).
func (b *Bed) Faults() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var fs []string
	for f := range b.faults {
		fs = append(fs, f)
	}
	return fs
}

// DefaultRoute returns the host's main-table default route lines (`ip
// route show default`), "" when there is none.
func (b *Bed) DefaultRoute() string {
	b.t.Helper()
	return strings.TrimSpace(b.Host.Sh(b.t, "ip", "-4", "route", "show", "default"))
}

// Ping sends one ICMP echo request from inside ns to dst (from src when
// valid) and reports whether the reply came back within timeout.
func Ping(t testing.TB, ns *harness.NS, src, dst netip.Addr, timeout time.Duration) bool {
	t.Helper()
	var c *icmp.PacketConn
	Do(t, ns, func() error {
		laddr := "0.0.0.0"
		if src.IsValid() {
			laddr = src.String()
		}
		var err error
		c, err = icmp.ListenPacket("ip4:icmp", laddr)
		return err
	})
	defer c.Close()
	id := int(pingID.Add(1) & 0xffff)
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("imon-testbed")}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(wb, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return false
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for {
		_ = c.SetReadDeadline(deadline)
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		rm, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || rm.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && peer.String() == dst.String() {
			return true
		}
	}
}

var pingID atomic.Int64

// Do runs fn on an OS thread switched into ns, then switches the thread
// back and unlocks it. Sockets fn opens stay in ns and may be used from any
// goroutine afterwards. (Unlike a thread left in the namespace, this never
// moves the process's main thread, which `ip netns pids` would then report
// as a process of the namespace and the cleanup would kill.)
func Do(t testing.TB, ns *harness.NS, fn func() error) {
	t.Helper()
	if err := nettest.Enter(ns.Name, fn); err != nil {
		t.Fatal(err)
	}
}

// Handle opens a handle on the namespace (for netlink.NewHandleAt and the
// Namespace option of netlink subscriptions); it is closed at test cleanup.
func Handle(t testing.TB, ns *harness.NS) netns.NsHandle {
	t.Helper()
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatalf("netns %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
