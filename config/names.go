package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The syntax checks of single values, exported for `imon configure`, which
// checks every answer as it is typed.

// CheckTarget checks a probe target (monitorip, addping items, *-ping,
// *-postping): an IPv4 or IPv6 address, or a host name.
func CheckTarget(s string) error {
	if s == "" {
		return errors.New("empty: want an IP address or host name")
	}
	if looksLikeIP(s) {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("%q is not a valid IP address", s)
		}
		return nil
	}
	if err := checkName(s, false); err != nil {
		return fmt.Errorf("%q is not a valid IP address or host name: %w", s, err)
	}
	return nil
}

// looksLikeIP reports whether s is meant as an IP literal: it has a colon,
// or only digits and dots.
func looksLikeIP(s string) bool {
	if strings.Contains(s, ":") {
		return true
	}
	return strings.Trim(s, "0123456789.") == "" && strings.Contains(s, ".")
}

// CheckHostName checks the syntax of a host name: labels of letters, digits
// and '-' (not at either end), 1 to 63 characters each, at most 253 in all,
// an optional final dot, and a last label that is not all digits.
func CheckHostName(s string) error {
	if err := checkName(s, false); err != nil {
		return fmt.Errorf("%q is not a valid host name: %w", s, err)
	}
	return nil
}

// CheckDNSName checks a name to look up in DNS (dnslookup): a host name
// whose labels may also hold '_' (as in _service names).
func CheckDNSName(s string) error {
	if err := checkName(s, true); err != nil {
		return fmt.Errorf("%q is not a valid DNS name: %w", s, err)
	}
	return nil
}

func checkName(s string, underscore bool) error {
	name := strings.TrimSuffix(s, ".")
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > 253:
		return errors.New("longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return errors.New("empty label")
		case len(l) > 63:
			return fmt.Errorf("label %q is longer than 63 characters", l)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
		for _, r := range l {
			ok := r < utf8.RuneSelf && (r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || underscore && r == '_')
			if !ok {
				return fmt.Errorf("character %q is not allowed", r)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("the last label is all digits")
	}
	return nil
}

// CheckDNSServer checks a DNS server (updown.dnsserver): an IP address or
// host name, optionally with a port (IP:PORT, [IPv6]:PORT, NAME:PORT).
func CheckDNSServer(s string) error {
	if s == "" {
		return errors.New("empty: want an IP address or host name")
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return CheckTarget(s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number 1..65535", s, port)
	}
	return CheckTarget(host)
}

// maxIfNameLen is IFNAMSIZ-1: the kernel's limit on interface names.
const maxIfNameLen = 15

// CheckIfName checks the syntax of a network interface name (it does not
// check that the interface exists: see [CheckHost]).
func CheckIfName(s string) error {
	switch {
	case s == "":
		return errors.New("empty interface name")
	case len(s) > maxIfNameLen:
		return fmt.Errorf("interface name %q is longer than %d characters", s, maxIfNameLen)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not an interface name", s)
	}
	for _, r := range s {
		if r == '/' || r == ':' || unicode.IsSpace(r) || r < ' ' || r >= utf8.RuneSelf {
			return fmt.Errorf("interface name %q holds a character %q that is not allowed", s, r)
		}
	}
	return nil
}

// CheckInstance checks an instance name: letters, digits, '.', '_' and '-',
// not starting with '.' or '-', at most 64 characters (it names files, the
// systemd unit imon@NAME and the default MQTT node id).
func CheckInstance(s string) error {
	switch {
	case s == "":
		return errors.New("empty instance name")
	case len(s) > 64:
		return fmt.Errorf("instance name %q is longer than 64 characters", s)
	case s[0] == '.' || s[0] == '-':
		return fmt.Errorf("instance name %q starts with %q", s, s[0])
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; !isNodeIDChar(ch) && ch != '.' {
			return fmt.Errorf("instance name %q holds %q: use letters, digits, '.', '_' and '-'", s, rune(ch))
		}
	}
	return nil
}

// CheckWANName checks a failover network name (primary-name, standby-name):
// it is a field of the action script's NETINFO argument
// (name:ename:ifname:ip), so it may hold neither ':' nor spaces.
func CheckWANName(s string) error {
	if s == "" {
		return errors.New("empty network name")
	}
	for _, r := range s {
		if r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("network name %q holds %q: it may hold neither ':' nor spaces", s, r)
		}
	}
	return nil
}

func isNodeIDChar(ch byte) bool {
	return ch == '_' || ch == '-' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
}

// CheckNodeID checks an MQTT node id: one or more of [a-zA-Z0-9_-] (it is a
// topic level and a Home Assistant discovery node id).
func CheckNodeID(s string) error {
	if s == "" {
		return errors.New("empty node id")
	}
	for i := 0; i < len(s); i++ {
		if !isNodeIDChar(s[i]) {
			return fmt.Errorf("node id %q holds %q: use only letters, digits, '_' and '-'", s, rune(s[i]))
		}
	}
	return nil
}

// CheckTopicPrefix checks an MQTT topic prefix (topic-prefix,
// discovery-prefix): valid UTF-8 without the wildcards '+' and '#', NUL, a
// leading '$' or '/', a trailing '/' or empty levels.
func CheckTopicPrefix(s string) error {
	switch {
	case s == "":
		return errors.New("empty topic prefix")
	case !utf8.ValidString(s):
		return fmt.Errorf("topic prefix %q is not valid UTF-8", s)
	case strings.ContainsAny(s, "+#\x00"):
		return fmt.Errorf("topic prefix %q holds a wildcard ('+', '#') or NUL", s)
	case s[0] == '$':
		return fmt.Errorf("topic prefix %q starts with '$' (reserved for the broker)", s)
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//"):
		return fmt.Errorf("topic prefix %q has an empty level (a leading, trailing or double '/')", s)
	}
	return nil
}

// mqttSchemes are the accepted MQTT server URL schemes; true for TLS.
var mqttSchemes = map[string]bool{"mqtt": false, "tcp": false, "mqtts": true, "ssl": true, "tls": true, "unix": false}

// CheckMQTTServer checks an MQTT server URL: mqtt://HOST[:PORT] (or tcp://),
// mqtts://HOST[:PORT] (or ssl://, tls://), or unix:///PATH.
func CheckMQTTServer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, errors.Unwrap(err))
	}
	scheme := strings.ToLower(u.Scheme)
	if _, ok := mqttSchemes[scheme]; !ok {
		return fmt.Errorf("%q: scheme %q is not one of mqtt, mqtts, tcp, ssl, tls, unix (want e.g. mqtt://host:1883)", s, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%q: put the user name in username and the password in password-file, not in the URL", s)
	}
	if scheme == "unix" {
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("%q: want unix:///absolute/path", s)
		}
		return nil
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host (want e.g. %s://host:1883)", s, scheme)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want only %s://host[:port], without a path or query", s, scheme)
	}
	if err := CheckTarget(u.Hostname()); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not a number 1..65535", s, p)
		}
	}
	return nil
}

// IsTLSServer reports whether an MQTT server URL uses TLS (mqtts, ssl, tls).
func IsTLSServer(s string) bool {
	u, err := url.Parse(s)
	return err == nil && mqttSchemes[strings.ToLower(u.Scheme)]
}

// suggest returns ` (did you mean "X"?)` for the candidate closest to word
// (Levenshtein distance at most 2, or a third of word's length), or "".
func suggest(word string, candidates []string) string {
	best, bestDist := "", -1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		d := levenshtein(lw, c)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(word)/3) || bestDist >= len(word) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// levenshtein is the edit distance between a and b (bytes).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
