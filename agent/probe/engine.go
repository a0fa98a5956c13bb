package probe

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Grid is the period of the engine's timer: every send, every reply read,
// every loss and every carrier read happens on a tick of it. Spacings are
// rounded to the nearest whole tick and waits up to whole ticks for
// scheduling (a reply still counts when its exact RTT is within Wait).
//
// 200 ms, not the 250 ms the engine started with: on the 250 ms grid six
// failover probes take 1.52 s at the median from an upstream cut to the
// switch (goal 1.5 s); on 200 ms 1.22 s, for a quarter more wakeups
// (BenchmarkFailoverUpstreamCut, 2026-12-06).
const Grid = 200 * time.Millisecond

// maxOutQueue bounds the outcomes a stream buffers for a consumer that does
// not read; the oldest are dropped beyond it.
const maxOutQueue = 4096

// payloadHead is the part of every request's payload the engine checks in a
// reply: the engine's token and the probe's serial number.
const payloadHead = 16

// Engine sends and receives the ICMP echo probes of every monitor of the
// process: one raw socket per network namespace, address family, source
// address and mark, one goroutine on one Grid timer. At each tick it reads
// every socket without blocking (replies carry the kernel's arrival time,
// SO_TIMESTAMPNS, so RTTs are exact whatever the tick), settles the probes
// whose wait ran out, sends what is due, reads the watched carriers and
// hands each consumer its outcomes. Sockets never wake the process (a
// stream with StreamOptions.Recheck gets one read off the grid after a
// loss). The
// goroutine runs while there is work (a stream, a round or a carrier watch)
// and ends with the last of it. Safe for concurrent use.
type Engine struct {
	grid  time.Duration
	id    uint16  // ICMP identifier of every request (a BPF filter keeps the socket to it)
	token [8]byte // first payload bytes: tells our replies from a foreign pinger's with the same id
	kick  chan struct{}

	mu       sync.Mutex
	running  bool
	epoch    time.Time // tick k is at epoch + k*grid (monotonic)
	k        int64     // the last tick processed
	serial   uint64
	socks    map[sockKey]*rawSock
	streams  []*estream
	rounds   []*round
	carriers []*carrierWatch
	tickers  []*eticker
	buf      [512]byte
	sendBuf  []byte
	// peekAt, when set, is an off-grid read of the sockets (peekAfter).
	peekAt time.Time
}

var (
	sharedMu     sync.Mutex
	sharedEngine *Engine
)

// Shared returns the process's engine (created on first use): all monitors
// probe through it, so that their probes share one timer and its sockets.
func Shared() *Engine {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedEngine == nil {
		sharedEngine = NewEngine(Grid)
	}
	return sharedEngine
}

// stampKeeper holds, for the life of the process, one socket with
// SO_TIMESTAMPNS set. The kernel stamps arriving packets only while some
// socket asks for stamps, and switches that on from a work queue a moment
// after the first one does: a reply arriving in that moment is stamped when
// it is read, a tick late. Without the keeper that happened to the first
// reply on every new socket of an otherwise idle host (a ping round's, every
// round: RTTs of 250 ms on a LAN).
var stampKeeper sync.Once

func keepStamps() {
	stampKeeper.Do(func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) != nil {
			unix.Close(fd)
		}
	})
}

// NewEngine returns an engine ticking every grid (Grid if <= 0).
func NewEngine(grid time.Duration) *Engine {
	keepStamps()
	if grid <= 0 {
		grid = Grid
	}
	e := &Engine{grid: grid, kick: make(chan struct{}, 1), socks: make(map[sockKey]*rawSock)}
	var b [10]byte
	_, _ = rand.Read(b[:])
	e.id = binary.BigEndian.Uint16(b[:2])
	copy(e.token[:], b[2:])
	return e
}

// spacingTicks is a spacing in whole grid ticks, rounded to the nearest
// (at least one): a stream asked for every 250 ms on the 200 ms grid probes
// every 200 ms, not every 400 ms, so that rounding never slows detection by
// more than half a tick.
//
// A spacing of a second or more is rounded down to whole seconds (when the
// grid divides a second): every stream sends on the multiples of its
// spacing counted from the engine's start, so whole-second streams share
// the ticks of the one-second ones (failover's default) instead of waking
// the loop in a phase of their own. Updown's default 2.5 s would otherwise
// have cost a tick of its own four times out of five.
func (e *Engine) spacingTicks(d time.Duration) int64 {
	if d >= time.Second && time.Second%e.grid == 0 {
		return int64(d/time.Second) * int64(time.Second/e.grid)
	}
	return max(int64((d+e.grid/2)/e.grid), 1)
}

// ticks is d in whole grid ticks, rounded up, at least min.
func (e *Engine) ticks(d time.Duration, least int64) int64 {
	return max(int64((d+e.grid-1)/e.grid), least)
}

// ---------------------------------------------------------------------
// Sockets.

type sockKey struct {
	ns     uint64 // network namespace inode of the creating thread
	v6     bool
	source netip.Addr
	mark   uint32
}

type rawSock struct {
	key  sockKey
	fd   int
	refs int
	seq  uint16
	// pending maps the ICMP sequence number to its probe.
	pending map[uint16]*inflight

	msg  unix.Msghdr
	iov  unix.Iovec
	name [unix.SizeofSockaddrInet6]byte
	oob  [64]byte
}

type inflight struct {
	serial uint64
	dst    netip.Addr
	sent   time.Time
	dueK   int64 // settled (lost) at this tick
	st     *estream
	rd     *round
	idx    int // round: index of the request; stream: Outcome.Seq
}

// threadNetns identifies the network namespace of the calling thread.
func threadNetns() uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0
	}
	return st.Ino
}

// socket returns the socket for key, opening it on the calling thread (so in
// the caller's network namespace) if needed, with one more reference. Called
// with e.mu held.
func (e *Engine) socket(key sockKey) (*rawSock, error) {
	if s := e.socks[key]; s != nil {
		s.refs++
		return s, nil
	}
	fd, err := e.openSocket(key)
	if err != nil {
		return nil, err
	}
	s := &rawSock{key: key, fd: fd, refs: 1, pending: make(map[uint16]*inflight)}
	s.msg.Name = &s.name[0]
	s.msg.Iov = &s.iov
	s.msg.SetIovlen(1)
	s.msg.Control = &s.oob[0]
	e.socks[key] = s
	return s, nil
}

func (e *Engine) openSocket(key sockKey) (int, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if key.v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("raw ICMP socket (needs CAP_NET_RAW): %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("raw ICMP socket: %s: %w", what, err)
	}
	// Only echo replies with our identifier reach the socket.
	var prog []bpf.Instruction
	if key.v6 {
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = ^uint32(0)
		}
		t := uint32(ipv6.ICMPTypeEchoReply)
		f.Data[t>>5] &^= 1 << (t & 31)
		if err := unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
			return fail("ICMPV6_FILTER", err)
		}
		prog = []bpf.Instruction{
			bpf.LoadAbsolute{Off: 4, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(e.id), SkipFalse: 1},
			bpf.RetConstant{Val: 0xffff},
			bpf.RetConstant{Val: 0},
		}
	} else {
		if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, ^(1 << uint(ipv4.ICMPTypeEchoReply))); err != nil {
			return fail("ICMP_FILTER", err)
		}
		prog = []bpf.Instruction{
			bpf.LoadMemShift{Off: 0}, // X = IP header length
			bpf.LoadIndirect{Off: 4, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(e.id), SkipFalse: 1},
			bpf.RetConstant{Val: 0xffff},
			bpf.RetConstant{Val: 0},
		}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fail("BPF", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		return fail("SO_ATTACH_FILTER", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	if key.mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(key.mark)); err != nil {
			return fail(fmt.Sprintf("SO_MARK %#x (needs CAP_NET_ADMIN)", key.mark), err)
		}
	}
	if key.source.IsValid() {
		var sa unix.Sockaddr
		if key.v6 {
			sa = &unix.SockaddrInet6{Addr: key.source.As16()}
		} else {
			sa = &unix.SockaddrInet4{Addr: key.source.As4()}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fail("bind "+key.source.String(), err)
		}
	}
	return fd, nil
}

// release drops one reference of s and closes it with the last. Called
// with e.mu held.
func (e *Engine) release(s *rawSock) {
	if s.refs--; s.refs > 0 {
		return
	}
	delete(e.socks, s.key)
	unix.Close(s.fd)
}

// send sends one echo request on s to dst; owner is st or rd. Called with
// e.mu held, on a tick.
func (e *Engine) send(s *rawSock, dst netip.Addr, size int, wait time.Duration, f *inflight, offGrid bool) error {
	e.serial++
	s.seq++
	f.serial, f.dst = e.serial, dst
	f.dueK = e.k + e.ticks(wait, 1)
	if offGrid { // sent after tick k: its wait ends after tick k+ticks(wait)
		f.dueK++
	}
	n := 8 + max(size, payloadHead)
	if cap(e.sendBuf) < n {
		e.sendBuf = make([]byte, n)
	}
	b := e.sendBuf[:n]
	clear(b)
	if s.key.v6 {
		b[0] = byte(ipv6.ICMPTypeEchoRequest)
	} else {
		b[0] = byte(ipv4.ICMPTypeEcho)
	}
	binary.BigEndian.PutUint16(b[4:], e.id)
	binary.BigEndian.PutUint16(b[6:], s.seq)
	copy(b[8:], e.token[:])
	binary.BigEndian.PutUint64(b[16:], f.serial)
	if !s.key.v6 {
		// The kernel computes ICMPv6 checksums of raw sockets; ICMPv4 is ours.
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	var (
		sa4 unix.RawSockaddrInet4
		sa6 unix.RawSockaddrInet6
		sa  unsafe.Pointer
		sl  uintptr
	)
	if s.key.v6 {
		sa6.Family = unix.AF_INET6
		sa6.Addr = dst.As16()
		sa, sl = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	} else {
		sa4.Family = unix.AF_INET
		sa4.Addr = dst.As4()
		sa, sl = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	}
	f.sent = time.Now()
	// A raw syscall: the socket is non-blocking and not in the netpoller,
	// and a raw syscall does not wake the runtime's sysmon thread.
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(n), 0, uintptr(sa), sl)
	if errno != 0 {
		return fmt.Errorf("sendto %s: %w", dst, errno)
	}
	if old := s.pending[s.seq]; old != nil {
		e.expire(old, time.Now()) // 65536 probes in flight: cannot happen with sane waits
	}
	s.pending[s.seq] = f
	return nil
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// drain reads every reply queued on s. Called with e.mu held.
func (e *Engine) drain(s *rawSock) {
	for {
		s.iov.Base = &e.buf[0]
		s.iov.SetLen(len(e.buf))
		s.msg.Namelen = uint32(len(s.name))
		s.msg.SetControllen(len(s.oob))
		s.msg.Flags = 0
		n, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msg)), unix.MSG_DONTWAIT)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return // EAGAIN: nothing more (other errors: retried next tick)
		}
		now := time.Now()
		e.reply(s, e.buf[:min(int(n), len(e.buf))], now)
	}
}

// reply matches one received packet with its probe.
func (e *Engine) reply(s *rawSock, b []byte, now time.Time) {
	var src netip.Addr
	if s.key.v6 {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&s.name[0]))
		src = netip.AddrFrom16(sa.Addr)
		if len(b) < 8 || b[0] != byte(ipv6.ICMPTypeEchoReply) {
			return
		}
	} else {
		if len(b) < 20 {
			return
		}
		hl := int(b[0]&0x0f) * 4
		if len(b) < hl+8 {
			return
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		b = b[hl:]
		if b[0] != byte(ipv4.ICMPTypeEchoReply) {
			return
		}
	}
	if len(b) < 8+payloadHead || binary.BigEndian.Uint16(b[4:]) != e.id || [8]byte(b[8:16]) != e.token {
		return // foreign
	}
	seq := binary.BigEndian.Uint16(b[6:])
	f := s.pending[seq]
	if f == nil || f.serial != binary.BigEndian.Uint64(b[16:]) || f.dst != src {
		return // late (already settled), duplicate or forged
	}
	delete(s.pending, seq)
	rtt := now.Sub(f.sent)
	if ts, ok := rxTime(s.oob[:s.msg.Controllen]); ok {
		// Kernel arrival time (wall clock) minus the wall clock at send.
		if d := ts.Sub(f.sent.Round(0)); d > 0 && d <= rtt {
			rtt = d
		}
	}
	e.settle(f, true, rtt, nil)
}

// rxTime finds the SCM_TIMESTAMPNS control message.
func rxTime(oob []byte) (time.Time, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return time.Time{}, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec)), true //nolint:unconvert // 32-bit arm
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return time.Time{}, false
}

// expire settles f as lost.
func (e *Engine) expire(f *inflight, _ time.Time) { e.settle(f, false, 0, nil) }

// settle records the outcome of f with its owner.
func (e *Engine) settle(f *inflight, ok bool, rtt time.Duration, err error) {
	switch {
	case f.st != nil:
		f.st.settle(f, ok, rtt, err)
	case f.rd != nil:
		f.rd.settle(f, ok, rtt)
	}
}

// ---------------------------------------------------------------------
// The loop.

// start registers work; it starts the loop if it is not running. Called
// with e.mu held.
func (e *Engine) start() {
	if e.running {
		return
	}
	e.running = true
	e.epoch = time.Now()
	// Tick 0 is now; the loop's first wakeup is tick 1. Whoever started it
	// wakes it at once: a round's first request goes out then.
	e.k = -1
	go e.loop()
}

// wake makes the loop look at cancelled work before the next tick.
func (e *Engine) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) loop() {
	w := newWaker()
	defer w.close()
	due := time.Now().Add(e.grid)
	w.reset(e.grid)
	for {
		select {
		case <-w.c:
			if d := time.Until(due); d > 0 {
				w.reset(d) // a stale expiry of an earlier arming
				continue
			}
			e.mu.Lock()
			if !e.peekAt.IsZero() && time.Now().Before(e.epoch.Add(time.Duration(e.k+1)*e.grid)) {
				e.peek()
				break
			}
			e.peekAt = time.Time{}
			k := int64(time.Since(e.epoch) / e.grid)
			e.k = max(k, e.k+1)
			e.tick()
		case <-e.kick:
			e.mu.Lock()
			e.reap()
			// A new round sends its first request now rather than at the
			// next tick: a round costs its budget, not a tick more.
			for _, rd := range e.rounds {
				if rd.nextK < 0 {
					rd.due(e, true)
					if rd.opt.UntilReply && e.peekAt.IsZero() {
						e.peekAt = time.Now().Add(peekAfter)
					}
				}
			}
		}
		if len(e.streams) == 0 && len(e.rounds) == 0 && len(e.carriers) == 0 && len(e.tickers) == 0 {
			e.running = false
			e.mu.Unlock()
			return
		}
		next := e.epoch.Add(time.Duration(e.nextDue()) * e.grid)
		if !e.peekAt.IsZero() && e.peekAt.Before(next) {
			next = e.peekAt
		}
		e.mu.Unlock()
		d := max(time.Until(next), time.Millisecond)
		due = time.Now().Add(d)
		w.reset(d)
	}
}

// peekAfter is when, after the first request of a round that ends at its
// first reply (addping: a status change waits for it), the loop reads the
// sockets once off the grid: a near host (a LAN router, the ISP's gateway)
// has answered by then, and the round ends without waiting for the next
// tick (up to 200 ms). One wakeup more per such round, on status changes
// only. The in-package detection benchmark with one addping host
// (BenchmarkNetnsDetection) measured 1.54 s at the median without it.
const peekAfter = 25 * time.Millisecond

// peek reads every socket off the grid and hands out what it settled,
// without advancing the tick. Called with e.mu held.
func (e *Engine) peek() {
	e.peekAt = time.Time{}
	e.reap()
	e.read()
	for _, st := range e.streams {
		if st.recheck && len(st.queue) == 0 {
			st.queue = append(st.queue, Outcome{}) // status only
		}
		st.recheck = false
	}
	for _, st := range e.streams {
		st.flush()
	}
	e.reap()
}

// nextDue is the next tick with work: a stream's or a round's next send,
// the end of the wait of a probe in flight (where it is settled as lost if
// no reply came), or, at once, a new stream, outcomes a consumer has not
// taken yet, a round that ends at its first reply (addping: the answer is
// awaited), or carriers watched with nothing else; and for a round, the
// tick after its last request (most replies are in by then, and the round
// ends without waiting for its wait to run out). A reply does not wake
// the loop: it is read at the next tick with work, at the latest when its
// wait ends, and its RTT is the kernel's arrival stamp, so it is exact
// whatever the tick. So at the default intervals a stream costs one or two
// ticks per request (its send, and the end of the wait when that is not
// the next send), not every tick while a probe is in flight; detection is
// unchanged, since losses are settled at the same ticks as before.
// Carriers are then read on the ticks that remain (netlink notifications
// carry their changes at once). Called with e.mu held.
func (e *Engine) nextDue() int64 {
	if len(e.streams) == 0 && len(e.rounds) == 0 && len(e.carriers) > 0 {
		return e.k + 1
	}
	next := int64(math.MaxInt64)
	for _, s := range e.socks {
		for _, f := range s.pending {
			if f.rd != nil && f.rd.opt.UntilReply {
				return e.k + 1
			}
			next = min(next, f.dueK)
		}
	}
	regular := int64(math.MaxInt64) // the next send of a stream, the next tick of a ticker
	for _, st := range e.streams {
		if st.nextK < 0 || len(st.queue) > 0 {
			return e.k + 1
		}
		regular = min(regular, st.nextK)
	}
	for _, t := range e.tickers {
		regular = min(regular, t.nextK)
	}
	next = min(next, regular)
	for _, rd := range e.rounds {
		switch {
		case rd.finished:
		case rd.nextK < 0:
			return e.k + 1
		case rd.sent < rd.opt.Count:
			next = min(next, rd.nextK)
		case rd.lastK+1 > e.k && regular > rd.lastK+e.ticks(rd.opt.Wait, 1):
			// One tick after the last request: the replies of a near
			// target are in, and the round ends then, not at its wait;
			// unless a stream or a ticker wakes the loop before the wait
			// runs out: the round ends at that tick, for no wakeup of
			// its own (a ping round among failover's streams).
			next = min(next, rd.lastK+1)
		}
	}
	return max(next, e.k+1)
}

// tick is one grid tick: read, settle, send, carriers, deliver. Called with
// e.mu held.
func (e *Engine) tick() {
	e.reap()
	e.read()
	now := time.Now()
	for _, s := range e.socks {
		for seq, f := range s.pending {
			if f.dueK <= e.k {
				delete(s.pending, seq)
				e.expire(f, now)
			}
		}
	}
	for _, st := range e.streams {
		st.due(e)
	}
	for _, rd := range e.rounds {
		rd.due(e, false)
	}
	for _, c := range e.carriers {
		c.read()
	}
	for _, t := range e.tickers {
		t.due(e, now)
	}
	for _, st := range e.streams {
		// A new loss with newer probes in flight: read again half a tick
		// later (StreamOptions.Recheck).
		st.recheck = st.flush() && st.losses <= st.opt.Recheck
		if st.recheck {
			if at := st.readAt.Add(e.grid / 2); e.peekAt.IsZero() || at.Before(e.peekAt) {
				e.peekAt = at
			}
		}
	}
	e.reap()
}

// read reads every socket, and notes in each stream which of its probes
// had been sent by then (see Outcome.InFlight). Called with e.mu held.
func (e *Engine) read() {
	now := time.Now()
	for _, st := range e.streams {
		st.readSeq, st.readAt = st.seq, now
	}
	for _, s := range e.socks {
		e.drain(s)
	}
}

// reap removes finished and cancelled work. Called with e.mu held.
func (e *Engine) reap() {
	j := 0
	for _, st := range e.streams {
		if st.ctx.Err() != nil {
			e.forget(st.sock, func(f *inflight) bool { return f.st == st })
			e.release(st.sock)
			close(st.out)
			continue
		}
		e.streams[j] = st
		j++
	}
	clear(e.streams[j:])
	e.streams = e.streams[:j]
	j = 0
	for _, rd := range e.rounds {
		if rd.finished || rd.ctx.Err() != nil {
			e.forget(rd.sock, func(f *inflight) bool { return f.rd == rd })
			e.release(rd.sock)
			continue
		}
		e.rounds[j] = rd
		j++
	}
	clear(e.rounds[j:])
	e.rounds = e.rounds[:j]
	j = 0
	for _, c := range e.carriers {
		if c.ctx.Err() != nil {
			c.close()
			continue
		}
		e.carriers[j] = c
		j++
	}
	clear(e.carriers[j:])
	e.carriers = e.carriers[:j]
	j = 0
	for _, t := range e.tickers {
		if t.ctx.Err() != nil {
			continue
		}
		e.tickers[j] = t
		j++
	}
	clear(e.tickers[j:])
	e.tickers = e.tickers[:j]
}

func (e *Engine) forget(s *rawSock, mine func(*inflight) bool) {
	for seq, f := range s.pending {
		if mine(f) {
			delete(s.pending, seq)
		}
	}
}

// register adds work on the socket for (addr, source, mark), opened on the
// calling thread.
func (e *Engine) sock(addr, source netip.Addr, mark uint32) (*rawSock, error) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return nil, errors.New("invalid address")
	}
	source = source.Unmap()
	if source.IsValid() && source.Is4() != addr.Is4() {
		return nil, fmt.Errorf("source %s and target %s are of different families", source, addr)
	}
	return e.socket(sockKey{ns: threadNetns(), v6: !addr.Is4(), source: source, mark: mark})
}

// ---------------------------------------------------------------------
// Streams.

type estream struct {
	ctx      context.Context
	log      *slog.Logger
	addr     netip.Addr
	opt      StreamOptions
	sock     *rawSock
	spacingK int64
	nextK    int64 // -1: at the next tick
	seq      uint64
	queue    []Outcome
	out      chan Outcome
	dropping bool
	// newest is the highest Seq settled; readSeq the highest Seq sent
	// before the latest read of the replies, at readAt (see Outcome).
	newest  uint64
	readSeq uint64
	readAt  time.Time
	// losses counts the lost probes in a row at newest; recheck is set
	// when a read half a tick after the tick is due (opt.Recheck).
	losses  int
	recheck bool
}

// Stream implements Streamer on the engine: requests go out on the grid
// every opt.Spacing rounded to the nearest whole tick.
func (e *Engine) Stream(ctx context.Context, addr netip.Addr, opt StreamOptions, log *slog.Logger) (<-chan Outcome, error) {
	opt = opt.WithDefaults()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stream to %s: %w", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.sock(addr, opt.Source, opt.Mark)
	if err != nil {
		return nil, fmt.Errorf("stream to %s: %w", addr, err)
	}
	st := &estream{ctx: ctx, log: log, addr: addr.Unmap(), opt: opt, sock: s,
		spacingK: e.spacingTicks(opt.Spacing), nextK: -1, out: make(chan Outcome, 64)}
	e.streams = append(e.streams, st)
	e.start()
	e.wake() // a sleeping loop plans its next tick again
	context.AfterFunc(ctx, e.wake)
	return st.out, nil
}

// due sends the stream's request if one is due at this tick.
func (st *estream) due(e *Engine) {
	if st.nextK < 0 {
		st.nextK = e.k
	}
	if e.k < st.nextK {
		return
	}
	// The next send is on the next multiple of the spacing: streams of
	// one spacing (failover's two WANs) share their ticks instead of
	// each waking the loop in its own phase. Only the first gap of a
	// stream is shorter.
	st.nextK = (e.k/st.spacingK + 1) * st.spacingK
	st.seq++
	f := &inflight{st: st, idx: int(st.seq)}
	if err := e.send(st.sock, st.addr, st.opt.Size, st.opt.Wait, f, false); err != nil {
		st.emit(Outcome{Seq: st.seq, Sent: f.sent, At: f.sent, Err: err})
	}
}

func (st *estream) settle(f *inflight, ok bool, rtt time.Duration, err error) {
	o := Outcome{Seq: uint64(f.idx), Sent: f.sent, Err: err}
	if ok && rtt <= st.opt.Wait {
		o.OK, o.RTT, o.At = true, rtt, f.sent.Add(rtt)
	} else {
		o.At = f.sent.Add(st.opt.Wait)
	}
	st.emit(o)
}

func (st *estream) emit(o Outcome) {
	if len(st.queue) >= maxOutQueue {
		st.queue = st.queue[1:]
		if !st.dropping {
			st.dropping = true
			st.log.Warn("probe stream consumer too slow, dropping the oldest outcomes", "addr", st.addr)
		}
	} else if len(st.queue) < maxOutQueue/2 {
		st.dropping = false
	}
	st.queue = append(st.queue, o)
}

// flush hands the queued outcomes to the consumer without blocking.
// Outcomes settled at one tick go out in Seq order (expiries come from a
// map). It reports whether they settled a new loss while newer probes were
// in flight (what StreamOptions.Recheck reads again for).
func (st *estream) flush() (lostInFlight bool) {
	if len(st.queue) == 0 {
		return false
	}
	if len(st.queue) > 1 {
		slices.SortStableFunc(st.queue, func(a, b Outcome) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	lostNew := false
	if top := st.queue[len(st.queue)-1]; top.Seq > st.newest {
		st.newest = top.Seq
		if top.OK {
			st.losses = 0
		} else {
			st.losses++
			lostNew = true
		}
	}
	flight := st.inFlight()
	lostInFlight = lostNew && len(flight) > 0
	for len(st.queue) > 0 {
		o := st.queue[0]
		o.Newest, o.Read, o.InFlight = st.newest, st.readAt, flight
		select {
		case st.out <- o:
			st.queue = st.queue[1:]
		default:
			return lostInFlight
		}
	}
	st.queue = st.queue[:0:0]
	return lostInFlight
}

// inFlight returns the send times of the probes newer than st.newest that
// were sent before the latest read: unsettled, so without a reply then.
// Usually none (nil, no allocation). Called with e.mu held.
func (st *estream) inFlight() []time.Time {
	if st.readSeq <= st.newest {
		return nil
	}
	var ts []time.Time
	for _, f := range st.sock.pending {
		if f.st == st && uint64(f.idx) > st.newest && uint64(f.idx) <= st.readSeq {
			ts = append(ts, f.sent)
		}
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

// ---------------------------------------------------------------------
// Rounds.

type round struct {
	ctx      context.Context
	addr     netip.Addr
	opt      PingOptions
	sock     *rawSock
	spacingK int64
	nextK    int64
	lastK    int64 // tick of the latest request
	sent     int
	settled  int
	rtts     []time.Duration // by request index; -1 = lost
	sendErr  error
	noRoute  int // sends that failed for want of a route
	finished bool
	done     chan PingResult
}

// Ping implements Pinger on the engine: the requests go out on the grid
// (opt.Spacing rounded to the nearest whole tick), so a round ends up to two ticks
// after the replies that end it.
func (e *Engine) Ping(ctx context.Context, addr netip.Addr, opt PingOptions, log *slog.Logger) (PingResult, error) {
	opt = opt.WithDefaults()
	addr = addr.Unmap()
	if err := ctx.Err(); err != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", addr, err)
	}
	e.mu.Lock()
	s, err := e.sock(addr, opt.Source, opt.Mark)
	if err != nil {
		e.mu.Unlock()
		return PingResult{}, fmt.Errorf("ping %s: %w", addr, err)
	}
	rd := &round{ctx: ctx, addr: addr, opt: opt, sock: s, spacingK: e.spacingTicks(opt.Spacing), nextK: -1,
		rtts: make([]time.Duration, opt.Count), done: make(chan PingResult, 1)}
	for i := range rd.rtts {
		rd.rtts[i] = -1
	}
	e.rounds = append(e.rounds, rd)
	e.start()
	e.mu.Unlock()
	e.wake() // the first request goes out at once
	select {
	case r := <-rd.done:
		if rd.sendErr != nil && log != nil {
			log.Debug("ping send failed", "addr", addr, "err", rd.sendErr)
		}
		return r, nil
	case <-ctx.Done():
		e.wake()
		return Summarize(addr, opt.Count, nil), fmt.Errorf("ping %s: %w", addr, ctx.Err())
	}
}

func (rd *round) due(e *Engine, offGrid bool) {
	if rd.finished || rd.sent >= rd.opt.Count {
		return
	}
	if rd.nextK < 0 {
		rd.nextK = e.k
	}
	if e.k < rd.nextK {
		return
	}
	rd.nextK = e.k + rd.spacingK
	rd.lastK = e.k
	f := &inflight{rd: rd, idx: rd.sent}
	rd.sent++
	if err := e.send(rd.sock, rd.addr, rd.opt.Size, rd.opt.Wait, f, offGrid); err != nil {
		if rd.sendErr == nil {
			rd.sendErr = err
		}
		if NoRoute(err) {
			rd.noRoute++
		}
		rd.settle(f, false, 0)
	}
}

func (rd *round) settle(f *inflight, ok bool, rtt time.Duration) {
	if rd.finished {
		return
	}
	rd.settled++
	if ok && rtt <= rd.opt.Wait {
		rd.rtts[f.idx] = rtt
	}
	if (ok && rd.opt.UntilReply) || rd.settled >= rd.opt.Count {
		n := rd.opt.Count
		if rd.opt.UntilReply {
			n = rd.sent
		}
		var got []time.Duration
		for _, d := range rd.rtts {
			if d >= 0 {
				got = append(got, d)
			}
		}
		rd.finished = true
		res := Summarize(rd.addr, n, got)
		res.NoRoute = rd.noRoute > 0 && rd.noRoute == rd.sent
		rd.done <- res
	}
}

// ---------------------------------------------------------------------
// Tickers.

// eticker is a periodic wakeup of a monitor on the grid (Every).
type eticker struct {
	ctx     context.Context
	c       chan time.Time
	periodK int64
	nextK   int64
}

// Every returns a channel that receives the time at every period until
// ctx ends; a tick the reader has not taken yet is dropped, as with a
// time.Ticker. The period is rounded like a stream's spacing (whole
// seconds from a second up), and the ticks are on the multiples of it
// counted from the engine's start, as the streams' sends are: a monitor's
// periodic work (a ping round, a ddns round) then lands on the tick of
// the probes (failover's, every second by default) and shares their
// wakeup. A time.Ticker would cost two or three wakeups of its own per
// tick (see waker). The first tick comes within one period. A period
// under a second (tests: the grid cannot serve it) gets a time.Ticker's
// channel instead, stopped when ctx ends.
func (e *Engine) Every(ctx context.Context, period time.Duration) <-chan time.Time {
	if period < time.Second {
		return TimeTicks(ctx, period)
	}
	c := make(chan time.Time, 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.start()
	t := &eticker{ctx: ctx, c: c, periodK: e.spacingTicks(period)}
	cur := max(int64(time.Since(e.epoch)/e.grid), e.k)
	t.nextK = (cur/t.periodK + 1) * t.periodK
	e.tickers = append(e.tickers, t)
	e.wake() // a sleeping loop plans its next tick again
	context.AfterFunc(ctx, e.wake)
	return c
}

// TimeTicks is Every on a runtime timer: the channel of a time.Ticker,
// stopped when ctx ends. For periods the grid cannot serve, and for tests
// that run without the engine.
func TimeTicks(ctx context.Context, period time.Duration) <-chan time.Time {
	t := time.NewTicker(period)
	context.AfterFunc(ctx, t.Stop)
	return t.C
}

func (t *eticker) due(e *Engine, now time.Time) {
	if e.k < t.nextK {
		return
	}
	t.nextK = (e.k/t.periodK + 1) * t.periodK
	select {
	case t.c <- now:
	default:
	}
}

// ---------------------------------------------------------------------
// Carriers.

type carrierWatch struct {
	ctx  context.Context
	path string
	fd   int
	last int8 // -1 unknown, 0, 1
	out  chan bool
	buf  [4]byte
}

// WatchCarrier reads /sys/class/net/IFNAME/carrier on every tick (a pread
// of a file kept open) and sends the new value on the returned channel when
// it changes (the first read included). The channel holds the latest value
// only; it is not closed (the watch stops when ctx ends). A missing
// interface is retried on each tick.
func (e *Engine) WatchCarrier(ctx context.Context, ifname string) <-chan bool {
	c := &carrierWatch{ctx: ctx, path: "/sys/class/net/" + ifname + "/carrier", fd: -1, last: -1, out: make(chan bool, 1)}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.carriers = append(e.carriers, c)
	e.start()
	e.wake()
	context.AfterFunc(ctx, e.wake)
	return c.out
}

func (c *carrierWatch) read() {
	if c.fd < 0 {
		fd, err := unix.Open(c.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return // no such interface (yet): netlink tells when it appears
		}
		c.fd = fd
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(c.fd), uintptr(unsafe.Pointer(&c.buf[0])), uintptr(len(c.buf)), 0, 0, 0)
	if errno != 0 || n == 0 {
		if errno != unix.EINVAL { // EINVAL: the link is down (no carrier to tell)
			c.close()
		}
		return
	}
	v := int8(0)
	if c.buf[0] == '1' {
		v = 1
	}
	if v == c.last {
		return
	}
	c.last = v
	select {
	case <-c.out:
	default:
	}
	c.out <- v == 1
}

func (c *carrierWatch) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}
