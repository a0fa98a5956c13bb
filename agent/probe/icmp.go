package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// runSlack is added to a pro-bing run's deadline so that the ticker sending
// the last request and the deadline of its reply do not race.
const runSlack = 20 * time.Millisecond

// ICMP is the real Pinger and Streamer: privileged (raw socket) ICMP echo
// with pro-bing. imon runs as root or with CAP_NET_RAW; Mark needs
// CAP_NET_ADMIN. It is safe for concurrent use; every Ping and every stream
// generation has its own socket.
type ICMP struct {
	logger *slog.Logger
	// GenerationLength bounds how long one pro-bing pinger of a stream
	// lives before it is replaced (pro-bing never forgets lost sequence
	// numbers, probing#31). Default 10 minutes.
	GenerationLength time.Duration
}

// NewPinger returns the real ICMP prober. It implements Pinger and Streamer.
// A nil logger discards.
func NewPinger(logger *slog.Logger) *ICMP {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ICMP{logger: logger, GenerationLength: 10 * time.Minute}
}

var (
	_ Pinger   = (*ICMP)(nil)
	_ Streamer = (*ICMP)(nil)
)

// Ping implements Pinger.
func (c *ICMP) Ping(ctx context.Context, addr netip.Addr, opt PingOptions) (PingResult, error) {
	opt = opt.WithDefaults()
	addr = addr.Unmap()
	if !addr.IsValid() {
		return PingResult{}, errors.New("ping: invalid address")
	}
	p := c.newPinger(addr, opt.Source, opt.Mark, opt.Size)
	p.Count = opt.Count
	p.Interval = opt.Spacing
	p.Timeout = opt.Budget() + runSlack

	// All callbacks run on pro-bing's run loop goroutine; the mutex only
	// orders them with the reads after Run returns.
	var (
		mu      sync.Mutex
		sent    = make(map[int]time.Time, opt.Count)
		order   []int // pro-bing seq in send order
		rtts    = make(map[int]time.Duration, opt.Count)
		sendErr error
	)
	p.OnSend = func(pkt *probing.Packet) {
		now := time.Now()
		mu.Lock()
		sent[pkt.Seq] = now
		order = append(order, pkt.Seq)
		mu.Unlock()
	}
	stopped := false
	p.OnRecv = func(pkt *probing.Packet) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if at, ok := sent[pkt.Seq]; ok {
			if rtt := now.Sub(at); rtt <= opt.Wait {
				rtts[pkt.Seq] = rtt
				if opt.UntilReply && !stopped {
					stopped = true
					p.Stop()
				}
			}
		}
	}
	p.OnSendError = func(_ *probing.Packet, err error) {
		mu.Lock()
		if sendErr == nil {
			sendErr = err
		}
		mu.Unlock()
	}

	err := p.RunWithContext(ctx)

	mu.Lock()
	defer mu.Unlock()
	var got []time.Duration
	for _, s := range order {
		if d, ok := rtts[s]; ok {
			got = append(got, d)
		}
	}
	nsent := opt.Count
	if stopped {
		nsent = len(order)
	}
	res := Summarize(addr, nsent, got)
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("ping %s: %w", addr, ctx.Err())
	case err != nil && sendErr != nil:
		// The first send failed (no route...): pro-bing gives up the round.
		// That is a lost round, not a failure of the prober.
		c.logger.Debug("ping send failed", "addr", addr, "err", sendErr)
		return res, nil
	case err != nil:
		return res, fmt.Errorf("ping %s: %w", addr, err)
	}
	if sendErr != nil {
		c.logger.Debug("ping send failed", "addr", addr, "err", sendErr)
	}
	return res, nil
}

// newPinger builds a pro-bing pinger with imon's safe settings: an IP
// address (no DNS), privileged mode, no stderr logging, no unbounded RTT or
// TTL records.
func (c *ICMP) newPinger(addr, source netip.Addr, mark uint32, size int) *probing.Pinger {
	p := probing.New(addr.String())
	p.SetIPAddr(&net.IPAddr{IP: addr.AsSlice(), Zone: addr.Zone()})
	p.SetPrivileged(true)
	p.SetLogger(slogAdapter{c.logger})
	p.RecordRtts = false
	p.RecordTTLs = false
	if source.IsValid() {
		p.Source = source.Unmap().String()
	}
	if mark != 0 {
		p.SetMark(uint(mark))
	}
	p.Size = max(size, MinSize)
	return p
}

// slogAdapter routes pro-bing's log calls to slog at debug level: its
// "FATAL" lines are per-packet send errors that imon reports as lost probes.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Fatalf(format string, v ...any) { a.log(format, v...) }
func (a slogAdapter) Errorf(format string, v ...any) { a.log(format, v...) }
func (a slogAdapter) Warnf(format string, v ...any)  { a.log(format, v...) }
func (a slogAdapter) Infof(format string, v ...any)  { a.log(format, v...) }
func (a slogAdapter) Debugf(format string, v ...any) { a.log(format, v...) }

func (a slogAdapter) log(format string, v ...any) {
	a.l.Debug("pro-bing: " + fmt.Sprintf(format, v...))
}
