package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds checked by validate.
const (
	maxMetric       = 1<<31 - 1
	maxAfter        = 1000  // down-after, up-after
	maxRulePriority = 32000 // the kernel's main and default rules sit at 32766 and 32767
	maxSocketPath   = 107   // sizeof(sun_path) - 1
	maxKeepAlive    = 65535 * time.Second
)

// Lower bounds of the probe timings (documented in docs/config.md): below
// them a monitor spins instead of probing ("interval": 0.001 gave 1,443
// events in 5 s at 27 % CPU), fills the journal and runs the action script
// in a loop.
const (
	// MinInterval bounds every monitor's interval.
	MinInterval = 100 * time.Millisecond
	// MinPingWait bounds pingwait (the wait for one ping's reply).
	MinPingWait = 100 * time.Millisecond
	// MinDownInterval bounds updown's down-interval.
	MinDownInterval = 100 * time.Millisecond
	// MinProbeInterval bounds failover's probe-interval (the derived
	// default never goes below it either: [MinDefaultProbeInterval]).
	MinProbeInterval = 50 * time.Millisecond
	// MinDDNSTimeout bounds ddns's timeout of one provider query.
	MinDDNSTimeout = 100 * time.Millisecond
)

// validator collects the problems of one configuration.
type validator struct {
	c  *Config
	ps Problems
}

func (v *validator) add(section, key, format string, args ...any) {
	v.ps = append(v.ps, v.c.problem(section, key, fmt.Sprintf(format, args...)))
}

func (v *validator) check(section, key string, err error) {
	if err != nil {
		v.ps = append(v.ps, v.c.problem(section, key, err.Error()))
	}
}

// positive checks a duration that must be > 0.
func (v *validator) positive(section, key string, d time.Duration) {
	if d <= 0 {
		v.add(section, key, "must be greater than 0 seconds, got %s", seconds(d))
	}
}

// atLeast checks a duration that must be >= min.
func (v *validator) atLeast(section, key string, d, min time.Duration) {
	if d < min {
		v.add(section, key, "must be at least %s seconds, got %s", seconds(min), seconds(d))
	}
}

// required reports a key an enabled section needs.
func (v *validator) required(section, key, val string) bool {
	if val == "" {
		v.add(section, key, "required when %s is enabled", section)
		return false
	}
	return true
}

// seconds formats a duration as the file writes it.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// validate checks every value and the rules between values. A value that is
// set is checked even in a disabled section; required keys and rules between
// keys only in enabled ones.
func (c *Config) validate() Problems {
	v := &validator{c: c}
	v.global()
	v.probe(SectionDDNS, &c.DDNS.Probe)
	v.ddns()
	v.probe(SectionUpdown, &c.Updown.Probe)
	v.updown()
	v.probe(SectionFailover, &c.Failover.Probe)
	v.failover()
	v.probe(SectionPing, &c.Ping.Probe)
	v.ping()
	v.journal()
	v.mqtt()
	v.homeAssistant()
	return v.ps
}

func (v *validator) global() {
	g := &v.c.Global
	const s = SectionGlobal
	v.check(s, "instance", CheckInstance(g.Instance))
	if g.Action != "" && !filepath.IsAbs(g.Action) {
		v.add(s, "action", "%q is not an absolute path", g.Action)
	}
	v.positive(s, "action-timeout", g.ActionTimeout)
	v.positive(s, "action-max-age", g.ActionMaxAge)
}

func (v *validator) probe(s string, p *Probe) {
	v.atLeast(s, "interval", p.Interval, MinInterval)
	if p.PingCount < 1 || p.PingCount > MaxPingCount {
		v.add(s, "pingcount", "must be 1..%d, got %d", MaxPingCount, p.PingCount)
	}
	v.atLeast(s, "pingwait", p.PingWait, MinPingWait)
}

func (v *validator) ddns() {
	d := &v.c.DDNS
	const s = SectionDDNS
	// The defaults are set before decoding: an empty list is the user's
	// [] (or [""]), which must not quietly mean the default operators.
	if len(d.Providers) == 0 {
		v.add(s, "providers", "is empty: ddns needs at least one provider (remove the key for the default list)")
	}
	for _, p := range d.Providers {
		_, err := ParseProvider(p)
		v.check(s, "providers", err)
	}
	// A quorum above the number of independent operators configured is
	// capped by the ddns monitor (one provider: the same answer twice), so
	// it is not an error.
	if d.Quorum < 1 {
		v.add(s, "quorum", "must be at least 1, got %d", d.Quorum)
	}
	v.atLeast(s, "timeout", d.Timeout, MinDDNSTimeout)
	if d.Interface != "" {
		v.check(s, "interface", CheckIfName(d.Interface))
	}
}

func (v *validator) updown() {
	u := &v.c.Updown
	const s = SectionUpdown
	if u.Enable {
		v.required(s, "monitorip", u.MonitorIP)
	}
	if u.MonitorIP != "" {
		v.check(s, "monitorip", CheckTarget(u.MonitorIP))
	}
	for _, a := range u.AddPing {
		v.check(s, "addping", CheckTarget(a))
	}
	if u.DNSServer != "" {
		v.check(s, "dnsserver", CheckDNSServer(u.DNSServer))
	}
	if u.DNSLookup != "" {
		v.check(s, "dnslookup", CheckDNSName(u.DNSLookup))
	}
	if u.Enable {
		switch {
		case u.DNSServer != "" && u.DNSLookup == "":
			v.add(s, "dnslookup", "required when dnsserver is set (the name to look up there)")
		case u.DNSServer == "" && u.DNSLookup != "":
			v.add(s, "dnsserver", "required when dnslookup is set (the server to look it up on)")
		}
	}
	// A default derived from a too small interval is that key's problem.
	if v.c.isSet(s, "down-interval") || u.Interval >= MinInterval {
		v.atLeast(s, "down-interval", u.DownInterval, MinDownInterval)
	}
}

func (v *validator) failover() {
	f := &v.c.Failover
	const s = SectionFailover
	for _, w := range []struct {
		prefix string
		wan    *WAN
	}{{"primary", &f.Primary}, {"standby", &f.Standby}} {
		p := w.prefix
		if f.Enable {
			v.required(s, p+"-if", w.wan.If)
			v.required(s, p+"-name", w.wan.Name)
			if !w.wan.GW.IsValid() {
				v.add(s, p+"-gw", "required when failover is enabled")
			}
		}
		if w.wan.If != "" {
			v.check(s, p+"-if", CheckIfName(w.wan.If))
		}
		if w.wan.Name != "" {
			v.check(s, p+"-name", CheckWANName(w.wan.Name))
		}
		if gw := w.wan.GW; gw.IsValid() && (gw.IsUnspecified() || gw.IsMulticast() || gw.IsLoopback()) {
			v.add(s, p+"-gw", "%s is not a usable gateway address", gw)
		} else if gw.IsValid() && !gw.Unmap().Is4() {
			v.add(s, p+"-gw", "%s is an IPv6 address: failover routes IPv4 only (IPv6 is left to router advertisements)", gw)
		}
		for _, t := range []struct{ key, val string }{{p + "-ping", w.wan.Ping}, {p + "-postping", w.wan.PostPing}} {
			if t.val == "" {
				continue
			}
			if err := CheckTarget(t.val); err != nil {
				v.check(s, t.key, err)
			} else if a, err := netip.ParseAddr(strings.Trim(t.val, "[]")); err == nil && !a.Unmap().Is4() {
				v.add(s, t.key, "%s is an IPv6 address: failover probes each WAN over IPv4 only", a)
			}
		}
	}
	if f.Enable && f.Primary.If != "" && f.Primary.If == f.Standby.If {
		v.add(s, "standby-if", "is %q, the same interface as primary-if", f.Standby.If)
	}
	if f.Metric < 0 || f.Metric > maxMetric {
		v.add(s, "metric", "must be 0..%d, got %d", maxMetric, f.Metric)
	}
	if f.DownAfter < 1 || f.DownAfter > maxAfter {
		v.add(s, "down-after", "must be 1..%d, got %d", maxAfter, f.DownAfter)
	}
	if f.UpAfter < 1 || f.UpAfter > maxAfter {
		v.add(s, "up-after", "must be 1..%d, got %d", maxAfter, f.UpAfter)
	}
	if f.HoldTime < 0 {
		v.add(s, "failback-hold", "must not be negative, got %s", seconds(f.HoldTime))
	}
	if f.HoldMax < f.HoldTime {
		v.add(s, "failback-hold-max", "is %s seconds, less than failback-hold (%s)", seconds(f.HoldMax), seconds(f.HoldTime))
	}
	if v.c.isSet(s, "probe-interval") || f.Interval >= MinInterval {
		v.atLeast(s, "probe-interval", f.ProbeInterval, MinProbeInterval)
	}
	// The primary uses table-base, the standby table-base+1; 0 and 253..255
	// are the kernel's unspec, default, main and local tables.
	if tb := f.TableBase; tb < 1 || tb > 1<<31-2 || (tb >= 252 && tb <= 255) {
		v.add(s, "table-base", "must be 1..%d and neither it nor the next table one of the reserved tables 253..255, got %d", 1<<31-2, tb)
	}
	if f.RulePriority < 1 || f.RulePriority > maxRulePriority {
		v.add(s, "rule-priority", "must be 1..%d, got %d", maxRulePriority, f.RulePriority)
	}
	if f.FwmarkBase < 1 || f.FwmarkBase > 1<<32-2 {
		v.add(s, "fwmark-base", "must be 1..%d, got %d", uint32(1<<32-2), f.FwmarkBase)
	}
	if p := f.RouteProtocol; p < 1 || p > 255 {
		v.add(s, "route-protocol", "must be 1..255, got %d", p)
	} else if name := reservedProtocol(p); name != "" {
		v.add(s, "route-protocol", "%d is the route protocol of %s: imon would take its routes for its own; choose an unassigned number such as 201..250", p, name)
	}
}

// reservedProtocol names the owner of route protocol p when p is assigned
// (the kernel's rtnetlink.h RTPROT_* values, iproute2's rt_protos and FRR's
// 186..197), or "".
func reservedProtocol(p int) string {
	switch {
	case p >= 186 && p <= 197:
		return "FRR (186..197)"
	case p == 0:
		return "unspec"
	}
	names := map[int]string{
		1: "redirect", 2: "the kernel", 3: "boot", 4: "static routes", 8: "gated", 9: "router advertisements",
		10: "mrt", 11: "zebra", 12: "BIRD", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "DHCP clients",
		17: "mrouted", 18: "keepalived", 42: "babel", 84: "OVN", 99: "openr",
	}
	return names[p]
}

func (v *validator) ping() {
	p := &v.c.Ping
	const s = SectionPing
	if p.Enable {
		v.required(s, "monitorip", p.MonitorIP)
	}
	if p.MonitorIP != "" {
		v.check(s, "monitorip", CheckTarget(p.MonitorIP))
	}
}

func (v *validator) journal() {
	j := &v.c.Journal
	const s = SectionJournal
	if !filepath.IsAbs(j.Path) {
		v.add(s, "path", "%q is not an absolute path", j.Path)
	} else if strings.ContainsRune(j.Path, 0) {
		v.add(s, "path", "%q holds a NUL byte", j.Path)
	}
	if strings.ContainsRune(j.Socket, 0) {
		v.add(s, "socket", "%q holds a NUL byte", j.Socket)
	}
	if !filepath.IsAbs(j.Socket) {
		v.add(s, "socket", "%q is not an absolute path", j.Socket)
	} else if len(j.Socket) > maxSocketPath {
		v.add(s, "socket", "is longer than %d bytes, the limit of a unix socket path", maxSocketPath)
	}
	// The journal file and the socket replace what is at their paths: they
	// must not name a file of the configuration.
	cfgPath := v.c.Path
	if abs, err := filepath.Abs(cfgPath); err == nil && cfgPath != "" {
		cfgPath = abs
	}
	others := []struct{ what, path string }{
		{"the config file itself", cfgPath},
		{"global.action", v.c.Global.Action},
		{"mqtt.password-file", v.c.MQTT.PasswordFile},
		{"mqtt.ca-file", v.c.MQTT.CAFile},
	}
	same := func(a, b string) bool {
		return a != "" && b != "" && filepath.IsAbs(b) && filepath.Clean(a) == filepath.Clean(b)
	}
	for _, key := range []struct{ name, path string }{{"path", j.Path}, {"socket", j.Socket}} {
		if !filepath.IsAbs(key.path) {
			continue
		}
		for _, o := range others {
			if same(key.path, o.path) {
				v.add(s, key.name, "%s is %s: it would be overwritten", key.path, o.what)
			}
		}
	}
	if filepath.IsAbs(j.Path) && same(j.Path, j.Socket) {
		v.add(s, "socket", "is the same file as journal.path (%s)", j.Path)
	}
	v.positive(s, "max-age", j.MaxAge)
	if j.MaxBytes < MinJournalMaxBytes {
		v.add(s, "max-bytes", "must be at least %d (1 MiB), got %d", MinJournalMaxBytes, j.MaxBytes)
	}
	if j.HistoryDays < 1 || j.HistoryDays > MaxHistoryDays {
		v.add(s, "history-days", "must be between 1 and %d, got %d", MaxHistoryDays, j.HistoryDays)
	}
}

func (v *validator) mqtt() {
	m := &v.c.MQTT
	const s = SectionMQTT
	if m.Enable {
		v.required(s, "server", m.Server)
	}
	if m.Server != "" {
		v.check(s, "server", CheckMQTTServer(m.Server))
		if m.CAFile != "" && CheckMQTTServer(m.Server) == nil && !IsTLSServer(m.Server) {
			v.add(s, "ca-file", "is set but server %q does not use TLS (use mqtts://)", m.Server)
		}
	}
	if strings.ContainsRune(m.Username, 0) {
		v.add(s, "username", "holds a NUL byte (MQTT forbids it)")
	} else if !utf8.ValidString(m.Username) {
		v.add(s, "username", "is not valid UTF-8")
	}
	if m.PasswordFile != "" && !filepath.IsAbs(m.PasswordFile) {
		v.add(s, "password-file", "%q is not an absolute path", m.PasswordFile)
	}
	if m.CAFile != "" && !filepath.IsAbs(m.CAFile) {
		v.add(s, "ca-file", "%q is not an absolute path", m.CAFile)
	}
	switch {
	case m.ClientID == "":
		v.add(s, "client-id", "must not be empty")
	case !utf8.ValidString(m.ClientID) || len(m.ClientID) > 65535:
		v.add(s, "client-id", "must be valid UTF-8 of at most 65535 bytes")
	}
	for i := 0; i < len(m.ClientID); i++ {
		if m.ClientID[i] == 0 {
			v.add(s, "client-id", "must not hold NUL")
			break
		}
	}
	v.check(s, "topic-prefix", CheckTopicPrefix(m.TopicPrefix))
	v.check(s, "node-id", CheckNodeID(m.NodeID))
	if m.KeepAlive < time.Second || m.KeepAlive > maxKeepAlive || m.KeepAlive%time.Second != 0 {
		v.add(s, "keepalive", "must be a whole number of seconds 1..65535, got %s", seconds(m.KeepAlive))
	}
}

func (v *validator) homeAssistant() {
	h := &v.c.HomeAssistant
	const s = SectionHomeAssistant
	if h.Enable && !v.c.MQTT.Enable {
		v.add(s, "enable", "needs mqtt (set mqtt.enable to true)")
	}
	v.check(s, "discovery-prefix", CheckTopicPrefix(h.DiscoveryPrefix))
}
