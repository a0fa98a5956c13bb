package provider

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Family is the address family a provider reports: the ddns monitor tracks
// the IPv4 and the IPv6 external address separately.
type Family int

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "ipv4" or "ipv6", the name used in events and state.
func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// DefaultDNSPort is the port of a dns:// provider without an explicit port.
const DefaultDNSPort = 53

// Spec is one configured provider, parsed from its `ddns.providers` string.
type Spec struct {
	// Raw is the string as configured; it names the provider in events.
	Raw string
	// Scheme is "dns", "http" or "https".
	Scheme string
	// Server is the DNS server (IP literal, without brackets, or host name)
	// or the HTTP URL's host name.
	Server string
	// Port is the DNS server's port (DefaultDNSPort when not given); 0 for
	// HTTP providers.
	Port int
	// Name is the DNS name asked, without the trailing dot.
	Name string
	// Type is the DNS query type: dns.TypeA, dns.TypeAAAA or dns.TypeTXT.
	Type uint16
	// Class is the DNS query class: dns.ClassINET or dns.ClassCHAOS.
	Class uint16
	// URL is the HTTP(S) URL; "" for DNS providers.
	URL string
}

// IsDNS reports whether the provider is asked over DNS (not HTTP).
func (s Spec) IsDNS() bool { return s.Scheme == "dns" }

// Family is the address family the provider reports. A and AAAA queries
// report their own family; a TXT query and an HTTP request report the
// family of the connection, which imon forces to IPv6 only when the server
// (or URL host) is an IPv6 literal, and to IPv4 otherwise.
func (s Spec) Family() Family {
	switch {
	case s.IsDNS() && s.Type == dns.TypeA:
		return IPv4
	case s.IsDNS() && s.Type == dns.TypeAAAA:
		return IPv6
	}
	if a, err := netip.ParseAddr(s.Server); err == nil && a.Is6() && !a.Is4In6() {
		return IPv6
	}
	return IPv4
}

// String returns the provider as configured.
func (s Spec) String() string { return s.Raw }

// Parse parses one `ddns.providers` entry: either
// dns://SERVER[:PORT]/NAME?type=A|AAAA|TXT&class=IN|CH (type defaults to A,
// class to IN; an IPv6 server is written in brackets) or an http:// or
// https:// URL that answers with the address as text.
func Parse(s string) (Spec, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Spec{}, fmt.Errorf("provider %q: %w", s, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "dns":
		return parseDNS(s, u)
	case "http", "https":
		return parseHTTP(s, u)
	case "":
		return Spec{}, fmt.Errorf("provider %q: missing scheme (want dns://, http:// or https://)", s)
	default:
		return Spec{}, fmt.Errorf("provider %q: unsupported scheme %q (want dns, http or https)", s, u.Scheme)
	}
}

func parseDNS(raw string, u *url.URL) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("provider %q: %s", raw, fmt.Sprintf(format, args...))
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("want dns://SERVER[:PORT]/NAME")
	}
	if u.User != nil {
		return bad("user info is not allowed")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("fragment is not allowed")
	}
	sp := Spec{Raw: raw, Scheme: "dns", Server: u.Hostname(), Port: DefaultDNSPort, Type: dns.TypeA, Class: dns.ClassINET}
	if sp.Server == "" {
		return bad("missing server")
	}
	if a, err := netip.ParseAddr(sp.Server); err == nil {
		if a.Zone() != "" {
			return bad("server %q: zones are not allowed", sp.Server)
		}
	} else if strings.Contains(u.Host, "[") {
		return bad("server %q is not an IPv6 address", sp.Server)
	} else if _, ok := dns.IsDomainName(sp.Server); !ok || strings.ContainsAny(sp.Server, " \\") {
		return bad("server %q is neither an IP address nor a host name", sp.Server)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q out of range 1..65535", p)
		}
		sp.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return bad("missing NAME after the server")
	}
	if strings.Contains(name, "/") {
		return bad("NAME %q must not contain '/'", name)
	}
	name = strings.TrimSuffix(name, ".")
	if n, ok := dns.IsDomainName(name); !ok || n == 0 || strings.ContainsAny(name, " \\\"") {
		return bad("NAME %q is not a domain name", name)
	}
	sp.Name = strings.ToLower(name)
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return bad("%q given %d times", k, len(vs))
		}
		v := strings.ToUpper(vs[0])
		switch k {
		case "type":
			switch v {
			case "A":
				sp.Type = dns.TypeA
			case "AAAA":
				sp.Type = dns.TypeAAAA
			case "TXT":
				sp.Type = dns.TypeTXT
			default:
				return bad("type %q not supported (want A, AAAA or TXT)", vs[0])
			}
		case "class":
			switch v {
			case "IN":
				sp.Class = dns.ClassINET
			case "CH":
				sp.Class = dns.ClassCHAOS
			default:
				return bad("class %q not supported (want IN or CH)", vs[0])
			}
		default:
			return bad("unknown parameter %q (want type and class)", k)
		}
	}
	return sp, nil
}

func parseHTTP(raw string, u *url.URL) (Spec, error) {
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("provider %q: %s", raw, fmt.Sprintf(format, args...))
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return bad("missing host")
	}
	if u.User != nil {
		return bad("user info is not allowed")
	}
	if u.Fragment != "" {
		return bad("fragment is not allowed")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q out of range 1..65535", p)
		}
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return bad("host %q: zones are not allowed", host)
		}
	} else if _, ok := dns.IsDomainName(host); !ok || strings.ContainsAny(host, " \\\"") {
		return bad("host %q is not a host name", host)
	}
	return Spec{Raw: raw, Scheme: strings.ToLower(u.Scheme), Server: strings.ToLower(host), URL: u.String()}, nil
}
