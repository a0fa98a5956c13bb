package config

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
)

// MachineIDFiles are read, in order, for the machine id (systemd's
// machine-id(5); D-Bus's copy on systems without systemd).
var MachineIDFiles = []string{"/etc/machine-id", "/var/lib/dbus/machine-id"}

// ReadMachineID returns the machine id (32 lower-case hex digits), or ""
// when no file holds a valid one.
func ReadMachineID() string {
	for _, f := range MachineIDFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		id := strings.TrimSpace(string(b))
		if len(id) == 32 && strings.Trim(id, "0123456789abcdef") == "" {
			return id
		}
	}
	return ""
}

// MachineTag is the short, stable tag of a machine id in the default MQTT
// node id: the first 6 hex digits of SHA-256("imon:" + id). The machine id
// itself is never published (machine-id(5) asks applications to hash it).
// "" for no id.
func MachineTag(machineID string) string {
	if machineID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("imon:" + machineID))
	return hex.EncodeToString(sum[:3])
}
