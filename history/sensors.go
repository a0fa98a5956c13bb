package history

import (
	"context"
	"encoding/json"
	"time"

	"imon/homeassistant"
)

// sensorSubjects maps the availability state's keys to subjects.
var sensorSubjects = map[string]string{"internet": SubjectInternet, "primary": SubjectPrimary, "standby": SubjectStandby}

// AvailabilityState is the payload of BASE/availability/state (retained;
// docs/mqtt.md): for the internet and each WAN the rollups know, the
// availability in % over the last 24 hours, 7 and 30 days (whole hours:
// from the start of the hour 24 hours ago, ...; null without up or down
// time), and the down time since local midnight in seconds.
func (c *Consumer) AvailabilityState(ctx context.Context) ([]byte, error) {
	now := c.now()
	loc := c.loc()
	snap, err := c.Snapshot(ctx, now.Add(-31*24*time.Hour).UnixMilli())
	if err != nil {
		return nil, err
	}
	snap.Finalize(loc)
	return availabilityPayload(snap, now.In(loc))
}

func availabilityPayload(snap *Snapshot, now time.Time) ([]byte, error) {
	out := map[string]any{}
	end := now.UnixMilli() + 1
	hour := now.Truncate(time.Hour)
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, now.Location()).UnixMilli()
	for _, s := range homeassistant.AvailabilitySubjects {
		name := sensorSubjects[s.Key]
		if _, ok := snap.State.Subjects[name]; !ok {
			continue
		}
		for _, w := range []struct {
			key  string
			span time.Duration
		}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}} {
			a := availOf(snap.Sum(name, hour.Add(-w.span).UnixMilli(), end))
			if a.Percent == nil {
				out[s.Key+"_"+w.key] = nil
				continue
			}
			p := round(*a.Percent, 2)
			if p == 100 && a.DownS > 0 {
				p = 99.99 // an outage is never rounded away
			}
			out[s.Key+"_"+w.key] = p
		}
		out[s.Key+homeassistant.AvailabilityDowntimeSuffix] = int64(snap.Sum(name, midnight, end).Down / 1000)
	}
	return json.Marshal(out)
}
