// Command cpufloor is the calibration load of BenchmarkCPUFloor and
// BenchmarkWakeups: it does what imon's probes do, with no imon code
// around it, until it is killed, so that the benchmarks can measure what
// that alone costs on the machine.
//
//	cpufloor -mode grid -stream ADDR[,src=IP][,dev=IF][,mark=N] ... -round ADDR,count=N,every=D ... -carrier IF ...
//	    the floor of imon's probe engine: one goroutine on one timer
//	    (250 ms, the prototype; -tick 200ms for imon's grid); at each tick every raw ICMP socket is read without blocking
//	    (raw syscalls, SO_TIMESTAMPNS), due requests are sent (a stream one
//	    per tick, a round count requests on consecutive ticks every D), and
//	    each carrier is read with pread of its open sysfs file
//	cpufloor -mode pro-bing -addr 127.0.0.1   one bare pro-bing pinger, 4 requests/s
//	cpufloor -mode ticker                     a Go ticker firing 25 times a second
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	probing "github.com/prometheus-community/pro-bing"
	"golang.org/x/sys/unix"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, " ") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	mode := flag.String("mode", "grid", "grid, pro-bing or ticker")
	addr := flag.String("addr", "127.0.0.1", "address the pro-bing pinger pings")
	rate := flag.Int("rate", 0, "requests (pro-bing) or ticks (ticker) per second; default 4 and 25")
	tick := flag.Duration("tick", 250*time.Millisecond, "grid: the timer's period")
	var streams, rounds, carriers list
	flag.Var(&streams, "stream", "grid: a stream ADDR[,src=IP][,dev=IF][,mark=N], one request per tick (repeatable)")
	flag.Var(&rounds, "round", "grid: a round ADDR,count=N,every=DURATION (repeatable)")
	flag.Var(&carriers, "carrier", "grid: an interface whose carrier is read on every tick (repeatable)")
	flag.Parse()
	var err error
	switch *mode {
	case "grid":
		err = grid(*tick, streams, rounds, carriers)
	case "pro-bing":
		err = proBing(*addr, *rate)
	case "ticker":
		err = ticker(*rate)
	default:
		err = fmt.Errorf("unknown mode %q: want grid, pro-bing or ticker", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpufloor:", err)
		os.Exit(1)
	}
}

type target struct {
	fd         int
	addr       [4]byte
	count      int           // round: requests per round (0: a stream)
	every      time.Duration // round period
	left       int
	next       time.Time
	seq        uint16
	oob, buf   []byte
	msg        unix.Msghdr
	iov        unix.Iovec
	name       [unix.SizeofSockaddrInet4]byte
	lastRTT    time.Duration
	sent, recv int
}

func open(spec string) (*target, error) {
	parts := strings.Split(spec, ",")
	a, err := netip.ParseAddr(parts[0])
	if err != nil || !a.Is4() {
		return nil, fmt.Errorf("%q: want an IPv4 address first", spec)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, err
	}
	t := &target{fd: fd, addr: a.As4(), buf: make([]byte, 512), oob: make([]byte, 64)}
	if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, ^1); err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return nil, err
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "src":
			s, err := netip.ParseAddr(v)
			if err != nil {
				return nil, err
			}
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: s.As4()}); err != nil {
				return nil, fmt.Errorf("bind %s: %w", s, err)
			}
		case "dev":
			if err := unix.BindToDevice(fd, v); err != nil {
				return nil, fmt.Errorf("SO_BINDTODEVICE %s: %w", v, err)
			}
		case "mark":
			m, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return nil, err
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(m)); err != nil {
				return nil, err
			}
		case "count":
			if t.count, err = strconv.Atoi(v); err != nil {
				return nil, err
			}
		case "every":
			if t.every, err = time.ParseDuration(v); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%q: unknown option %q", spec, k)
		}
	}
	t.msg.Name = &t.name[0]
	t.msg.Iov = &t.iov
	t.msg.SetIovlen(1)
	t.msg.Control = &t.oob[0]
	return t, nil
}

func (t *target) send(id uint16) {
	t.seq++
	var b [32]byte
	b[0] = 8 // echo request
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], t.seq)
	binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[2:], ^uint16(sum))
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: t.addr}
	_, _, _ = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(t.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
	t.sent++
}

func (t *target) drain() {
	for {
		t.iov.Base = &t.buf[0]
		t.iov.SetLen(len(t.buf))
		t.msg.Namelen = uint32(len(t.name))
		t.msg.SetControllen(len(t.oob))
		n, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(t.fd), uintptr(unsafe.Pointer(&t.msg)), unix.MSG_DONTWAIT)
		if errno != 0 {
			return
		}
		b := t.buf[:n]
		if len(b) < 20 {
			continue
		}
		hl := int(b[0]&15) * 4
		if len(b) >= hl+16 && b[hl] == 0 {
			sent := int64(binary.BigEndian.Uint64(b[hl+8:]))
			if t.msg.Controllen >= uint64(unix.CmsgLen(16)) {
				ts := (*unix.Timespec)(unsafe.Pointer(&t.oob[unix.CmsgLen(0)]))
				t.lastRTT = time.Duration(ts.Nano() - sent)
			}
			t.recv++
		}
	}
}

func grid(tick time.Duration, streams, rounds, carriers []string) error {
	if tick <= 0 {
		return fmt.Errorf("-tick %v: must be positive", tick)
	}
	runtime.GOMAXPROCS(1) // as imon runs

	id := uint16(os.Getpid())
	var ts []*target
	for _, s := range append(streams, rounds...) {
		t, err := open(s)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	var fds []int
	for _, c := range carriers {
		fd, err := unix.Open("/sys/class/net/"+c+"/carrier", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	var cb [4]byte
	epoch := time.Now()
	timer := time.NewTimer(tick)
	for k := int64(1); ; k++ {
		<-timer.C
		now := time.Now()
		for _, t := range ts {
			t.drain()
		}
		for _, t := range ts {
			switch {
			case t.count == 0:
				t.send(id)
			case t.left > 0:
				t.send(id)
				t.left--
			case !now.Before(t.next):
				t.send(id)
				t.left = t.count - 1
				t.next = now.Add(t.every)
			}
		}
		for _, fd := range fds {
			_, _, _ = unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&cb[0])), uintptr(len(cb)), 0, 0, 0)
		}
		timer.Reset(time.Until(epoch.Add(time.Duration(k+1) * tick)))
	}
}

func proBing(addr string, rate int) error {
	if rate <= 0 {
		rate = 4
	}
	p := probing.New(addr)
	if err := p.Resolve(); err != nil {
		return fmt.Errorf("resolving %s: %w", addr, err)
	}
	p.SetPrivileged(true)
	p.RecordRtts = false
	p.RecordTTLs = false
	p.Interval = time.Second / time.Duration(rate)
	p.Count = -1
	return p.Run()
}

func ticker(rate int) error {
	if rate <= 0 {
		rate = 25
	}
	t := time.NewTicker(time.Second / time.Duration(rate))
	for range t.C {
	}
	return nil
}
