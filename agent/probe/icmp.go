package probe

import (
	"context"
	"log/slog"
	"net/netip"
)

// ICMP is the real Pinger and Streamer: a handle on the process's shared
// [Engine] (raw ICMP sockets; imon runs as root or with CAP_NET_RAW, and
// Mark needs CAP_NET_ADMIN). It is safe for concurrent use.
type ICMP struct {
	logger *slog.Logger
	engine *Engine
}

// NewPinger returns the real ICMP prober on the shared engine. It
// implements Pinger and Streamer. A nil logger discards.
func NewPinger(logger *slog.Logger) *ICMP {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ICMP{logger: logger, engine: Shared()}
}

var (
	_ Pinger   = (*ICMP)(nil)
	_ Streamer = (*ICMP)(nil)
)

// Ping implements Pinger.
func (c *ICMP) Ping(ctx context.Context, addr netip.Addr, opt PingOptions) (PingResult, error) {
	return c.engine.Ping(ctx, addr, opt, c.logger)
}

// Stream implements Streamer.
func (c *ICMP) Stream(ctx context.Context, addr netip.Addr, opt StreamOptions) (<-chan Outcome, error) {
	return c.engine.Stream(ctx, addr, opt, c.logger)
}

// WatchCarrier reports the carrier of ifname, read on the engine's grid
// (see [Engine.WatchCarrier]).
func (c *ICMP) WatchCarrier(ctx context.Context, ifname string) <-chan bool {
	return c.engine.WatchCarrier(ctx, ifname)
}
