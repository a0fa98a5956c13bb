package ddns

import (
	"context"

	"imon/agent/monitor"
)

// RoundForTest runs one round on a fresh run restored from env.Last, as Run
// does at start, without the loop: benchmarks time single rounds with it.
func (m *Monitor) RoundForTest(ctx context.Context, env monitor.Env) error {
	return m.round(ctx, m.restore(env))
}
