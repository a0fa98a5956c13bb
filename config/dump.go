package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Dump returns the effective settings, defaults included, as lines
// "section.key = value" for the agent's startup log (the original imon
// logged its whole config at startup too). Of a disabled monitor, mqtt or
// homeassistant section only "enable = false" is listed. It holds no
// secrets: the MQTT password is only named by its file.
func (c *Config) Dump() []string {
	lines := []string{"file = " + strconv.Quote(c.Path)}
	for _, s := range schema {
		enabled := true
		if s.key("enable") != nil {
			enabled = *(s.key("enable").field(c).(*bool))
		}
		for _, k := range s.keys {
			if !enabled && k.name != "enable" {
				continue
			}
			lines = append(lines, s.name+"."+k.name+" = "+formatValue(k.field(c)))
		}
	}
	return lines
}

// formatValue formats a schema field for Dump.
func formatValue(ptr any) string {
	switch p := ptr.(type) {
	case *bool:
		return strconv.FormatBool(*p)
	case *string:
		return strconv.Quote(*p)
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *uint32:
		return strconv.FormatUint(uint64(*p), 10)
	case *time.Duration:
		return seconds(*p) + "s"
	case *netip.Addr:
		if !p.IsValid() {
			return `""`
		}
		return p.String()
	case *[]string:
		q := make([]string, len(*p))
		for i, s := range *p {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	default:
		return fmt.Sprint(p)
	}
}
