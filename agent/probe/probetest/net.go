// Package probetest provides fakes for package probe's interfaces and
// helpers for tests that need real network namespaces.
//
// The fakes are driven by the test, not by a network: Net simulates hosts
// that answer echo requests (or not) with timers, so that inside a
// testing/synctest bubble a monitor's Run loop sees minutes of probing in
// microseconds; Resolver and DNS answer from tables the test sets. All fakes
// record their calls and are safe for concurrent use.
package probetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"imon/agent/probe"
)

// Host is how a simulated host answers.
type Host struct {
	// Up makes the host answer echo requests.
	Up bool
	// RTT is the round-trip time of a reply (a reply slower than the
	// probe's Wait is lost).
	RTT time.Duration
	// Loss is the probability (0..1) that an individual request is lost
	// even though the host is up.
	Loss float64
	// SendErr, when set, makes every send to the host fail with it
	// (e.g. a "network is unreachable" error): the probe is lost at once.
	SendErr error
}

// PingCall records one Ping.
type PingCall struct {
	Addr netip.Addr
	Opt  probe.PingOptions
	At   time.Time
}

// StreamCall records one Stream.
type StreamCall struct {
	Addr netip.Addr
	Opt  probe.StreamOptions
	At   time.Time
}

// Net is a simulated network; it implements probe.Pinger and
// probe.Streamer. An address without a Host is a black hole. Changes to a
// Host apply to requests sent after the change.
type Net struct {
	mu      sync.Mutex
	hosts   map[netip.Addr]Host
	rnd     *rand.Rand
	pings   []PingCall
	streams []StreamCall
	// StreamErr, when set, makes Stream fail (e.g. permission denied).
	streamErr error
	pingErr   error
}

var (
	_ probe.Pinger   = (*Net)(nil)
	_ probe.Streamer = (*Net)(nil)
)

// NewNet returns an empty network whose random losses are drawn from seed.
func NewNet(seed uint64) *Net {
	return &Net{hosts: make(map[netip.Addr]Host), rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Set defines how addr answers.
func (n *Net) Set(addr netip.Addr, h Host) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hosts[addr] = h
}

// SetUp switches addr on or off, keeping its other settings (a new host
// gets a 10 ms RTT).
func (n *Net) SetUp(addr netip.Addr, up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.hosts[addr]
	if !ok {
		h.RTT = 10 * time.Millisecond
	}
	h.Up = up
	n.hosts[addr] = h
}

// FailStreams makes every later Stream call fail with err (nil restores).
func (n *Net) FailStreams(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.streamErr = err
}

// FailPings makes every later Ping call fail with err (nil restores).
func (n *Net) FailPings(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pingErr = err
}

// Pings returns the Ping calls so far.
func (n *Net) Pings() []PingCall {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.pings)
}

// Streams returns the Stream calls so far.
func (n *Net) Streams() []StreamCall {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.streams)
}

// send decides the fate of one request sent now: its RTT if answered in
// time, or the send error.
func (n *Net) send(addr netip.Addr, wait time.Duration) (rtt time.Duration, ok bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, found := n.hosts[addr]
	switch {
	case !found:
		return 0, false, nil
	case h.SendErr != nil:
		return 0, false, h.SendErr
	case !h.Up, h.RTT > wait, h.Loss > 0 && n.rnd.Float64() < h.Loss:
		return 0, false, nil
	}
	return h.RTT, true, nil
}

// Ping implements probe.Pinger with the same timing as the real one.
func (n *Net) Ping(ctx context.Context, addr netip.Addr, opt probe.PingOptions) (probe.PingResult, error) {
	opt = opt.WithDefaults()
	start := time.Now()
	n.mu.Lock()
	n.pings = append(n.pings, PingCall{Addr: addr, Opt: opt, At: start})
	err := n.pingErr
	n.mu.Unlock()
	if err != nil {
		return probe.PingResult{}, fmt.Errorf("ping %s: %w", addr, err)
	}
	var (
		rtts    []time.Duration
		end     time.Time // when the last reply arrives
		lost    bool
		sent    = opt.Count
		noRoute int
	)
	for i := range opt.Count {
		if i > 0 {
			if err := sleepUntil(ctx, start.Add(time.Duration(i)*opt.Spacing)); err != nil {
				return probe.Summarize(addr, opt.Count, rtts), fmt.Errorf("ping %s: %w", addr, err)
			}
		}
		rtt, ok, serr := n.send(addr, opt.Wait)
		if !ok {
			if probe.NoRoute(serr) {
				noRoute++
			}
			lost = true
			continue
		}
		rtts = append(rtts, rtt)
		end = time.Now().Add(rtt)
		if opt.UntilReply {
			sent, lost = i+1, false
			break
		}
	}
	if lost {
		end = start.Add(opt.Budget())
	}
	if err := sleepUntil(ctx, end); err != nil {
		return probe.Summarize(addr, sent, nil), fmt.Errorf("ping %s: %w", addr, err)
	}
	res := probe.Summarize(addr, sent, rtts)
	res.NoRoute = noRoute > 0 && noRoute == sent
	return res, nil
}

// Stream implements probe.Streamer: one request every Spacing, outcomes
// delivered at their time (replies after RTT, losses after Wait).
func (n *Net) Stream(ctx context.Context, addr netip.Addr, opt probe.StreamOptions) (<-chan probe.Outcome, error) {
	opt = opt.WithDefaults()
	n.mu.Lock()
	n.streams = append(n.streams, StreamCall{Addr: addr, Opt: opt, At: time.Now()})
	err := n.streamErr
	n.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("stream to %s: %w", addr, err)
	}
	out := make(chan probe.Outcome)
	go func() {
		defer close(out)
		var (
			seq      uint64
			newest   uint64 // highest Seq handed out
			nextSend = time.Now()
			due      []probe.Outcome // sorted by At
		)
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			next := nextSend
			if len(due) > 0 && due[0].At.Before(next) {
				next = due[0].At
			}
			timer.Reset(time.Until(next))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			now := time.Now()
			for len(due) > 0 && !due[0].At.After(now) {
				o := due[0]
				due = due[1:]
				// What the engine tells with each outcome: a probe is
				// read the moment its outcome is due.
				newest = max(newest, o.Seq)
				o.Newest, o.Read, o.InFlight = newest, now, nil
				for _, d := range due {
					if d.Seq > newest && d.At.After(now) && d.Sent.Before(now) {
						o.InFlight = append(o.InFlight, d.Sent)
					}
				}
				slices.SortFunc(o.InFlight, func(a, b time.Time) int { return a.Compare(b) })
				select {
				case out <- o:
				case <-ctx.Done():
					return
				}
			}
			if !nextSend.After(now) {
				seq++
				o := probe.Outcome{Seq: seq, Sent: nextSend}
				rtt, ok, err := n.send(addr, opt.Wait)
				switch {
				case err != nil:
					o.At, o.Err = nextSend, err
				case ok:
					o.At, o.OK, o.RTT = nextSend.Add(rtt), true, rtt
				default:
					o.At = nextSend.Add(opt.Wait)
				}
				i, _ := slices.BinarySearchFunc(due, o, func(a, b probe.Outcome) int {
					if a.At.After(b.At) {
						return 1
					}
					return -1 // equal times keep send order
				})
				due = slices.Insert(due, i, o)
				nextSend = nextSend.Add(opt.Spacing)
			}
		}
	}()
	return out, nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNoSuchHost is the fake Resolver's error for an unknown name.
var ErrNoSuchHost = errors.New("no such host")

// Resolver is a fake probe.Resolver answering from a table. IP literals
// resolve to themselves without a lookup.
type Resolver struct {
	mu    sync.Mutex
	hosts map[string]netip.Addr
	errs  map[string]error
	calls []string
	delay time.Duration
}

var _ probe.Resolver = (*Resolver)(nil)

// NewResolver returns a fake resolver knowing hosts.
func NewResolver(hosts map[string]netip.Addr) *Resolver {
	r := &Resolver{hosts: make(map[string]netip.Addr), errs: make(map[string]error)}
	for h, a := range hosts {
		r.hosts[h] = a
	}
	return r
}

// Set makes host resolve to addr.
func (r *Resolver) Set(host string, addr netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host] = addr
	delete(r.errs, host)
}

// Fail makes host fail with err (nil: fail with ErrNoSuchHost).
func (r *Resolver) Fail(host string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		err = ErrNoSuchHost
	}
	delete(r.hosts, host)
	r.errs[host] = err
}

// SetDelay makes every later lookup of a name take d (a slow or dead DNS).
func (r *Resolver) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Calls returns the looked-up names (IP literals excluded).
func (r *Resolver) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Resolve implements probe.Resolver.
func (r *Resolver) Resolve(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, nil
	}
	r.mu.Lock()
	r.calls = append(r.calls, host)
	delay := r.delay
	r.mu.Unlock()
	if err := sleepUntil(ctx, time.Now().Add(delay)); err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	if err, ok := r.errs[host]; ok {
		return netip.Addr{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	return netip.Addr{}, fmt.Errorf("resolve %q: %w", host, ErrNoSuchHost)
}

// DNSCall records one DNS check.
type DNSCall struct {
	Server, Name string
	At           time.Time
}

// DNS is a fake probe.DNSChecker: every check takes Delay and then returns
// the configured error (nil = the server answered).
type DNS struct {
	mu    sync.Mutex
	err   error
	delay time.Duration
	calls []DNSCall
}

var _ probe.DNSChecker = (*DNS)(nil)

// ErrDNSDown is the fake DNS checker's error while it does not answer.
var ErrDNSDown = errors.New("dns server does not answer")

// NewDNS returns a fake checker that answers (answering=true) or fails with
// ErrDNSDown, after delay.
func NewDNS(answering bool, delay time.Duration) *DNS {
	d := &DNS{delay: delay}
	d.SetAnswering(answering)
	return d
}

// SetAnswering switches between answering and failing with ErrDNSDown.
func (d *DNS) SetAnswering(ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = nil
	if !ok {
		d.err = ErrDNSDown
	}
}

// SetErr makes later checks return err (nil = answer).
func (d *DNS) SetErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// Calls returns the checks so far.
func (d *DNS) Calls() []DNSCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// Check implements probe.DNSChecker; the result is decided when the check
// completes (after the delay).
func (d *DNS) Check(ctx context.Context, server, name string) error {
	d.mu.Lock()
	d.calls = append(d.calls, DNSCall{Server: server, Name: name, At: time.Now()})
	delay := d.delay
	d.mu.Unlock()
	if err := sleepUntil(ctx, time.Now().Add(delay)); err != nil {
		return fmt.Errorf("dns query %q on %s: %w", name, server, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return fmt.Errorf("dns query %q on %s: %w", name, server, d.err)
	}
	return nil
}
