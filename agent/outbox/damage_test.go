package outbox_test

import (
	"path/filepath"
	"testing"
	"time"

	"imon/agent/outbox"
	"imon/config"
	"imon/internal/nettest"
	"imon/journal"
	"imon/mqtt/mqtttest"
)

// TestOutboxPublishesPastDamage: a leaf page in the middle of the journal
// is garbage. The outbox follows the journal with the one Follow of every
// consumer: it skips the damaged range (the journal journals
// journal-damaged) and publishes the events after it, so its cursor
// reaches the end. Before, it read with Read, failed the round at the
// damage and retried from the cursor forever (seen failing: cursor stuck
// below the damaged range).
func TestOutboxPublishesPastDamage(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, j, 3000)
	last := j.LastSeq()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	nettest.DamageLeaf(t, path)
	j, err = journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	sub := b.Subscribe(t, base+"/event")
	run(t, mqttConfig(b.URL()), config.HomeAssistant{}, allMonitors, j)
	waitCursor(t, j, last, 30*time.Second)
	// The subscriber gets the events after the damage, up to the last.
	for {
		m := sub.Next(30 * time.Second)
		if _, seq := eventSeq(t, m); seq == last {
			break
		}
	}
	if c := j.Cursor(outbox.CursorName); c < last {
		t.Fatalf("cursor %d, want at least %d", c, last)
	}
}
