package probetest

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"imon/internal/nettest"
)

// ChildEnv is set (to the parent's test name) in the environment of a test
// binary that RunInNetns re-executes inside a namespace.
const ChildEnv = "IMON_NETNS_CHILD"

// InChild reports whether this test binary is a child started by
// RunInNetns.
func InChild() bool { return os.Getenv(ChildEnv) != "" }

var testbedSeq atomic.Int64

// Testbed is two network namespaces, A and B, joined by a veth pair:
// A has AddrA and B has AddrB (and AddrB2) in Prefix, a benchmarking range
// (198.18.0.0/24, RFC 2544) that exists only inside the two namespaces,
// plus AddrA6 and AddrB6 in fd00:1818::/64. Neither namespace has a
// default route, so nothing can leave them.
type Testbed struct {
	A, B     string // namespace names
	IfA, IfB string // veth ends in A and B
	Prefix   netip.Prefix
	AddrA    netip.Addr
	AddrB    netip.Addr
	AddrB2   netip.Addr // a second address of B, e.g. to blackhole alone
	AddrA6   netip.Addr // IPv6 (ULA fd00:1818::/64, only in the namespaces)
	AddrB6   netip.Addr
}

// NewTestbed creates the namespaces (root, ip and nft needed: see
// nettest.Unavailable) and deletes them in t.Cleanup, also when the test
// fails.
func NewTestbed(t testing.TB) *Testbed {
	t.Helper()
	nettest.NeedRoot(t, "network namespaces")
	nettest.NeedCmd(t, "ip", "nft")
	n := testbedSeq.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, n)
	tb := &Testbed{
		A:      "imon-pt-" + id + "-a",
		B:      "imon-pt-" + id + "-b",
		IfA:    "ipt" + id + "a",
		IfB:    "ipt" + id + "b",
		Prefix: netip.MustParsePrefix("198.18.0.0/24"),
		AddrA:  netip.MustParseAddr("198.18.0.1"),
		AddrB:  netip.MustParseAddr("198.18.0.2"),
		AddrB2: netip.MustParseAddr("198.18.0.3"),
		AddrA6: netip.MustParseAddr("fd00:1818::1"),
		AddrB6: netip.MustParseAddr("fd00:1818::2"),
	}
	if len(tb.IfA) > 15 {
		t.Fatalf("interface name %q too long", tb.IfA)
	}
	for _, ns := range []string{tb.A, tb.B} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := run("ip", "netns", "del", ns); err != nil {
				t.Errorf("deleting netns %s: %v: %s", ns, err, out)
			}
		})
	}
	mustRun(t, "ip", "link", "add", tb.IfA, "netns", tb.A, "type", "veth", "peer", "name", tb.IfB, "netns", tb.B)
	for _, c := range [][]string{
		// No duplicate address detection: a tentative link-local address
		// delays neighbour discovery, and with it the first IPv6 probes.
		{tb.A, "sysctl", "-q", "-w", "net.ipv6.conf." + tb.IfA + ".accept_dad=0"},
		{tb.B, "sysctl", "-q", "-w", "net.ipv6.conf." + tb.IfB + ".accept_dad=0"},
		{tb.A, "ip", "link", "set", "lo", "up"},
		{tb.B, "ip", "link", "set", "lo", "up"},
		{tb.A, "ip", "addr", "add", tb.AddrA.String() + "/24", "dev", tb.IfA},
		{tb.B, "ip", "addr", "add", tb.AddrB.String() + "/24", "dev", tb.IfB},
		{tb.B, "ip", "addr", "add", tb.AddrB2.String() + "/24", "dev", tb.IfB},
		{tb.A, "ip", "addr", "add", tb.AddrA6.String() + "/64", "dev", tb.IfA, "nodad"},
		{tb.B, "ip", "addr", "add", tb.AddrB6.String() + "/64", "dev", tb.IfB, "nodad"},
		{tb.A, "ip", "link", "set", tb.IfA, "up"},
		{tb.B, "ip", "link", "set", tb.IfB, "up"},
	} {
		tb.MustExec(t, c[0], c[1:]...)
	}
	return tb
}

// Exec runs a command inside namespace ns and returns its combined output.
func (tb *Testbed) Exec(ns string, args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// MustExec is Exec that fails the test on error.
func (tb *Testbed) MustExec(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := tb.Exec(ns, args...)
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// Env returns the testbed as environment variables for a child.
func (tb *Testbed) Env() []string {
	return []string{
		"IMON_TB_A=" + tb.A, "IMON_TB_B=" + tb.B,
		"IMON_TB_IFA=" + tb.IfA, "IMON_TB_IFB=" + tb.IfB,
		"IMON_TB_ADDRA=" + tb.AddrA.String(), "IMON_TB_ADDRB=" + tb.AddrB.String(),
		"IMON_TB_ADDRB2=" + tb.AddrB2.String(), "IMON_TB_PREFIX=" + tb.Prefix.String(),
		"IMON_TB_ADDRA6=" + tb.AddrA6.String(), "IMON_TB_ADDRB6=" + tb.AddrB6.String(),
	}
}

// ChildTestbed rebuilds, in a child started by RunInNetns, the Testbed of
// its parent from the environment.
func ChildTestbed(t testing.TB) *Testbed {
	t.Helper()
	get := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			t.Fatalf("child: %s not set", k)
		}
		return v
	}
	return &Testbed{
		A: get("IMON_TB_A"), B: get("IMON_TB_B"),
		IfA: get("IMON_TB_IFA"), IfB: get("IMON_TB_IFB"),
		Prefix: netip.MustParsePrefix(get("IMON_TB_PREFIX")),
		AddrA:  netip.MustParseAddr(get("IMON_TB_ADDRA")),
		AddrB:  netip.MustParseAddr(get("IMON_TB_ADDRB")),
		AddrB2: netip.MustParseAddr(get("IMON_TB_ADDRB2")),
		AddrA6: netip.MustParseAddr(get("IMON_TB_ADDRA6")),
		AddrB6: netip.MustParseAddr(get("IMON_TB_ADDRB6")),
	}
}

// RunInNetns re-executes the running test binary inside namespace ns,
// running only the test named child (which must start with
// `if !probetest.InChild() { t.Skip(...) }`), with the testbed's environment
// plus env. The whole child process lives in ns, so no goroutine of it can
// send a packet from the machine's own namespace. The child's output is
// logged; its failure fails t.
func (tb *Testbed) RunInNetns(t testing.TB, ns, child string, timeout time.Duration, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"netns", "exec", ns, os.Args[0], "-test.run", "^" + child + "$", "-test.v", "-test.count=1",
		"-test.timeout", timeout.String()}
	cmd := exec.CommandContext(ctx, "ip", args...)
	parentNS, err := nsInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(append(append(os.Environ(), ChildEnv+"="+t.Name(), parentNetnsEnv+"="+strconv.FormatUint(parentNS, 10)), tb.Env()...), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	t.Logf("child %s in netns %s:\n%s", child, ns, buf.String())
	if err != nil {
		t.Fatalf("child %s failed: %v", child, err)
	}
	if !strings.Contains(buf.String(), "--- PASS: "+child) {
		t.Fatalf("child %s did not pass (skipped or not found)", child)
	}
	return buf.String()
}

// InstallBlackholes sets up nftables in namespace B: packets to AddrB2 are
// always dropped, and packets to the addresses in the set "bh" (see
// Blackhole) too. Dropping on input is a silent loss, like a dead upstream.
func (tb *Testbed) InstallBlackholes(t testing.TB) {
	t.Helper()
	for _, cmd := range [][]string{
		{"nft", "add", "table", "inet", "imontest"},
		{"nft", "add", "chain", "inet", "imontest", "in", "{ type filter hook input priority 0; policy accept; }"},
		{"nft", "add", "set", "inet", "imontest", "bh", "{ type ipv4_addr; }"},
		{"nft", "add", "rule", "inet", "imontest", "in", "ip", "daddr", "@bh", "drop"},
		{"nft", "add", "rule", "inet", "imontest", "in", "ip", "daddr", tb.AddrB2.String(), "drop"},
	} {
		tb.MustExec(t, tb.B, cmd...)
	}
}

// Blackhole starts (on) or stops dropping packets to addr in namespace B
// (InstallBlackholes first). It works from a child in namespace A too.
func (tb *Testbed) Blackhole(t testing.TB, addr netip.Addr, on bool) {
	t.Helper()
	op := "delete"
	if on {
		op = "add"
	}
	tb.MustExec(t, tb.B, "nft", op, "element", "inet", "imontest", "bh", "{ "+addr.String()+" }")
}

// parentNetnsEnv carries the parent's network namespace inode to a child.
const parentNetnsEnv = "IMON_NETNS_PARENT_INO"

// AssertNotHostNetns fails the test unless the process runs in a network
// namespace other than its parent's (the machine's own namespace, where go
// test runs): a guard for children of RunInNetns.
func AssertNotHostNetns(t testing.TB) {
	t.Helper()
	self, err := nsInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	host, err := strconv.ParseUint(os.Getenv(parentNetnsEnv), 10, 64)
	if err != nil {
		t.Fatalf("child: %s: %v", parentNetnsEnv, err)
	}
	if self == host {
		t.Fatal("refusing to run: this process is in the machine's own network namespace")
	}
}

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := run(name, args...); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
