package harness

import (
	"fmt"
	"imon/internal/nettest"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

var nsCounter atomic.Int64

// NS is a network namespace created for one test and deleted at cleanup.
type NS struct {
	Name string
}

// NewNS creates a network namespace with a unique name (prefix "imh-"),
// brings its loopback up and lets root ping from it. It is removed, with
// every process left in it killed, when the test ends.
func NewNS(t testing.TB, role string) *NS {
	t.Helper()
	nettest.NeedRoot(t, "network namespaces")
	nettest.NeedCmd(t, "ip")
	name := fmt.Sprintf("imh-%d-%d-%s", os.Getpid()%100000, nsCounter.Add(1), role)
	Sh(t, "", "ip", "netns", "add", name)
	n := &NS{Name: name}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	n.Sh(t, "ip", "link", "set", "lo", "up")
	n.Sh(t, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
	return n
}

// Sh runs a command inside the namespace and fails the test on error.
func (n *NS) Sh(t testing.TB, args ...string) string {
	t.Helper()
	return Sh(t, n.Name, args...)
}

// Sh runs a command (inside netns ns when not empty) and fails on error.
func Sh(t testing.TB, ns string, args ...string) string {
	t.Helper()
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Link connects namespaces a and b with a veth pair named ifA (in a) and
// ifB (in b), addresses cidrA and cidrB (e.g. "10.0.0.1/24"; "" = none).
func Link(t testing.TB, a *NS, ifA, cidrA string, b *NS, ifB, cidrB string) {
	t.Helper()
	tmp := fmt.Sprintf("imv%d", nsCounter.Add(1))
	Sh(t, "", "ip", "link", "add", tmp+"a", "netns", a.Name, "type", "veth", "peer", "name", tmp+"b", "netns", b.Name)
	a.Sh(t, "ip", "link", "set", tmp+"a", "name", ifA)
	b.Sh(t, "ip", "link", "set", tmp+"b", "name", ifB)
	for _, s := range []struct {
		ns   *NS
		ifn  string
		cidr string
	}{{a, ifA, cidrA}, {b, ifB, cidrB}} {
		if s.cidr != "" {
			args := []string{"ip", "addr", "add", s.cidr, "dev", s.ifn}
			if strings.Contains(s.cidr, ":") {
				args = []string{"ip", "-6", "addr", "add", s.cidr, "dev", s.ifn, "nodad"}
			}
			s.ns.Sh(t, args...)
		}
		s.ns.Sh(t, "ip", "link", "set", s.ifn, "up")
	}
}

// Nft loads an nftables ruleset (nft -f -) inside the namespace.
func (n *NS) Nft(t testing.TB, ruleset string) {
	t.Helper()
	nettest.NeedCmd(t, "nft")
	cmd := exec.Command("ip", "netns", "exec", n.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s\n%s", n.Name, err, out, ruleset)
	}
}

// Do runs fn on an OS thread switched into the namespace, then switches the
// thread back; sockets fn opens stay in the namespace and may be used from
// any goroutine afterwards.
func (n *NS) Do(t testing.TB, fn func() error) {
	t.Helper()
	if err := nettest.Enter(n.Name, fn); err != nil {
		t.Fatal(err)
	}
}

// ListenPacket opens a packet socket inside the namespace.
func (n *NS) ListenPacket(t testing.TB, network, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	n.Do(t, func() (err error) { pc, err = net.ListenPacket(network, addr); return err })
	t.Cleanup(func() { pc.Close() })
	return pc
}

// Listen opens a stream listener inside the namespace.
func (n *NS) Listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	n.Do(t, func() (err error) { ln, err = net.Listen(network, addr); return err })
	t.Cleanup(func() { ln.Close() })
	return ln
}
