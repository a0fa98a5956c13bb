package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Provider is one parsed ddns.providers entry: a source of the external IP
// address.
type Provider struct {
	// Scheme is "dns" for dns:// providers and "http" for http:// and
	// https:// URLs.
	Scheme string
	// Server is the DNS server (an IP address or host name) of a dns://
	// provider, or the host of an HTTP URL.
	Server string
	// Port is the DNS server's port (DefaultDNSPort when not given), or the
	// port of an HTTP URL (0 when not given: the scheme's).
	Port int
	// Name is the name a dns:// provider queries (without a final dot).
	Name string
	// Type is the record type a dns:// provider queries: "A" (the default),
	// "AAAA" or "TXT".
	Type string
	// Class is the query class of a dns:// provider: "IN" (the default) or
	// "CH".
	Class string
	// URL is the provider as written.
	URL string
}

// ParseProvider parses a ddns provider: an http(s) URL that answers with the
// address as text, or dns://SERVER[:PORT]/NAME?type=A|AAAA|TXT&class=IN|CH
// (type and class are optional and case-insensitive).
func ParseProvider(s string) (Provider, error) {
	p := Provider{URL: s}
	u, err := url.Parse(s)
	if err != nil {
		return p, fmt.Errorf("provider %q is not a URL: %w", s, errors.Unwrap(err))
	}
	if u.User != nil {
		return p, fmt.Errorf("provider %q: user info is not supported", s)
	}
	if u.Fragment != "" {
		return p, fmt.Errorf("provider %q: a #fragment is not supported", s)
	}
	host := u.Hostname()
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		p.Scheme = "http"
		if host == "" {
			return p, fmt.Errorf("provider %q has no host", s)
		}
		if err := CheckTarget(host); err != nil {
			return p, fmt.Errorf("provider %q: %w", s, err)
		}
		p.Server = host
		if port := u.Port(); port != "" {
			n, err := parsePort(port)
			if err != nil {
				return p, fmt.Errorf("provider %q: %w", s, err)
			}
			p.Port = n
		}
		return p, nil
	case "dns":
	default:
		return p, fmt.Errorf("provider %q: scheme %q is not dns, http or https", s, u.Scheme)
	}
	p.Scheme = "dns"
	if host == "" {
		return p, fmt.Errorf("provider %q has no DNS server (want dns://SERVER[:PORT]/NAME?type=A|AAAA|TXT&class=IN|CH)", s)
	}
	if err := CheckTarget(host); err != nil {
		return p, fmt.Errorf("provider %q: server %w", s, err)
	}
	p.Server, p.Port = host, DefaultDNSPort
	if port := u.Port(); port != "" {
		n, err := parsePort(port)
		if err != nil {
			return p, fmt.Errorf("provider %q: %w", s, err)
		}
		p.Port = n
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return p, fmt.Errorf("provider %q has no name to query (want dns://SERVER/NAME)", s)
	}
	if err := CheckDNSName(name); err != nil {
		return p, fmt.Errorf("provider %q: %w", s, err)
	}
	p.Name = strings.TrimSuffix(name, ".")
	p.Type, p.Class = "A", "IN"
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return p, fmt.Errorf("provider %q: bad query: %w", s, err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vs := q[k]
		if len(vs) != 1 {
			return p, fmt.Errorf("provider %q: %s is given %d times", s, k, len(vs))
		}
		v := strings.ToUpper(vs[0])
		switch k {
		case "type":
			if v != "A" && v != "AAAA" && v != "TXT" {
				return p, fmt.Errorf("provider %q: type %q is not A, AAAA or TXT", s, vs[0])
			}
			p.Type = v
		case "class":
			if v != "IN" && v != "CH" {
				return p, fmt.Errorf("provider %q: class %q is not IN or CH", s, vs[0])
			}
			p.Class = v
		default:
			return p, fmt.Errorf("provider %q: unknown parameter %q (want type and class)", s, k)
		}
	}
	return p, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number 1..65535", s)
	}
	return n, nil
}
