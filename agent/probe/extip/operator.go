package extip

import (
	"net/netip"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// knownOperators maps identity keys (see keys) of well-known services to the
// company that runs them, so that providers which look unrelated but are run
// by one operator count once in the consensus. icanhazip.com, for example,
// has been run by Cloudflare since 2021.
var knownOperators = map[string]string{
	"dom:cloudflare.com":      "cloudflare",
	"dom:whoami.cloudflare":   "cloudflare",
	"dom:cloudflare-dns.com":  "cloudflare",
	"dom:one.one.one.one":     "cloudflare",
	"dom:icanhazip.com":       "cloudflare",
	"ip:1.1.1.1":              "cloudflare",
	"ip:1.0.0.1":              "cloudflare",
	"ip:2606:4700:4700::1111": "cloudflare",
	"ip:2606:4700:4700::1001": "cloudflare",
	"dom:google.com":          "google",
	"ip:8.8.8.8":              "google",
	"ip:8.8.4.4":              "google",
	"ip:216.239.32.10":        "google",
	"ip:216.239.34.10":        "google",
	"ip:216.239.36.10":        "google",
	"ip:216.239.38.10":        "google",
	"ip:2001:4860:4860::8888": "google",
	"ip:2001:4860:4860::8844": "google",
	"ip:2001:4860:4802:32::a": "google",
	"ip:2001:4860:4802:34::a": "google",
	"ip:2001:4860:4802:36::a": "google",
	"ip:2001:4860:4802:38::a": "google",
	"dom:opendns.com":         "opendns",
	"ip:208.67.222.222":       "opendns",
	"ip:208.67.220.220":       "opendns",
	"ip:208.67.222.220":       "opendns",
	"ip:208.67.220.222":       "opendns",
	"ip:2620:119:35::35":      "opendns",
	"ip:2620:119:53::53":      "opendns",
	"ip:2620:0:ccc::2":        "opendns",
	"ip:2620:0:ccd::2":        "opendns",
	"dom:akamai.net":          "akamai",
	"dom:akamai.com":          "akamai",
	"dom:akamaitech.net":      "akamai",
	"dom:dnsomatic.com":       "opendns",
	"dom:amazonaws.com":       "amazon",
	"dom:no-ip.com":           "no-ip",
	"dom:dyndns.org":          "dyn",
}

// keys returns the identity keys of a provider: the registered domain of the
// DNS name it asks, and the registered domain (or the address) of the server
// it talks to.
func keys(s Spec) []string {
	var ks []string
	if s.IsDNS() {
		ks = append(ks, domainKey(s.Name))
	}
	ks = append(ks, hostKey(s.Server))
	return ks
}

func hostKey(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		return "ip:" + a.Unmap().WithZone("").String()
	}
	return domainKey(h)
}

// domainKey returns "dom:" plus the registered domain (eTLD+1 by the public
// suffix list) of name, or the name itself when it has none.
func domainKey(name string) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if d, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil {
		name = d
	}
	return "dom:" + name
}

// Operators returns the operator of each spec, in order. Two providers have
// the same operator when they share an identity key (the registered domain
// of the DNS name or of the server or URL host, or the server's address),
// directly or through other providers, or when their keys belong to the same
// well-known operator (Cloudflare, Google, OpenDNS, ...). The label is the
// well-known operator's name, or else the first provider's registered domain
// or address. The consensus counts each operator once.
func Operators(specs []Spec) []string {
	parent := make([]int, len(specs))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if ra < rb {
			parent[rb] = ra
		} else {
			parent[ra] = rb
		}
	}
	owner := map[string]int{}
	label := make([]string, len(specs))
	for i, s := range specs {
		for _, k := range keys(s) {
			ids := []string{k}
			if op, ok := knownOperators[k]; ok {
				ids = append(ids, "op:"+op)
				if label[i] == "" {
					label[i] = op
				}
			}
			for _, id := range ids {
				if j, ok := owner[id]; ok {
					union(i, j)
				} else {
					owner[id] = i
				}
			}
		}
	}
	// The group's label: the first well-known name in the group, else the
	// first member's first key.
	groupLabel := map[int]string{}
	for i, s := range specs {
		r := find(i)
		if label[i] != "" {
			if _, ok := groupLabel[r]; !ok || !isKnown(groupLabel[r]) {
				groupLabel[r] = label[i]
			}
			continue
		}
		if _, ok := groupLabel[r]; !ok {
			k := keys(s)[0]
			groupLabel[r] = k[strings.IndexByte(k, ':')+1:]
		}
	}
	out := make([]string, len(specs))
	for i := range specs {
		out[i] = groupLabel[find(i)]
	}
	return out
}

func isKnown(label string) bool {
	for _, op := range knownOperators {
		if op == label {
			return true
		}
	}
	return false
}
