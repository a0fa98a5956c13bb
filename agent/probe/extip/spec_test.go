package extip_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"imon/agent/probe/extip"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want extip.Spec // Raw is filled in from in
		fam  extip.Family
		err  string // substring of the error
	}{
		{in: "dns://1.1.1.1/whoami.cloudflare?type=TXT&class=CH",
			want: extip.Spec{Scheme: "dns", Server: "1.1.1.1", Port: 53, Name: "whoami.cloudflare", Type: dns.TypeTXT, Class: dns.ClassCHAOS}, fam: extip.IPv4},
		{in: "dns://216.239.32.10/o-o.myaddr.l.google.com?type=TXT",
			want: extip.Spec{Scheme: "dns", Server: "216.239.32.10", Port: 53, Name: "o-o.myaddr.l.google.com", Type: dns.TypeTXT, Class: dns.ClassINET}, fam: extip.IPv4},
		{in: "dns://208.67.222.222/myip.opendns.com?type=A",
			want: extip.Spec{Scheme: "dns", Server: "208.67.222.222", Port: 53, Name: "myip.opendns.com", Type: dns.TypeA, Class: dns.ClassINET}, fam: extip.IPv4},
		{in: "dns://127.0.0.1:5353/My.Test.?type=a&class=in",
			want: extip.Spec{Scheme: "dns", Server: "127.0.0.1", Port: 5353, Name: "my.test", Type: dns.TypeA, Class: dns.ClassINET}, fam: extip.IPv4},
		{in: "dns://[2620:119:35::35]/myip.opendns.com?type=AAAA",
			want: extip.Spec{Scheme: "dns", Server: "2620:119:35::35", Port: 53, Name: "myip.opendns.com", Type: dns.TypeAAAA, Class: dns.ClassINET}, fam: extip.IPv6},
		{in: "dns://[2606:4700:4700::1111]:53/whoami.cloudflare?type=TXT&class=CH",
			want: extip.Spec{Scheme: "dns", Server: "2606:4700:4700::1111", Port: 53, Name: "whoami.cloudflare", Type: dns.TypeTXT, Class: dns.ClassCHAOS}, fam: extip.IPv6},
		{in: "dns://ns1.google.com/o-o.myaddr.l.google.com?type=TXT",
			want: extip.Spec{Scheme: "dns", Server: "ns1.google.com", Port: 53, Name: "o-o.myaddr.l.google.com", Type: dns.TypeTXT, Class: dns.ClassINET}, fam: extip.IPv4},
		{in: "dns://1.1.1.1/myip.test",
			want: extip.Spec{Scheme: "dns", Server: "1.1.1.1", Port: 53, Name: "myip.test", Type: dns.TypeA, Class: dns.ClassINET}, fam: extip.IPv4},
		{in: "https://api.ipify.org",
			want: extip.Spec{Scheme: "https", Server: "api.ipify.org", URL: "https://api.ipify.org"}, fam: extip.IPv4},
		{in: "http://ifconfig.me/ip",
			want: extip.Spec{Scheme: "http", Server: "ifconfig.me", URL: "http://ifconfig.me/ip"}, fam: extip.IPv4},
		{in: "https://[2606:4700::1]:8443/ip",
			want: extip.Spec{Scheme: "https", Server: "2606:4700::1", URL: "https://[2606:4700::1]:8443/ip"}, fam: extip.IPv6},
		{in: "ftp://x/", err: `scheme "ftp" is not dns, http or https`},
		{in: "1.1.1.1", err: `scheme "" is not dns, http or https`},
		{in: "dns:///whoami.cloudflare", err: "has no DNS server"},
		{in: "dns://1.1.1.1", err: "has no name to query"},
		{in: "dns://1.1.1.1/", err: "has no name to query"},
		{in: "dns://1.1.1.1/a/b", err: "character '/' is not allowed"},
		{in: "dns://1.1.1.1/a..b", err: "not a valid DNS name"},
		{in: "dns://1.1.1.1:0/a.test", err: "is not a number 1..65535"},
		{in: "dns://1.1.1.1:99999/a.test", err: "is not a number 1..65535"},
		{in: "dns://1.1.1.1/a.test?type=MX", err: `type "MX" is not A, AAAA or TXT`},
		{in: "dns://1.1.1.1/a.test?class=HS", err: `class "HS" is not IN or CH`},
		{in: "dns://1.1.1.1/a.test?type=A&type=TXT", err: "is given 2 times"},
		{in: "dns://1.1.1.1/a.test?ttl=5", err: "unknown parameter"},
		{in: "dns://1.1.1.1/a.test#x", err: "fragment"},
		{in: "dns://u:p@1.1.1.1/a.test", err: "user info"},
		{in: "https://", err: "has no host"},
		{in: "https://u:p@api.ipify.org", err: "user info"},
		{in: "https://api.ipify.org/#x", err: "fragment"},
		{in: "https://api.ipify.org:0/", err: "is not a number 1..65535"},
	}
	for _, tc := range tests {
		got, err := extip.Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		tc.want.Raw = tc.in
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if got.Family() != tc.fam {
			t.Errorf("Parse(%q).Family() = %v, want %v", tc.in, got.Family(), tc.fam)
		}
	}
}

func TestOperators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		specs []string
		want  []string
	}{
		{"defaults", []string{
			"dns://1.1.1.1/whoami.cloudflare?type=TXT&class=CH",
			"dns://216.239.32.10/o-o.myaddr.l.google.com?type=TXT",
			"dns://208.67.222.222/myip.opendns.com?type=A",
			"https://api.ipify.org",
			"https://ifconfig.me/ip",
			"https://icanhazip.com",
		}, []string{"cloudflare", "google", "opendns", "ipify.org", "ifconfig.me", "cloudflare"}},
		{"same registered domain", []string{
			"https://api.ipify.org", "https://api64.ipify.org", "https://ipv4.example.net/ip", "https://example.net/ip",
		}, []string{"ipify.org", "ipify.org", "example.net", "example.net"}},
		{"same server address", []string{
			"dns://192.0.2.53/a.test", "dns://192.0.2.53:5353/b.test", "dns://192.0.2.54/c.test",
		}, []string{"a.test", "a.test", "c.test"}},
		{"same name on other servers", []string{
			"dns://192.0.2.1/myip.example.org", "dns://192.0.2.2/myip.example.org", "dns://192.0.2.3/other.example.com",
		}, []string{"example.org", "example.org", "example.com"}},
		{"transitive", []string{
			"dns://192.0.2.1/a.test", "dns://192.0.2.1/b.test", "dns://192.0.2.2/b.test", "https://192.0.2.2/",
		}, []string{"a.test", "a.test", "a.test", "a.test"}},
		{"known operator by address", []string{
			"dns://8.8.8.8/whoami.example.com?type=TXT", "dns://ns1.google.com/o-o.myaddr.l.google.com?type=TXT",
			"dns://1.0.0.1/x.example.org", "dns://[2606:4700:4700::1111]/whoami.cloudflare?type=TXT&class=CH",
		}, []string{"google", "google", "cloudflare", "cloudflare"}},
		{"loopback test servers", []string{
			"dns://127.0.0.1:5301/a.test", "dns://127.0.0.2:5302/b.test", "dns://127.0.0.3:5303/c.test", "http://127.0.0.4:8080/",
		}, []string{"a.test", "b.test", "c.test", "127.0.0.4"}},
		{"case and trailing dot", []string{"dns://192.0.2.1/MyIP.Example.ORG.", "https://EXAMPLE.org/ip"},
			[]string{"example.org", "example.org"}},
	}
	for _, tc := range tests {
		var specs []extip.Spec
		for _, s := range tc.specs {
			sp, err := extip.Parse(s)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			specs = append(specs, sp)
		}
		if got := extip.Operators(specs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Operators = %q, want %q", tc.name, got, tc.want)
		}
	}
}
