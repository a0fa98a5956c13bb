package extip_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"imon/agent/probe/extip"
)

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	const v4, v6 = extip.IPv4, extip.IPv6
	tests := []struct {
		raw          string
		fam          extip.Family
		allowPrivate bool
		want         string // address, or "" when rejected
		reason       string // fault reason when rejected
	}{
		{raw: "1.2.3.4", fam: v4, want: "1.2.3.4"},
		{raw: "1.2.3.4\n", fam: v4, want: "1.2.3.4"},
		{raw: " 1.2.3.4\r\n", fam: v4, want: "1.2.3.4"},
		{raw: "\t93.184.216.34 ", fam: v4, want: "93.184.216.34"},
		{raw: "2a00:1450:4001:82b::200e\n", fam: v6, want: "2a00:1450:4001:82b::200e"},
		{raw: "2A00:1450::1", fam: v6, want: "2a00:1450::1"},
		// not one address
		{raw: "", fam: v4, reason: "empty answer"},
		{raw: " \n", fam: v4, reason: "empty answer"},
		{raw: "1.2.3.4; reboot", fam: v4, reason: "not an address"},
		{raw: "1.2.3.4;reboot", fam: v4, reason: "not an address"},
		{raw: "1.2.3.4 && reboot", fam: v4, reason: "not an address"},
		{raw: "$(reboot)", fam: v4, reason: "not an address"},
		{raw: "`reboot`", fam: v4, reason: "not an address"},
		{raw: "<html><body>1.2.3.4</body></html>", fam: v4, reason: "not an address"},
		{raw: "Your IP is 1.2.3.4", fam: v4, reason: "not an address"},
		{raw: "1.2.3.4 5.6.7.8", fam: v4, reason: "several addresses"},
		{raw: "1.2.3.4\n5.6.7.8\n", fam: v4, reason: "several addresses"},
		{raw: "1.2.3.4,5.6.7.8", fam: v4, reason: "several addresses"},
		{raw: "1.2.3.4;5.6.7.8", fam: v4, reason: "several addresses"},
		{raw: "1.2.3", fam: v4, reason: "not an address"},
		{raw: "01.2.3.4", fam: v4, reason: "not an address"},
		{raw: "1.2.3.4.5", fam: v4, reason: "not an address"},
		{raw: "1.2.3.256", fam: v4, reason: "not an address"},
		{raw: "0x01020304", fam: v4, reason: "not an address"},
		{raw: "16909060", fam: v4, reason: "not an address"},
		{raw: "[2a00:1450::1]", fam: v6, reason: "not an address"},
		{raw: "fe80::1%eth0", fam: v6, reason: "not an address"},
		{raw: "1.2.3.4\x00", fam: v4, reason: "not an address"},
		{raw: "\"1.2.3.4\"", fam: v4, reason: "not an address"},
		{raw: "1.2.3.4\\059", fam: v4, reason: "not an address"},
		{raw: strings.Repeat("1", 65), fam: v4, reason: "answer too long"},
		{raw: "1.2.3.4" + strings.Repeat(" ", 60), fam: v4, reason: "answer too long"},
		// wrong family
		{raw: "2a00:1450::1", fam: v4, reason: "wrong family: want IPv4"},
		{raw: "1.2.3.4", fam: v6, reason: "wrong family: want IPv6"},
		{raw: "::ffff:1.2.3.4", fam: v4, reason: "IPv4-mapped IPv6 address"},
		{raw: "::ffff:1.2.3.4", fam: v6, reason: "IPv4-mapped IPv6 address"},
		// special-purpose IPv4
		{raw: "0.0.0.0", fam: v4, reason: `"this network" address`},
		{raw: "10.1.2.3", fam: v4, reason: "private address"},
		{raw: "172.16.0.1", fam: v4, reason: "private address"},
		{raw: "172.31.255.255", fam: v4, reason: "private address"},
		{raw: "192.168.1.1", fam: v4, reason: "private address"},
		{raw: "100.64.0.1", fam: v4, reason: "shared (CGNAT) address"},
		{raw: "100.127.255.254", fam: v4, reason: "shared (CGNAT) address"},
		{raw: "127.0.0.1", fam: v4, reason: "loopback address"},
		{raw: "169.254.1.1", fam: v4, reason: "link-local address"},
		{raw: "192.0.0.9", fam: v4, reason: "IETF protocol assignment"},
		{raw: "192.0.2.1", fam: v4, reason: "documentation address"},
		{raw: "198.51.100.7", fam: v4, reason: "documentation address"},
		{raw: "203.0.113.9", fam: v4, reason: "documentation address"},
		{raw: "198.18.0.1", fam: v4, reason: "benchmarking address"},
		{raw: "198.19.255.1", fam: v4, reason: "benchmarking address"},
		{raw: "192.88.99.1", fam: v4, reason: "6to4 relay anycast address"},
		{raw: "192.31.196.1", fam: v4, reason: "AS112 address"},
		{raw: "192.175.48.1", fam: v4, reason: "AS112 address"},
		{raw: "192.52.193.1", fam: v4, reason: "AMT address"},
		{raw: "224.0.0.1", fam: v4, reason: "multicast address"},
		{raw: "239.255.255.250", fam: v4, reason: "multicast address"},
		{raw: "240.0.0.1", fam: v4, reason: "reserved address"},
		{raw: "255.255.255.255", fam: v4, reason: "broadcast address"},
		// neighbours of special ranges are public
		{raw: "100.63.255.255", fam: v4, want: "100.63.255.255"},
		{raw: "100.128.0.0", fam: v4, want: "100.128.0.0"},
		{raw: "172.32.0.1", fam: v4, want: "172.32.0.1"},
		{raw: "198.20.0.1", fam: v4, want: "198.20.0.1"},
		{raw: "223.255.255.254", fam: v4, want: "223.255.255.254"},
		{raw: "104.18.0.0", fam: v4, want: "104.18.0.0"}, // valid, yet a lie: consensus's job
		// special-purpose IPv6
		{raw: "::", fam: v6, reason: "unspecified address"},
		{raw: "::1", fam: v6, reason: "loopback address"},
		{raw: "fe80::1", fam: v6, reason: "link-local address"},
		{raw: "fec0::1", fam: v6, reason: "site-local address"},
		{raw: "fd00::1", fam: v6, reason: "unique local address"},
		{raw: "ff02::1", fam: v6, reason: "multicast address"},
		{raw: "2001:db8::1", fam: v6, reason: "documentation address"},
		{raw: "3fff::1", fam: v6, reason: "documentation address"},
		{raw: "2001:2::1", fam: v6, reason: "benchmarking address"},
		{raw: "2001::1", fam: v6, reason: "IETF protocol assignment"},
		{raw: "2002:102:304::1", fam: v6, reason: "6to4 address"},
		{raw: "64:ff9b::102:304", fam: v6, reason: "NAT64 address"},
		{raw: "100::1", fam: v6, reason: "discard-only address"},
		{raw: "5f00::1", fam: v6, reason: "SRv6 SID"},
		{raw: "4000::1", fam: v6, reason: "unallocated IPv6 address"},
		{raw: "2620:4f:8000::1", fam: v6, reason: "AS112 address"},
		// allow-private admits lab ranges, never loopback and the like
		{raw: "10.1.2.3", fam: v4, allowPrivate: true, want: "10.1.2.3"},
		{raw: "100.64.0.1", fam: v4, allowPrivate: true, want: "100.64.0.1"},
		{raw: "198.51.100.7", fam: v4, allowPrivate: true, want: "198.51.100.7"},
		{raw: "198.18.0.1", fam: v4, allowPrivate: true, want: "198.18.0.1"},
		{raw: "fd00::1", fam: v6, allowPrivate: true, want: "fd00::1"},
		{raw: "2001:db8::1", fam: v6, allowPrivate: true, want: "2001:db8::1"},
		{raw: "127.0.0.1", fam: v4, allowPrivate: true, reason: "loopback address"},
		{raw: "169.254.1.1", fam: v4, allowPrivate: true, reason: "link-local address"},
		{raw: "224.0.0.1", fam: v4, allowPrivate: true, reason: "multicast address"},
		{raw: "0.0.0.0", fam: v4, allowPrivate: true, reason: `"this network" address`},
		{raw: "::1", fam: v6, allowPrivate: true, reason: "loopback address"},
		{raw: "fe80::1", fam: v6, allowPrivate: true, reason: "link-local address"},
		{raw: "1.2.3.4; reboot", fam: v4, allowPrivate: true, reason: "not an address"},
	}
	for _, tc := range tests {
		a, err := extip.ParseAnswer(tc.raw, tc.fam, tc.allowPrivate)
		if tc.want != "" {
			if err != nil || a != netip.MustParseAddr(tc.want) {
				t.Errorf("ParseAnswer(%q, %v, %v) = %v, %v; want %s", tc.raw, tc.fam, tc.allowPrivate, a, err, tc.want)
			}
			continue
		}
		f, ok := extip.IsFault(err)
		if !ok {
			t.Errorf("ParseAnswer(%q, %v, %v) = %v, %v; want fault %q", tc.raw, tc.fam, tc.allowPrivate, a, err, tc.reason)
			continue
		}
		if f.Reason != tc.reason {
			t.Errorf("ParseAnswer(%q, %v, %v): reason %q, want %q", tc.raw, tc.fam, tc.allowPrivate, f.Reason, tc.reason)
		}
		if a.IsValid() {
			t.Errorf("ParseAnswer(%q): rejected but returned %v", tc.raw, a)
		}
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"1.2.3.4", "1.2.3.4"},
		{"a\nb\x00c\xffd", "a?b?c?d"},
		{"<script>alert(1)</script>", "<script>alert(1)</script>"},
		{strings.Repeat("x", 70), strings.Repeat("x", 64) + "..."},
		{"\x1b[31mred", "?[31mred"},
	}
	for _, tc := range tests {
		if got := extip.Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseAnswer feeds arbitrary text to the validator directly (as an HTTP
// body) and through a DNS TXT record packed and unpacked by miekg/dns, and
// checks that whatever passes is one public unicast address of the asked
// family, written with nothing but address characters and surrounding
// whitespace.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		"1.2.3.4", "1.2.3.4\n", "2a00:1450::1", "1.2.3.4; reboot", "<html>1.2.3.4</html>",
		"1.2.3.4 5.6.7.8", "10.0.0.1", "::ffff:1.2.3.4", "fe80::1%eth0", "", "\x00\xff",
		"100.64.0.1", "01.2.3.4", "1.2.3.4\\059reboot", "\"1.2.3.4\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		check := func(path, raw string, fam extip.Family, allowPrivate bool, a netip.Addr, err error) {
			if err != nil {
				if a.IsValid() {
					t.Fatalf("%s: error %v with address %v", path, err, a)
				}
				return
			}
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("%s: accepted %q as %v", path, raw, a)
			}
			if (fam == extip.IPv4) != a.Is4() {
				t.Fatalf("%s: accepted %q (%v) for family %v", path, raw, a, fam)
			}
			if reason, never := extip.Special(a); reason != "" && (never || !allowPrivate) {
				t.Fatalf("%s: accepted %q (%v), a %s", path, raw, a, reason)
			}
			trimmed := strings.Trim(raw, " \t\r\n")
			if back, err := netip.ParseAddr(trimmed); err != nil || back != a {
				t.Fatalf("%s: accepted %q as %v but it does not round-trip", path, raw, a)
			}
			if strings.Trim(trimmed, "0123456789abcdefABCDEF.:") != "" {
				t.Fatalf("%s: accepted %q with non-address characters", path, raw)
			}
		}
		for _, fam := range []extip.Family{extip.IPv4, extip.IPv6} {
			for _, allow := range []bool{false, true} {
				a, err := extip.ParseAnswer(raw, fam, allow)
				check("http", raw, fam, allow, a, err)
			}
		}
		// The same text as a TXT record, through the wire format.
		q := new(dns.Msg)
		q.SetQuestion("whoami.test.", dns.TypeTXT)
		r := new(dns.Msg)
		r.SetReply(q)
		r.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "whoami.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{raw}}}
		wire, err := r.Pack()
		if err != nil {
			return
		}
		got := new(dns.Msg)
		if err := got.Unpack(wire); err != nil {
			t.Fatalf("unpack of packed message: %v", err)
		}
		txt, err := extip.ExtractAnswer(q, got)
		if err != nil {
			return
		}
		for _, allow := range []bool{false, true} {
			a, err := extip.ParseAnswer(txt, extip.IPv4, allow)
			check("txt", txt, extip.IPv4, allow, a, err)
		}
	})
}
