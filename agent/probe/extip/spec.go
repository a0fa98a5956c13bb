package extip

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/miekg/dns"

	"imon/config"
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
const DefaultDNSPort = config.DefaultDNSPort

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

// Parse parses one `ddns.providers` entry with config.ParseProvider (the
// grammar `imon check` validates), so that every provider the config
// accepts runs: dns://SERVER[:PORT]/NAME?type=A|AAAA|TXT&class=IN|CH (type
// defaults to A, class to IN; an IPv6 server is written in brackets), or
// an http:// or https:// URL that answers with the address as text.
func Parse(s string) (Spec, error) {
	cp, err := config.ParseProvider(s)
	if err != nil {
		return Spec{}, err
	}
	return FromConfig(cp)
}

// FromConfig converts a provider parsed by config.ParseProvider.
func FromConfig(cp config.Provider) (Spec, error) {
	sp := Spec{Raw: cp.URL, Server: cp.Server}
	if cp.Scheme != "dns" {
		u, err := url.Parse(cp.URL)
		if err != nil {
			return Spec{}, fmt.Errorf("provider %q: %w", cp.URL, err)
		}
		sp.Scheme = strings.ToLower(u.Scheme)
		if sp.Scheme != "http" && sp.Scheme != "https" {
			return Spec{}, fmt.Errorf("provider %q: scheme %q is not dns, http or https", cp.URL, u.Scheme)
		}
		sp.Server = strings.ToLower(cp.Server)
		sp.URL = u.String()
		return sp, nil
	}
	sp.Scheme, sp.Port, sp.Name = "dns", cp.Port, strings.ToLower(strings.TrimSuffix(cp.Name, "."))
	switch strings.ToUpper(cp.Type) {
	case "A", "":
		sp.Type = dns.TypeA
	case "AAAA":
		sp.Type = dns.TypeAAAA
	case "TXT":
		sp.Type = dns.TypeTXT
	default:
		return Spec{}, fmt.Errorf("provider %q: type %q is not A, AAAA or TXT", cp.URL, cp.Type)
	}
	switch strings.ToUpper(cp.Class) {
	case "IN", "":
		sp.Class = dns.ClassINET
	case "CH":
		sp.Class = dns.ClassCHAOS
	default:
		return Spec{}, fmt.Errorf("provider %q: class %q is not IN or CH", cp.URL, cp.Class)
	}
	if sp.Port == 0 {
		sp.Port = DefaultDNSPort
	}
	return sp, nil
}
