// Package probe holds imon's network seams: ICMP echo probes (one-shot
// rounds and continuous streams), host name resolution, and DNS server
// checks. Monitors depend only on the small interfaces defined here; the
// real implementations (the probe [Engine], net.Resolver, miekg/dns) live
// next to them and the fakes in package probetest.
//
// # Contracts
//
// Every call that touches the network is bounded: a Ping returns after at
// most (Count-1)*Spacing + Wait plus the grid slack below, a Resolve or
// Check after its own timeout or the ctx deadline, whichever comes first. A
// probe that cannot be sent because the network is unreachable is a lost
// probe, not an error: errors are reserved for conditions where no probe
// could be attempted at all (no CAP_NET_RAW, a source address that is not
// local, an invalid address).
//
// # The engine, and why not pro-bing
//
// Every ICMP probe of every monitor (updown's stream, failover's per-WAN
// streams, the ping monitor's rounds, addping, postping) goes through one
// [Engine] per process ([Shared]): raw ICMP sockets shared per network
// namespace, address family, source address and fwmark (ICMP_FILTER and a
// BPF filter on the engine's ICMP id keep other traffic out), and one
// goroutine on one timer ticking every [Grid] (200 ms). At each tick it
// reads every socket without blocking, with raw syscalls that do not wake
// the Go runtime's sysmon; replies carry the kernel's arrival time
// (SO_TIMESTAMPNS), so RTTs are exact whatever the tick. Then it settles
// the probes whose wait ran out, sends what is due, reads the carriers
// watched with [Engine.WatchCarrier] (pread of an open sysfs file) and
// hands each stream its outcomes. Sockets never wake the process: the cost
// is the timer's wakeups, at most five a second shared by all monitors.
// The timer is a timerfd in the netpoller, read and armed with raw system
// calls: one wakeup of one thread per tick, where a runtime timer cost
// three (the runtime's sysmon thread wakes with every runtime timer, and
// the netpoller rounds its sleep down to whole milliseconds; waker has
// the figures). The
// loop wakes only on ticks with work: a send, the end of a probe's wait, a
// round's first tick after its last request; a reply is read at the next
// of those (its RTT is the kernel's stamp), so at the default intervals a
// stream costs one or two wakeups per request. Streams of one spacing share
// their ticks (failover's two WANs wake the loop once), and spacings of a
// second or more are whole seconds, so that slower streams land on the
// ticks of the one-second ones. The monitors' own periodic work (the ping
// monitor's and the ddns monitor's rounds) runs on the engine's ticks too
// ([Engine.Every]), in phase with the probes: at the default intervals the
// agent wakes about once a second, where the probes' own plan needs. The
// goroutine stops when no probe, round, watch or ticker is left.
//
// The grid quantises: a stream's spacing and a probe's wait are rounded up
// to whole ticks for scheduling (a reply counts when its exact RTT is within
// Wait). The first request of a round goes out at once, off the grid (so the
// first gap may be up to a tick shorter than Spacing), the others on ticks;
// a round ends at the tick after its last request when every reply is in by
// then (or, when a stream or a ticker wakes the loop before the last wait
// runs out, at that tick), otherwise at the tick where the last wait runs
// out: up to about two ticks later than the budget. A stream's first request goes out at the
// next tick, the later ones on multiples of its spacing in ticks (the
// first gap may be shorter).
//
// This replaces pro-bing (the design card's choice) everywhere: each
// pro-bing pinger has its own socket and a receive goroutine polling with
// read deadlines (50 µs growing to ~100 ms, renewed on every timeout: 16-20
// wakeups a second per live pinger, upstream probing#105), a send ticker
// and a setsockopt/getsockopt per send. Measured on the project's machine
// (docs/bench.md): a bare pro-bing pinger at 4 requests a second costs
// 0.75 % of a core and 230 context switches a second; the whole agent with
// pro-bing streams used 4.0 % and 1,030 context switches a second, the
// engine's floor (same probe plan, no imon code) 0.15 % at 15 a second.
// pro-bing's other pitfalls (Timeout=0 panics, a Count with any loss never
// returns, lost sequence numbers never pruned, stderr logging) went with it.
package probe

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"time"
)

// Defaults applied to zero option values.
const (
	// DefaultSpacing is the gap between two echo requests when unset.
	DefaultSpacing = time.Second
	// DefaultWait is how long a reply is waited for when unset.
	DefaultWait = time.Second
	// MinSize is the smallest echo payload (the engine's token and serial
	// number, kept at pro-bing's 24 bytes); smaller sizes are raised to it.
	MinSize = 24
	// MinSpacing bounds how fast a stream may probe one target (the
	// engine rounds spacings up to whole Grid ticks anyway).
	MinSpacing = 10 * time.Millisecond
)

// PingOptions shape one round of echo requests.
type PingOptions struct {
	// Count is the number of echo requests; values below 1 mean 1.
	Count int
	// Spacing is the delay between two requests (DefaultSpacing if <= 0).
	Spacing time.Duration
	// Wait is how long each request waits for its reply (DefaultWait if <=
	// 0); a later reply counts as lost.
	Wait time.Duration
	// Source, when valid, binds the probe socket to this local address
	// (probes of one WAN leave with its address; needs a "from" rule).
	Source netip.Addr
	// Mark, when not 0, sets SO_MARK on the probe socket (needs
	// CAP_NET_ADMIN; pair it with a fwmark rule).
	Mark uint32
	// Size is the echo payload size in bytes (MinSize if smaller).
	Size int
	// UntilReply ends the round at the first in-time reply (an aliveness
	// check: a live host costs one RTT, not the whole round); Sent then
	// counts the requests sent so far.
	UntilReply bool
}

// WithDefaults returns o with zero values replaced by the defaults.
func (o PingOptions) WithDefaults() PingOptions {
	if o.Count < 1 {
		o.Count = 1
	}
	if o.Spacing <= 0 {
		o.Spacing = DefaultSpacing
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Size < MinSize {
		o.Size = MinSize
	}
	return o
}

// Budget is the longest a round with these options can take:
// (Count-1)*Spacing + Wait.
func (o PingOptions) Budget() time.Duration {
	o = o.WithDefaults()
	return time.Duration(o.Count-1)*o.Spacing + o.Wait
}

// PingResult is the outcome of one round of echo requests.
type PingResult struct {
	// Target is what was pinged as the caller named it (a host name or an
	// IP literal). Pinger implementations set it to Addr.String(); callers
	// that resolved a name overwrite it.
	Target string
	// Addr is the address the requests were sent to.
	Addr netip.Addr
	// Sent and Recv count requests and in-time replies.
	Sent, Recv int
	// RTTs holds the round-trip time of every in-time reply, in send order.
	RTTs []time.Duration
	// Min, Avg and Max summarise RTTs (0 without replies).
	Min, Avg, Max time.Duration
	// Jitter is icmplib's jitter: the mean absolute difference of
	// consecutive RTTs (0 with fewer than 2 replies).
	Jitter time.Duration
	// Loss is the lost fraction of the requests, 0..1 (1 when none was sent).
	Loss float64
	// NoRoute is set when no request of the round went out for want of a
	// route to Addr (every send failed with ENETUNREACH or EHOSTUNREACH,
	// see [NoRoute]): the path is not there, which at boot is not yet an
	// outage.
	NoRoute bool
}

// NoRoute reports whether err is a send error for want of a route to the
// target: the path is not there, no probe went out.
func NoRoute(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)
}

// Alive reports whether at least one reply arrived in time (icmplib's
// is_alive).
func (r PingResult) Alive() bool { return r.Recv > 0 }

// Summarize builds the PingResult of sent requests to addr that produced the
// given in-time RTTs.
func Summarize(addr netip.Addr, sent int, rtts []time.Duration) PingResult {
	r := PingResult{Target: addr.String(), Addr: addr, Sent: sent, Recv: len(rtts), Loss: 1}
	if len(rtts) > 0 {
		r.RTTs = append([]time.Duration(nil), rtts...)
		r.Min, r.Max = rtts[0], rtts[0]
		var sum time.Duration
		for _, d := range rtts {
			sum += d
			r.Min = min(r.Min, d)
			r.Max = max(r.Max, d)
		}
		r.Avg = sum / time.Duration(len(rtts))
	}
	if sent > 0 {
		r.Loss = 1 - float64(min(len(rtts), sent))/float64(sent)
	}
	r.Jitter = Jitter(rtts)
	return r
}

// Jitter is icmplib's definition: the mean absolute difference between
// consecutive RTTs; 0 with fewer than two.
func Jitter(rtts []time.Duration) time.Duration {
	if len(rtts) < 2 {
		return 0
	}
	var sum time.Duration
	for i := 1; i < len(rtts); i++ {
		d := rtts[i] - rtts[i-1]
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return sum / time.Duration(len(rtts)-1)
}

// Pinger sends rounds of ICMP echo requests.
type Pinger interface {
	// Ping sends opt.Count echo requests to addr, opt.Spacing apart, and
	// waits opt.Wait for each reply. It returns after the last reply or
	// after opt.Budget(), whichever comes first. Requests that cannot be
	// sent (network unreachable) count as lost; an error means no request
	// could be attempted (permissions, bad source) or ctx ended.
	Ping(ctx context.Context, addr netip.Addr, opt PingOptions) (PingResult, error)
}

// StreamOptions shape a continuous probe stream.
type StreamOptions struct {
	// Spacing is the delay between two echo requests (DefaultSpacing if <=
	// 0, at least MinSpacing).
	Spacing time.Duration
	// Wait is how long each request waits for its reply before it is
	// reported lost (DefaultWait if <= 0).
	Wait time.Duration
	// Source, Mark and Size are as in PingOptions.
	Source netip.Addr
	Mark   uint32
	Size   int
	// Recheck, when > 0, asks for one more read of the replies half a
	// tick after a tick that settled one of the first Recheck losses in a
	// row while newer probes were in flight. That read hands out what it
	// settled, or else a status outcome (Seq 0, only Newest, Read and
	// InFlight set), so that a consumer counting in-flight probes as
	// unanswered learns half a tick sooner that their replies are missing.
	// One wakeup more per such loss, none otherwise. Without Recheck a
	// stream never hands out a status outcome.
	Recheck int
}

// WithDefaults returns o with zero values replaced by the defaults.
func (o StreamOptions) WithDefaults() StreamOptions {
	if o.Spacing <= 0 {
		o.Spacing = DefaultSpacing
	}
	o.Spacing = max(o.Spacing, MinSpacing)
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Size < MinSize {
		o.Size = MinSize
	}
	return o
}

// Outcome is the fate of one probe of a stream.
type Outcome struct {
	// Seq numbers the probes of one stream 1, 2, 3... in send order. Seq 0
	// is a status outcome (see StreamOptions.Recheck): no probe, only
	// Newest, Read and InFlight.
	Seq uint64
	// Sent is when the request left (or its send failed).
	Sent time.Time
	// At is when the outcome became known: the reply's arrival, or Sent+Wait
	// for a lost probe (at once for a send error).
	At time.Time
	// OK is true when a reply arrived within Wait.
	OK bool
	// RTT is the round-trip time of a reply (0 when lost).
	RTT time.Duration
	// Err is the send error of a probe that could not be sent (counted as
	// lost), e.g. "network is unreachable".
	Err error

	// What the stream knew when it handed this outcome out, so that a
	// consumer can count probes that are late without guessing from the
	// clock which probes were sent and whether their replies were read.
	//
	// Newest is the stream's highest settled Seq at that moment (this
	// outcome's or a higher one). Read is the time of the stream's latest
	// read of its replies. InFlight holds the send times, oldest first, of
	// the probes newer than Newest that were sent before Read: none of them
	// had a reply at Read. It is nil in the common case (every probe sent
	// before the read is settled) and shared by the outcomes handed out
	// together: do not modify it.
	Newest   uint64
	Read     time.Time
	InFlight []time.Time
}

// Streamer runs continuous probe streams.
type Streamer interface {
	// Stream sends one echo request to addr every opt.Spacing until ctx
	// ends, and delivers each probe's Outcome on the returned channel as
	// soon as it is known: replies as they arrive, losses opt.Wait after
	// the send. Outcomes can therefore arrive out of Seq order (a reply to
	// probe 7 before the loss of probe 6): fold them with a Tracker. The
	// channel is closed after ctx ends. Each outcome carries the stream's
	// Newest, Read and InFlight at the moment it was handed out. An error means the stream could not
	// start at all (permissions, bad source); later failures are reported as
	// lost outcomes with Err set.
	Stream(ctx context.Context, addr netip.Addr, opt StreamOptions) (<-chan Outcome, error)
}

// Resolver turns a host name or IP literal into one address.
type Resolver interface {
	// Resolve returns host's address (an IP literal is returned as is,
	// without any lookup). A name that does not resolve within the
	// resolver's timeout or ctx is an error, never a hang.
	Resolve(ctx context.Context, host string) (netip.Addr, error)
}

// DNSChecker asks one DNS server about one name.
type DNSChecker interface {
	// Check queries server ("IP", "IP:port", "[IPv6]:port" or a host name;
	// port 53 by default) for name. It returns nil when the server answered
	// with NOERROR and at least one record; any other answer, a timeout or a
	// transport failure is an error. It is bounded by its own timeout and
	// ctx.
	Check(ctx context.Context, server, name string) error
}
