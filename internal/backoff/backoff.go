// Package backoff is imon's one retry schedule: a delay that starts at Min
// and doubles after each consecutive failure up to Max, with optional
// jitter. The monitor supervisor, the journal consumers, the MQTT
// reconnect loop, the ddns providers, the agent's journal writer and the
// netlink route watch all use it, so every retry in imon grows and caps
// the same way.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is a doubling backoff.
type Policy struct {
	// Min is the delay after the first failure.
	Min time.Duration
	// Max caps the delay (before jitter is applied, and after: the result
	// never exceeds Max). Max < Min means Min.
	Max time.Duration
	// Jitter spreads each delay uniformly over ±Jitter of itself (0.2 =
	// ±20 %), so that clients restarted together do not retry together.
	Jitter float64
}

// Delay returns the delay after n consecutive failures (n ≥ 1; n < 1
// gives 0): Min·2^(n-1), capped at Max, jittered.
func (p Policy) Delay(n int) time.Duration {
	if n < 1 {
		return 0
	}
	limit := max(p.Max, p.Min)
	d := p.Min
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if p.Jitter > 0 {
		d = time.Duration(float64(d) * (1 - p.Jitter + 2*p.Jitter*rand.Float64()))
	}
	return min(d, limit)
}
