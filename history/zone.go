package history

import (
	"os"
	"strings"
	"time"
)

// ZoneName is loc's IANA name when it can be found (TZ, /etc/localtime),
// else its abbreviation now.
func ZoneName(loc *time.Location) string {
	if n := loc.String(); n != "Local" {
		return n
	}
	if tz := strings.TrimPrefix(os.Getenv("TZ"), ":"); tz != "" && !strings.HasPrefix(tz, "/") {
		return tz
	}
	if l, err := os.Readlink("/etc/localtime"); err == nil {
		if i := strings.Index(l, "zoneinfo/"); i >= 0 {
			return l[i+len("zoneinfo/"):]
		}
	}
	n, _ := time.Now().In(loc).Zone()
	return n
}

// LoadZone returns the named zone, or time.Local when it cannot be loaded.
func LoadZone(name string) *time.Location {
	if name == "" || name == "Local" {
		return time.Local
	}
	if loc, err := time.LoadLocation(name); err == nil {
		return loc
	}
	return time.Local
}
