package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Several failover instances on one router share the kernel's routing
// state: each must own its own WANs, tables, rule priorities, fwmarks,
// metric and route protocol, or they adopt and delete each other's routes.
// CheckInstances finds the other instances as the files imon-NAME in the
// directory of the config file (where the systemd unit imon@NAME reads
// /etc/default/imon-NAME).

// maxInstanceFile bounds the size of another instance's file that
// CheckInstances reads (a larger file is not an imon config).
const maxInstanceFile = 1 << 20

// backupSuffixes end the names of files that are copies of a config, not
// instances (editors, dpkg, ucf, rpm). Instance names may hold '.', so
// imon-main.dpkg-old would otherwise be instance "main.dpkg-old", with the
// very ranges of imon-main.
var backupSuffixes = []string{
	".bak", ".old", ".orig", ".rej", ".save", ".swp", ".tmp", ".new", ".dist",
	".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-bak", ".dpkg-tmp",
	".ucf-old", ".ucf-new", ".ucf-dist", ".rpmnew", ".rpmsave",
}

// IsInstanceFile reports whether a file name is an instance's config:
// imon-NAME with a valid instance NAME, not a backup copy.
func IsInstanceFile(name string) bool {
	if _, ok := InstanceFromPath(name); !ok {
		return false
	}
	return !slices.ContainsFunc(backupSuffixes, func(s string) bool { return strings.HasSuffix(name, s) })
}

// CheckInstances checks c against the other instances configured next to
// it (every other imon-NAME file in c's directory, see [IsInstanceFile])
// when c's failover monitor is enabled: two failover instances must not
// share a WAN interface, a routing table, a rule priority, a fwmark, the
// metric or the route protocol ([Overlaps]). A file that cannot be read or
// is not valid JSON is skipped (its own check reports it). `imon check` and
// `imon run` call it.
func CheckInstances(c *Config) Problems {
	if !c.Failover.Enable || c.Path == "" {
		return nil
	}
	dir := filepath.Dir(c.Path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return Problems{{File: c.Path, Section: SectionFailover,
			Msg: fmt.Sprintf("cannot read the other instances' files in %s: %v", dir, err)}}
	}
	self, _ := os.Stat(c.Path)
	var ps Problems
	for _, e := range entries {
		if !IsInstanceFile(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		other := readInstance(path, self)
		if other == nil {
			continue
		}
		ps = append(ps, Overlaps(c, other)...)
	}
	return ps
}

// readInstance parses another instance's file, nil when it is c's own file
// (self), not a readable regular file, too large, or not a JSON object.
func readInstance(path string, self os.FileInfo) *Config {
	// O_NONBLOCK: a FIFO must not block the check (see Load).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close() //nolint:errcheck // read-only
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxInstanceFile || (self != nil && os.SameFile(fi, self)) {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxInstanceFile))
	if err != nil {
		return nil
	}
	// Problems of the other file are its own check's business: what
	// matters here is the ranges it would use.
	c, _ := Parse(path, data)
	return c
}

// Overlaps reports what instance c shares with instance other when both
// have failover enabled: a WAN interface, routing tables, rule priorities,
// fwmarks, the metric, or the route protocol. Each problem is on c's file
// and key, and names both instances and other's file.
func Overlaps(c, other *Config) Problems {
	f, o := &c.Failover, &other.Failover
	if !f.Enable || !o.Enable {
		return nil
	}
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, c.problem(SectionFailover, key, fmt.Sprintf(format, args...)))
	}
	them := fmt.Sprintf("instance %q (%s)", other.Global.Instance, other.Path)
	us := fmt.Sprintf("instance %q", c.Global.Instance)
	type wanIf struct{ key, ifname string }
	ours := []wanIf{{"primary-if", f.Primary.If}, {"standby-if", f.Standby.If}}
	theirs := []wanIf{{"primary-if", o.Primary.If}, {"standby-if", o.Standby.If}}
	for _, w := range ours {
		for _, ow := range theirs {
			if w.ifname != "" && w.ifname == ow.ifname {
				add(w.key, "%s and %s both use WAN interface %s (there as %s): two failover instances must not share a WAN",
					us, them, w.ifname, ow.key)
			}
		}
	}
	type span struct{ lo, hi int64 }
	overlap := func(a, b span) bool { return a.lo <= b.hi && b.lo <= a.hi }
	for _, r := range []struct {
		key, what, format string
		a, b              span
	}{
		{"table-base", "routing tables", "%d..%d", span{int64(f.TableBase), int64(f.TableBase) + 1}, span{int64(o.TableBase), int64(o.TableBase) + 1}},
		{"rule-priority", "ip rule priorities", "%d..%d", span{int64(f.RulePriority), int64(f.RulePriority) + RulePriorities - 1},
			span{int64(o.RulePriority), int64(o.RulePriority) + RulePriorities - 1}},
		{"fwmark-base", "fwmarks", "%#x..%#x", span{int64(f.FwmarkBase), int64(f.FwmarkBase) + 1}, span{int64(o.FwmarkBase), int64(o.FwmarkBase) + 1}},
	} {
		if overlap(r.a, r.b) {
			add(r.key, "%s uses %s "+r.format+" and %s uses "+r.format+": two failover instances must not share %s; choose a %s outside the other's range",
				us, r.what, r.a.lo, r.a.hi, them, r.b.lo, r.b.hi, r.what, r.key)
		}
	}
	if f.Metric == o.Metric {
		add("metric", "%s and %s both use metric %d: their default routes would replace each other; give each instance its own metric",
			us, them, f.Metric)
	}
	if f.RouteProtocol == o.RouteProtocol {
		add("route-protocol", "%s and %s both tag their routes with protocol %d: each would take the other's routes for its own; give each instance its own route-protocol",
			us, them, f.RouteProtocol)
	}
	return ps
}

// RulePriorities is the number of ip rule priorities a failover instance
// uses from rule-priority on (three per WAN).
const RulePriorities = 6
