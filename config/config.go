// Package config reads, checks and describes an imon instance's
// configuration file (/etc/default/imon-INSTANCE).
//
// # Basics
//
// The file is the original imon's JSON format, unchanged (sections global,
// ddns, updown, failover, ping), plus optional imon sections (journal, mqtt,
// homeassistant) and keys. [Load] reads a file, refuses it when other users
// could change it, decodes it strictly, fills in the defaults (all of them
// in defaults.go) and validates it; [Parse] does the same for bytes. Both
// report every problem at once as [Problems], each naming the file, the
// section and key, and why.
//
// # Caveats
//
// The original format is loose and the decoder keeps it so: numbers may be
// ints or floats ("pingcount": 2.0), an empty string means "not set", addping
// is a comma-separated string. Everything else is strict: an unknown or
// duplicate key is an error, with a did-you-mean suggestion for typos, since
// a silently ignored typo would leave a monitor misconfigured.
//
// Checks that depend on the machine's current network state (does the
// interface exist, is the gateway on its subnet) are not part of Load, since
// interfaces may come up after imon starts: see [CheckHost].
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultPath returns the configuration file of an instance:
// /etc/default/imon-INSTANCE.
func DefaultPath(instance string) string {
	return filepath.Join(DefaultConfigDir, ConfigFilePrefix+instance)
}

// Load reads, decodes, defaults and validates the configuration file at
// path. Besides [Parse]'s checks it refuses a file that group or others may
// write (and one owned by another user than root or the caller), checks the
// action script with [CheckScript], and, when MQTT is enabled, that the
// password and CA files are readable.
//
// The error is a [Problems] listing every problem, except when the file
// cannot be read at all (then it wraps the os error). When the file could be
// decoded, the Config is returned along with the Problems, for diagnostics;
// it must not be used to run an agent.
func Load(path string) (*Config, error) {
	// O_NONBLOCK: opening a FIFO would otherwise block until a writer
	// comes; the regular-file check below then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close() //nolint:errcheck // read-only
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading config: %s is not a regular file", path)
	}
	if fi.Size() > MaxConfigBytes {
		return nil, Problems{tooLarge(path, fi.Size())}
	}
	// Bounded also when the file grows after the stat.
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if len(data) > MaxConfigBytes {
		return nil, Problems{tooLarge(path, int64(len(data)))}
	}
	var ps Problems
	if err := checkConfigFile(path, fi); err != nil {
		ps = append(ps, Problem{File: path, Msg: err.Error()})
	}
	c, err := Parse(path, data)
	var pps Problems
	if errors.As(err, &pps) {
		ps = append(ps, pps...)
	} else if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ps
	}
	ps = append(ps, c.checkFiles()...)
	if len(ps) > 0 {
		return c, ps.Capped()
	}
	return c, nil
}

// MaxConfigBytes is the largest configuration file [Load] and [Parse]
// accept (1 MiB; a full configuration is about 3 KiB). A bigger one is
// refused before it is parsed, so that a huge file cannot take the memory
// and time of a check.
const MaxConfigBytes = 1 << 20

// tooLarge is the problem of a file over MaxConfigBytes.
func tooLarge(path string, size int64) Problem {
	return Problem{File: path, Msg: fmt.Sprintf("file is %d bytes, more than the %d bytes (1 MiB) a configuration may have: refused without parsing it", size, MaxConfigBytes)}
}

// checkFiles checks the files the configuration names.
func (c *Config) checkFiles() Problems {
	var ps Problems
	add := func(section, key string, err error) {
		if err != nil {
			ps = append(ps, c.problem(section, key, err.Error()))
		}
	}
	if c.Global.Action != "" && filepath.IsAbs(c.Global.Action) {
		add(SectionGlobal, "action", CheckScript(c.Global.Action))
	}
	add(SectionJournal, "path", CheckRuntimeDir(c.Journal.Path))
	add(SectionJournal, "socket", CheckRuntimeDir(c.Journal.Socket))
	if c.MQTT.Enable {
		if c.MQTT.PasswordFile != "" {
			add(SectionMQTT, "password-file", CheckSecretFile(c.MQTT.PasswordFile))
		}
		if c.MQTT.CAFile != "" {
			add(SectionMQTT, "ca-file", CheckCAFile(c.MQTT.CAFile))
		}
	}
	return ps
}

// Parse decodes, defaults and validates a configuration held in data; path
// names the file in messages and gives the default instance name
// (imon-NAME). The error is always a [Problems]. A Config is returned along
// with the Problems when the data is syntactically valid JSON.
func Parse(path string, data []byte) (*Config, error) {
	return parse(path, data, os.Hostname, ReadMachineID)
}

// utf8BOM is skipped at the start of a file.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

func parse(path string, data []byte, hostname func() (string, error), machineID func() string) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, Problems{tooLarge(path, int64(len(data)))}
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Problems{{File: path, Msg: "file is empty: want a JSON object"}}
	}
	root, err := parseTree(stripComments(data))
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, Problems{{File: path, Line: se.pos.line, Col: se.pos.col, Msg: se.msg}}
		}
		return nil, Problems{{File: path, Msg: err.Error()}}
	}
	if root.kind != jObject {
		return nil, Problems{{File: path, Line: root.pos.line, Col: root.pos.col,
			Msg: "want a JSON object {...} at the top level, got " + describe(root)}}
	}
	c := defaultConfig()
	c.Path = path
	c.set = map[string]bool{}
	c.pos = map[string]position{}
	ps := c.decode(root)
	if h, err := hostname(); err == nil {
		c.hostname = h
	}
	c.machineID = machineID()
	c.derive()
	ps = append(ps, c.validate()...)
	return c, ps.Capped().Err()
}

// defaultConfig returns a Config holding every static default.
func defaultConfig() *Config {
	probe := Probe{Interval: DefaultInterval, PingCount: DefaultPingCount, PingWait: DefaultPingWait}
	return &Config{
		Global: Global{
			DateFmt:       DefaultDateFmt,
			ActionTimeout: DefaultActionTimeout,
			ActionMaxAge:  DefaultActionMaxAge,
		},
		DDNS: DDNS{
			Probe:     probe,
			Providers: append([]string(nil), DefaultDDNSProviders...),
			Quorum:    DefaultDDNSQuorum,
			Timeout:   DefaultDDNSTimeout,
		},
		Updown: Updown{Probe: probe},
		Failover: Failover{
			Probe:          probe,
			Metric:         DefaultMetric,
			DownAfter:      DefaultDownAfter,
			UpAfter:        DefaultUpAfter,
			HoldTime:       DefaultHoldTime,
			HoldMax:        DefaultHoldMax,
			FlushConntrack: DefaultFlushConntrack,
			TableBase:      DefaultTableBase,
			RulePriority:   DefaultRulePriority,
			FwmarkBase:     DefaultFwmarkBase,
			RouteProtocol:  DefaultRouteProtocol,
		},
		Ping: Ping{Probe: probe},
		Journal: Journal{
			MaxAge:      DefaultJournalMaxAge,
			MaxBytes:    DefaultJournalMaxBytes,
			HistoryDays: DefaultHistoryDays,
		},
		MQTT: MQTT{
			TopicPrefix: DefaultTopicPrefix,
			Commands:    DefaultMQTTCommands,
			KeepAlive:   DefaultKeepAlive,
		},
		HomeAssistant: HomeAssistant{DiscoveryPrefix: DefaultDiscoveryPrefix},
	}
}

// InstanceFromPath returns NAME when path's file name is imon-NAME and NAME
// is a valid instance name: the instance of a file without
// global.instance.
func InstanceFromPath(path string) (string, bool) {
	name, ok := strings.CutPrefix(filepath.Base(path), ConfigFilePrefix)
	if !ok || CheckInstance(name) != nil {
		return "", false
	}
	return name, true
}

// isSet reports whether the file gave section.key a value.
func (c *Config) isSet(section, key string) bool { return c.set[section+"."+key] }

// derive computes the defaults that depend on other settings, for every key
// the file did not set.
func (c *Config) derive() {
	if !c.isSet(SectionGlobal, "instance") {
		c.Global.Instance = DefaultInstance
		if name, ok := InstanceFromPath(c.Path); ok {
			c.Global.Instance = name
		}
	}
	inst := c.Global.Instance
	if !c.isSet(SectionJournal, "path") {
		c.Journal.Path = filepath.Join(DefaultJournalDir, inst+".db")
	}
	if !c.isSet(SectionJournal, "socket") {
		c.Journal.Socket = filepath.Join(DefaultSocketDir, inst+".sock")
	}
	if !c.isSet(SectionMQTT, "node-id") {
		c.MQTT.NodeID = DefaultNodeID(c.hostname, c.machineID, inst)
	}
	if !c.isSet(SectionMQTT, "client-id") {
		c.MQTT.ClientID = DefaultClientIDPrefix + c.MQTT.NodeID
	}
	if !c.isSet(SectionUpdown, "down-interval") {
		c.Updown.DownInterval = min(c.Updown.Interval, MaxDefaultDownInterval)
	}
	if !c.isSet(SectionFailover, "probe-interval") {
		c.Failover.ProbeInterval = DefaultProbeInterval(c.Failover.Interval, c.Failover.PingCount)
	}
}

// SetInstance overrides the instance name (the agent's --instance flag) and
// recomputes the defaults derived from it (journal path and socket, MQTT
// node and client ids) unless the file set them.
func (c *Config) SetInstance(name string) {
	c.Global.Instance = name
	if c.set == nil {
		c.set = map[string]bool{}
	}
	c.set[SectionGlobal+".instance"] = true
	c.derive()
}

// DefaultProbeInterval is the failover probe interval when the file sets
// none: interval/(pingcount*ProbeIntervalDivisor), clamped to
// [MinDefaultProbeInterval, interval].
func DefaultProbeInterval(interval time.Duration, pingCount int) time.Duration {
	if pingCount < 1 {
		pingCount = 1
	}
	d := interval / time.Duration(pingCount*ProbeIntervalDivisor)
	return max(min(d, interval), min(MinDefaultProbeInterval, interval))
}

// DefaultNodeID is the default MQTT node id: "<hostname>-<tag>-<instance>"
// with every character outside [a-zA-Z0-9_-] replaced by '_', where tag is
// MachineTag(machineID): two machines with the same host name (every
// Raspberry Pi is "raspberrypi") get different node ids, and so different
// topics and client ids. Without a machine id it is "<hostname>-<instance>".
func DefaultNodeID(hostname, machineID, instance string) string {
	id := instance
	if tag := MachineTag(machineID); tag != "" {
		id = tag + "-" + id
	}
	if hostname != "" {
		id = hostname + "-" + id
	}
	b := []byte(id)
	for i, ch := range b {
		if !isNodeIDChar(ch) {
			b[i] = '_'
		}
	}
	return string(b)
}

// problem builds a Problem for section.key, with the key's position when the
// file has it.
func (c *Config) problem(section, key, msg string) Problem {
	p := Problem{File: c.Path, Section: section, Key: key, Msg: msg}
	if pos, ok := c.pos[section+"."+key]; ok {
		p.Line, p.Col = pos.line, pos.col
	}
	return p
}

// decode stores the file's values into c, recording which keys were set.
func (c *Config) decode(root *jvalue) Problems {
	var ps Problems
	more := 0 // problems beyond MaxProblems: only counted
	full := func() bool { return len(ps) >= MaxProblems }
	add := func(p Problem, pos position) {
		if full() {
			more++
			return
		}
		p.Line, p.Col = pos.line, pos.col
		ps = append(ps, p)
	}
	seenSection := map[string]position{}
	sectionNames := Sections()
	for _, sm := range root.members {
		if first, dup := seenSection[sm.key]; dup {
			add(Problem{File: c.Path, Section: sm.key,
				Msg: fmt.Sprintf("duplicate section (first at line %d)", first.line)}, sm.pos)
			continue
		}
		seenSection[sm.key] = sm.pos
		spec := findSection(sm.key)
		if spec == nil {
			if full() { // only counted: no suggestion needed
				more++
				continue
			}
			add(Problem{File: c.Path, Section: sm.key,
				Msg: "unknown section" + suggest(sm.key, sectionNames)}, sm.pos)
			continue
		}
		if sm.val.kind != jObject {
			add(Problem{File: c.Path, Section: sm.key,
				Msg: "want an object {...}, got " + describe(sm.val)}, sm.val.pos)
			continue
		}
		seenKey := map[string]position{}
		for _, km := range sm.val.members {
			p := Problem{File: c.Path, Section: sm.key, Key: km.key}
			if first, dup := seenKey[km.key]; dup {
				p.Msg = fmt.Sprintf("duplicate key (first at line %d)", first.line)
				add(p, km.pos)
				continue
			}
			seenKey[km.key] = km.pos
			k := spec.key(km.key)
			if k == nil && full() { // only counted: no suggestion needed
				more++
				continue
			}
			if k == nil {
				p.Msg = unknownKeyMsg(spec, km.key)
				add(p, km.pos)
				continue
			}
			c.pos[sm.key+"."+km.key] = km.pos
			set, msg := decodeValue(k.field(c), k.commaList, km.val)
			if msg != "" {
				p.Msg = msg
				add(p, km.pos)
				continue
			}
			if set {
				c.set[sm.key+"."+km.key] = true
			}
		}
	}
	if more > 0 {
		ps = append(ps, Problem{File: c.Path, More: more})
	}
	return ps
}

func findSection(name string) *sectionSpec {
	for i := range schema {
		if schema[i].name == name {
			return &schema[i]
		}
	}
	return nil
}

func (s *sectionSpec) key(name string) *keySpec {
	for i := range s.keys {
		if s.keys[i].name == name {
			return &s.keys[i]
		}
	}
	return nil
}

// unknownKeyMsg explains an unknown key: a near miss in the section, or the
// sections where the key belongs.
func unknownKeyMsg(spec *sectionSpec, key string) string {
	names := make([]string, len(spec.keys))
	for i, k := range spec.keys {
		names[i] = k.name
	}
	if s := suggest(key, names); s != "" {
		return "unknown key" + s
	}
	var elsewhere []string
	for _, other := range schema {
		if other.name != spec.name && other.key(key) != nil {
			elsewhere = append(elsewhere, strconv.Quote(other.name))
		}
	}
	if len(elsewhere) > 0 {
		return "unknown key (it belongs in section " + strings.Join(elsewhere, " or ") + ")"
	}
	return "unknown key"
}

// describe names a JSON value for an error message.
func describe(v *jvalue) string {
	switch v.kind {
	case jString:
		return "string " + strconv.Quote(v.str)
	case jNumber:
		return "number " + v.str
	case jBool:
		return strconv.FormatBool(v.b)
	default:
		return v.kind.String()
	}
}

// maxSeconds bounds every duration (about 31 years), far below
// time.Duration's limit.
const maxSeconds = 1e9

// decodeValue stores v into the field ptr points to. It returns whether the
// key counts as set (an empty string means "not set") and a message when v
// does not fit.
func decodeValue(ptr any, commaList bool, v *jvalue) (set bool, msg string) {
	if v.kind == jString && v.str == "" {
		return false, ""
	}
	switch p := ptr.(type) {
	case *bool:
		if v.kind != jBool {
			return false, "want true or false, got " + describe(v)
		}
		*p = v.b
	case *string:
		if v.kind != jString {
			return false, "want a string, got " + describe(v)
		}
		*p = v.str
	case *netip.Addr:
		if v.kind != jString {
			return false, "want an IP address string, got " + describe(v)
		}
		a, err := netip.ParseAddr(v.str)
		if err != nil {
			return false, fmt.Sprintf("%q is not an IP address", v.str)
		}
		*p = a
	case *time.Duration:
		f, msg := number(v, "a number of seconds")
		if msg != "" {
			return false, msg
		}
		if math.Abs(f) > maxSeconds {
			return false, fmt.Sprintf("%s seconds is too large", v.str)
		}
		*p = time.Duration(math.Round(f * float64(time.Second)))
	case *int:
		n, msg := integer(v, math.MinInt32, math.MaxInt32)
		if msg != "" {
			return false, msg
		}
		*p = int(n)
	case *int64:
		n, msg := integer(v, -(1 << 53), 1<<53)
		if msg != "" {
			return false, msg
		}
		*p = n
	case *uint32:
		n, msg := integer(v, 0, math.MaxUint32)
		if msg != "" {
			return false, msg
		}
		*p = uint32(n)
	case *[]string:
		var list []string
		switch {
		case v.kind == jArray:
			for _, e := range v.elems {
				if e.kind != jString {
					return false, "want a list of strings, got a list holding " + describe(e)
				}
				if s := strings.TrimSpace(e.str); s != "" {
					list = append(list, s)
				}
			}
		case v.kind == jString && commaList:
			list = SplitList(v.str)
		case commaList:
			return false, "want a comma-separated string or a list of strings, got " + describe(v)
		default:
			return false, "want a list of strings, got " + describe(v)
		}
		*p = list
	default:
		panic(fmt.Sprintf("config: schema field of unsupported type %T", ptr))
	}
	return true, ""
}

// SplitList splits a comma-separated list (the addping format), trimming
// spaces and dropping empty items.
func SplitList(s string) []string {
	var list []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
	}
	return list
}

func number(v *jvalue, want string) (float64, string) {
	if v.kind != jNumber {
		return 0, "want " + want + ", got " + describe(v)
	}
	f, err := strconv.ParseFloat(v.str, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Sprintf("number %s is out of range", v.str)
	}
	return f, ""
}

func integer(v *jvalue, lo, hi int64) (int64, string) {
	f, msg := number(v, "an integer")
	if msg != "" {
		return 0, msg
	}
	if f != math.Trunc(f) {
		return 0, "want an integer, got number " + v.str
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, fmt.Sprintf("number %s is out of range", v.str)
	}
	return int64(f), ""
}
