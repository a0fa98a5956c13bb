package configure

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"imon/config"
)

// The file is written as the original wrote it (Python's json.dump with
// indent=4: the same key order, "interval" as a float, "pingcount" as an
// int, the failover probe settings as floats), then the imon sections.

// member is one key of an ordered JSON object. val is a string, bool, int,
// int64, floatVal, number or []member.
type member struct {
	key string
	val any
}

// floatVal is written with a decimal point, as Python writes floats (10.0).
type floatVal float64

// number is written as an int when whole, else as a float.
type number float64

func (a *answers) encode(now time.Time) []byte {
	probe := func(p probe, floats bool) []member {
		m := []member{
			{"enable", p.enable},
			{"interval", floatVal(p.interval)},
			{"pingcount", p.pingcount},
			{"pingwait", number(p.pingwait)},
		}
		if floats { // the original's failover section asked floats
			m[2].val, m[3].val = floatVal(p.pingcount), floatVal(p.pingwait)
		}
		return m
	}
	wan := func(prefix string, w wan) []member {
		return []member{
			{prefix + "-if", w.ifName},
			{prefix + "-name", w.name},
			{prefix + "-gw", w.gw},
			{prefix + "-ping", w.ping},
			{prefix + "-postping", w.postping},
		}
	}
	mqtt := []member{{"enable", a.mqtt}}
	if a.mqtt {
		mqtt = append(mqtt,
			member{"server", a.server},
			member{"username", a.username},
			member{"password-file", a.passwordFile},
			member{"ca-file", a.caFile})
	}
	ha := []member{{"enable", a.ha}}
	if a.ha {
		ha = append(ha, member{"discovery-prefix", a.discoveryPrefix})
	}
	failover := append(probe(a.failover, true),
		member{"prefer-primary", a.preferPrimary},
		member{"metric", a.metric})
	failover = append(failover, wan("primary", a.primary)...)
	failover = append(failover, wan("standby", a.standby)...)
	doc := []member{
		{config.SectionGlobal, []member{
			{"action", a.action},
			{"datefmt", config.DefaultDateFmt},
			{"instance", a.instance},
			{"note", a.note},
			{"imon-configure-version", Version},
			{"imon-configure-created", now.Format("2006-01-02 15:04:05")},
		}},
		{config.SectionDDNS, probe(a.ddns, false)},
		{config.SectionUpdown, append(probe(a.updown, false),
			member{"monitorip", a.monitorIP},
			member{"addping", a.addPing},
			member{"dnsserver", a.dnsServer},
			member{"dnslookup", a.dnsLookup})},
		{config.SectionFailover, failover},
		{config.SectionPing, append(probe(a.ping, false), member{"monitorip", a.pingIP})},
		{config.SectionJournal, []member{
			{"path", a.journalPath},
			{"max-age", int64(math.Round(a.maxAgeDays * 86400))},
			{"max-bytes", a.maxBytesMiB << 20},
		}},
		{config.SectionMQTT, mqtt},
		{config.SectionHomeAssistant, ha},
	}
	var b bytes.Buffer
	writeValue(&b, doc, "")
	b.WriteString("\n")
	return b.Bytes()
}

// writeValue writes v as Python's json.dump(indent=4) would.
func writeValue(b *bytes.Buffer, v any, indent string) {
	switch v := v.(type) {
	case []member:
		if len(v) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, m := range v {
			b.WriteString(indent + "    ")
			writeString(b, m.key)
			b.WriteString(": ")
			writeValue(b, m.val, indent+"    ")
			if i < len(v)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "}")
	case string:
		writeString(b, v)
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int:
		b.WriteString(strconv.Itoa(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case floatVal:
		s := strconv.FormatFloat(float64(v), 'f', -1, 64)
		if !bytes.ContainsAny([]byte(s), ".eE") {
			s += ".0"
		}
		b.WriteString(s)
	case number:
		b.WriteString(formatNumber(float64(v)))
	default:
		panic(fmt.Sprintf("configure: cannot encode %T", v))
	}
}

// formatNumber writes a whole number as an int, else as a float.
func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           //nolint:errcheck // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// writeAtomic writes data to path through a temporary file in the same
// directory, synced and renamed, so that path holds either the old or the
// whole new content, even after a crash.
func writeAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()      //nolint:errcheck // already failing
			os.Remove(tmp) //nolint:errcheck // best effort
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = keepBackup(path); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close() //nolint:errcheck // read-only
	if err = d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// BackupPath is where an existing file is kept when configure replaces it.
func BackupPath(path string) string { return path + ".bak" }

// keepBackup keeps an existing file at path as BackupPath(path) (replacing
// an older backup), with a hard link so that path itself is replaced
// atomically afterwards; where links are not possible, a copy.
func keepBackup(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("writing %s: it exists and is not a regular file", path)
	}
	bak := BackupPath(path)
	if err := os.Remove(bak); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keeping the previous %s: %w", path, err)
	}
	if os.Link(path, bak) == nil {
		return nil
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = os.WriteFile(bak, data, fi.Mode().Perm())
	}
	if err != nil {
		return fmt.Errorf("keeping the previous %s as %s: %w", path, bak, err)
	}
	return nil
}

// CheckTarget tells before the dialogue whether path can be written: its
// folder exists and it is not a directory or other non-regular file.
func CheckTarget(path string) error {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("cannot write %s: it is not a regular file", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("cannot write %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("cannot write %s: %s is not a directory", path, dir)
	}
	return nil
}
