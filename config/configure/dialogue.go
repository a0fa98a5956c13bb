package configure

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"imon/config"
)

// answers is everything the dialogue collected.
type answers struct {
	instance, note, action string
	ddns, updown, ping     probe
	failover               probe
	monitorIP              string // updown
	addPing                string
	dnsServer, dnsLookup   string
	preferPrimary          bool
	metric                 int
	primary, standby       wan
	pingIP                 string // ping
	journalPath            string
	maxAgeDays             float64
	maxBytesMiB            int64
	mqtt                   bool
	server, username       string
	passwordFile, caFile   string
	ha                     bool
	discoveryPrefix        string
}

// probe is a monitor's enable and probe settings.
type probe struct {
	enable    bool
	interval  float64
	pingcount int
	pingwait  float64
}

var defaultProbe = probe{
	interval:  config.DefaultInterval.Seconds(),
	pingcount: config.DefaultPingCount,
	pingwait:  config.DefaultPingWait.Seconds(),
}

type wan struct{ ifName, name, gw, ping, postping string }

func (s *session) run() error {
	s.printf("\nBuild imon configuration file\n")
	s.printf("See https://github.com/gitbls/imon for configuration details\n\n")
	a := &answers{ddns: defaultProbe, updown: defaultProbe, failover: defaultProbe, ping: defaultProbe,
		metric: config.DefaultMetric}
	var err error
	dflt := s.opt.Instance
	if dflt == "" {
		dflt = config.DefaultInstance
	}
	if s.opt.Path != "" {
		// Before any question: an answer typed for nothing is lost work.
		if err := CheckTarget(s.opt.Path); err != nil {
			return err
		}
	}
	if a.instance, err = s.valid("Instance name", dflt, required(config.CheckInstance)); err != nil {
		return err
	}
	if s.opt.Path == "" {
		if err := CheckTarget(config.DefaultPath(a.instance)); err != nil {
			return err
		}
	}
	if a.note, err = s.input("Note to add to config file", ""); err != nil {
		return err
	}
	if a.action, err = s.valid("Full path to action script (action)", "", optional(config.CheckScript)); err != nil {
		return err
	}
	steps := []func(*answers) error{s.ddns, s.updown, s.failoverMonitor, s.pingMonitor, s.journal, s.mqtt}
	for _, step := range steps {
		if err := step(a); err != nil {
			return err
		}
	}
	path := s.opt.Path
	if path == "" {
		path = config.DefaultPath(a.instance)
	}
	_, statErr := os.Stat(path)
	exists := statErr == nil
	if exists {
		s.printf("\n%% '%s' exists: it will be replaced, and kept as '%s'", path, BackupPath(path))
	}
	ok, err := s.yesNo(fmt.Sprintf("\nWrite configuration file '%s'? [Y/n] ", path), true)
	if err != nil || !ok {
		return err
	}
	data := a.encode(s.opt.Now())
	// The file must load: a failure here is a bug of configure, not of the
	// user, so it is reported rather than asked again.
	if _, err := config.Parse(path, data); err != nil {
		return fmt.Errorf("the configuration built does not validate, nothing written:\n%w", err)
	}
	mode := os.FileMode(0o644)
	if a.mqtt {
		mode = 0o600
	}
	if err := writeAtomic(path, data, mode); err != nil {
		return err
	}
	s.printf("Wrote '%s'\n", path)
	if exists {
		s.printf("The previous file is kept as '%s'\n", BackupPath(path))
	}
	if s.opt.OfferService == nil {
		return nil
	}
	start, err := s.yesNo(fmt.Sprintf("Enable and start imon@%s now? [y/N] ", a.instance), false)
	switch {
	case errors.Is(err, ErrAborted):
		return nil // the input ended after the file was written: a no
	case err != nil: // interrupted: the file is written all the same
		return fmt.Errorf("wrote '%s', then interrupted before enabling imon@%s", path, a.instance)
	case !start:
		return nil
	}
	if err := s.opt.OfferService(a.instance); err != nil {
		return fmt.Errorf("enabling imon@%s: %w", a.instance, err)
	}
	return nil
}

// enable asks the original's "* Enable the 'NAME' monitor? [y/N]: ".
func (s *session) enable(name string) (bool, error) {
	return s.yesNo(fmt.Sprintf("* Enable the '%s' monitor? [y/N]: ", name), false)
}

// probe asks the interval, pingcount and pingwait of a monitor.
func (s *session) probe(p *probe, intervalQuestion string) error {
	var err error
	if p.interval, err = s.float(intervalQuestion+" (interval)", p.interval); err != nil {
		return err
	}
	if p.pingcount, err = s.int("Ping count (pingcount)", p.pingcount, 1, config.MaxPingCount); err != nil {
		return err
	}
	p.pingwait, err = s.float("Ping wait time (pingwait)", p.pingwait)
	return err
}

func (s *session) ddns(a *answers) error {
	var err error
	if a.ddns.enable, err = s.enable("ddns"); err != nil || !a.ddns.enable {
		return err
	}
	return s.probe(&a.ddns, "Interval between checks")
}

func (s *session) updown(a *answers) error {
	var err error
	if a.updown.enable, err = s.enable("updown"); err != nil || !a.updown.enable {
		return err
	}
	if err = s.probe(&a.updown, "Interval between checks"); err != nil {
		return err
	}
	if a.monitorIP, err = s.valid("Name/IP address to monitor (monitorip)", "", required(config.CheckTarget)); err != nil {
		return err
	}
	if a.addPing, err = s.valid("Additional IP addresses to ping (addping)", "", checkList); err != nil {
		return err
	}
	if a.dnsServer, err = s.valid("Name/IP address of DNS server (dnsserver)", "", optional(config.CheckDNSServer)); err != nil {
		return err
	}
	a.dnsLookup, err = s.valid("DNS name to lookup (dnslookup)", "", func(v string) (string, error) {
		switch {
		case v == "" && a.dnsServer != "":
			return "", errors.New("value required: the name to look up on the DNS server")
		case v != "" && a.dnsServer == "":
			return "", errors.New("leave it empty: there is no DNS server (dnsserver) to look it up on")
		case v == "":
			return "", nil
		}
		return v, config.CheckDNSName(v)
	})
	return err
}

func (s *session) failoverMonitor(a *answers) error {
	var err error
	if a.failover.enable, err = s.enable("failover"); err != nil || !a.failover.enable {
		return err
	}
	if err = s.probe(&a.failover, "Interval between checks"); err != nil {
		return err
	}
	if a.preferPrimary, err = s.yesNo("Prefer primary network (prefer-primary) [N]: ", false); err != nil {
		return err
	}
	if a.metric, err = s.int("Network default route metric (metric)", a.metric, 0, math.MaxInt32); err != nil {
		return err
	}
	if err = s.wan(&a.primary, "primary", "Primary", ""); err != nil {
		return err
	}
	return s.wan(&a.standby, "standby", "Standby", a.primary.ifName)
}

// wan asks the five settings of one failover link; other is the other
// link's interface, which this one must differ from.
func (s *session) wan(w *wan, key, title, other string) error {
	var err error
	w.ifName, err = s.valid(title+" network interface name ("+key+"-if)", "", func(v string) (string, error) {
		if v == "" {
			return "", errors.New("value required")
		}
		if err := config.CheckIfName(v); err != nil {
			return "", err
		}
		if v == other {
			return "", fmt.Errorf("%s is the primary network's interface already", v)
		}
		if err := s.lookupIface(v); err != nil {
			return "", hostProblem{err}
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	if w.name, err = s.valid(title+" network name ("+key+"-name)", "", required(config.CheckWANName)); err != nil {
		return err
	}
	w.gw, err = s.valid(title+" network gateway IP Address ("+key+"-gw)", "", func(v string) (string, error) {
		gw, err := netip.ParseAddr(v)
		if err != nil {
			return "", errors.New("IP Address required")
		}
		if gw.IsUnspecified() || gw.IsMulticast() || gw.IsLoopback() {
			return "", fmt.Errorf("%s is not a usable gateway address", gw)
		}
		addrs, ok, err := s.ifaceAddrs(w.ifName)
		if err != nil || !ok {
			return v, nil // a missing interface was accepted already
		}
		if err := config.CheckGateway(gw, addrs); err != nil {
			if errors.Is(err, config.ErrNoAddress) {
				s.printf("%% Note: %v (%s)\n", err, w.ifName)
				return v, nil
			}
			return "", hostProblem{fmt.Errorf("%w (%s)", err, w.ifName)}
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	if w.ping, err = s.valid("Name/IP Address to check if "+title+" network is up ("+key+"-ping)", "", optional(config.CheckTarget)); err != nil {
		return err
	}
	w.postping, err = s.valid("Name/IP Address to ping after failover to "+title+" ("+key+"-postping)", "", optional(config.CheckTarget))
	return err
}

func (s *session) pingMonitor(a *answers) error {
	var err error
	if a.ping.enable, err = s.enable("ping"); err != nil || !a.ping.enable {
		return err
	}
	if err = s.probe(&a.ping, "Interval between pings"); err != nil {
		return err
	}
	a.pingIP, err = s.valid("Name/IP Address to ping (monitorip)", "", required(config.CheckTarget))
	return err
}

func (s *session) journal(a *answers) error {
	var err error
	dflt := filepath.Join(config.DefaultJournalDir, a.instance+".db")
	a.journalPath, err = s.valid("Journal database file (path)", dflt, func(v string) (string, error) {
		if !filepath.IsAbs(v) {
			return "", fmt.Errorf("%q is not an absolute path", v)
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	if a.maxAgeDays, err = s.float("Days to keep journal events (max-age)", config.DefaultJournalMaxAge.Hours()/24); err != nil {
		return err
	}
	mib, err := s.int("Maximum journal size in MiB (max-bytes)", config.DefaultJournalMaxBytes>>20, 1, 1<<20)
	a.maxBytesMiB = int64(mib)
	return err
}

func (s *session) mqtt(a *answers) error {
	var err error
	if a.mqtt, err = s.yesNo("* Enable MQTT? [y/N]: ", false); err != nil || !a.mqtt {
		return err
	}
	q := "MQTT broker URL, e.g. mqtt://host:1883 or mqtts://host:8883 (server)"
	if a.server, err = s.valid(q, "", required(config.CheckMQTTServer)); err != nil {
		return err
	}
	if a.username, err = s.input("MQTT user name (username)", ""); err != nil {
		return err
	}
	if a.passwordFile, err = s.valid("File holding the MQTT password (password-file)", "", optional(absFile(config.CheckSecretFile))); err != nil {
		return err
	}
	if config.IsTLSServer(a.server) {
		if a.caFile, err = s.valid("CA certificate file (ca-file)", "", optional(absFile(config.CheckReadable))); err != nil {
			return err
		}
	}
	if a.ha, err = s.yesNo("* Enable Home Assistant discovery? [y/N]: ", false); err != nil || !a.ha {
		return err
	}
	a.discoveryPrefix, err = s.valid("Home Assistant discovery prefix (discovery-prefix)", config.DefaultDiscoveryPrefix,
		required(config.CheckTopicPrefix))
	return err
}

// float asks for a number > 0 (the original's getfloat).
func (s *session) float(question string, dflt float64) (float64, error) {
	for {
		a, err := s.input(question, formatNumber(dflt))
		if err != nil {
			return 0, err
		}
		f, err := strconv.ParseFloat(a, 64)
		switch {
		case err != nil || math.IsInf(f, 0) || math.IsNaN(f):
			s.printf("%% Enter an integer or floating point number\n")
		case f <= 0:
			s.printf("%% Must be greater than 0.0\n")
		case f > 1e6:
			s.printf("%% Must be at most 1000000\n")
		default:
			return f, nil
		}
	}
}

// int asks for an integer in lo..hi (the original's getint).
func (s *session) int(question string, dflt, lo, hi int) (int, error) {
	for {
		a, err := s.input(question, strconv.Itoa(dflt))
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(a)
		switch {
		case err != nil:
			s.printf("%% Enter an integer\n")
		case n < lo && lo == 1:
			s.printf("%% Must be greater than 0\n")
		case n < lo || n > hi:
			s.printf("%% Must be %d..%d\n", lo, hi)
		default:
			return n, nil
		}
	}
}

// lookupIface checks that a network interface exists.
func (s *session) lookupIface(name string) error {
	switch {
	case s.opt.LookupIface != nil:
		return s.opt.LookupIface(name)
	case s.opt.IfaceAddrs != nil:
		_, err := s.opt.IfaceAddrs(name)
		return ifaceError(name, err)
	default:
		_, err := config.SystemIfaceAddrs(name)
		return ifaceError(name, err)
	}
}

func ifaceError(name string, err error) error {
	if errors.Is(err, config.ErrNoInterface) {
		return fmt.Errorf("interface %q does not exist", name)
	}
	return err
}

// ifaceAddrs returns an interface's addresses; ok is false when they are
// not known (a fake LookupIface without IfaceAddrs).
func (s *session) ifaceAddrs(name string) ([]netip.Prefix, bool, error) {
	switch {
	case s.opt.IfaceAddrs != nil:
		a, err := s.opt.IfaceAddrs(name)
		return a, true, err
	case s.opt.LookupIface != nil:
		return nil, false, nil
	default:
		a, err := config.SystemIfaceAddrs(name)
		return a, true, err
	}
}

// required turns a syntax check into an answer check that refuses an empty
// answer; optional into one that accepts it.
func required(check func(string) error) func(string) (string, error) {
	return func(v string) (string, error) {
		if v == "" {
			return "", errors.New("value required")
		}
		return v, check(v)
	}
}

func optional(check func(string) error) func(string) (string, error) {
	return func(v string) (string, error) {
		if v == "" {
			return "", nil
		}
		return v, check(v)
	}
}

// absFile adds the absolute-path rule of file settings to a file check.
func absFile(check func(string) error) func(string) error {
	return func(v string) error {
		if !filepath.IsAbs(v) {
			return fmt.Errorf("%q is not an absolute path", v)
		}
		return check(v)
	}
}

// checkList checks an addping answer and returns it normalised
// ("a,b").
func checkList(v string) (string, error) {
	items := config.SplitList(v)
	for _, item := range items {
		if err := config.CheckTarget(item); err != nil {
			return "", err
		}
	}
	return strings.Join(items, ","), nil
}
