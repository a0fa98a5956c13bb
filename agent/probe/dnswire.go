package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNSTransport is imon's one DNS transport: every DNS query imon sends (the
// updown monitor's DNS check, the ddns monitor's external-IP providers)
// goes through Exchange. It speaks miekg/dns messages over connections of
// its own so that a cancelled context unblocks I/O at once (miekg/dns
// honours only deadlines, miekg/dns#1399) and so that a caller can open
// them its own way (inside a network namespace, bound to one WAN).
type DNSTransport struct {
	// Dial opens every connection, UDP and TCP; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// UDPTries is how many times a UDP query is sent within ctx's deadline
	// (each waiting an equal share of the time left); 0 means once.
	UDPTries int
}

// RcodeError is a DNS answer with an RCODE other than NOERROR (NXDOMAIN,
// SERVFAIL, REFUSED, ...): the server answered that it cannot.
type RcodeError struct{ Rcode int }

func (e *RcodeError) Error() string {
	if s, ok := dns.RcodeToString[e.Rcode]; ok {
		return "server answered " + s
	}
	return "server answered rcode " + strconv.Itoa(e.Rcode)
}

// BadReplyError is returned by Exchange when only datagrams that were not
// the answer arrived before the deadline: they did not parse, were not
// responses, or carried another ID (late, or spoofed). Reason and Raw
// describe the last one.
type BadReplyError struct {
	Reason string
	Raw    []byte
}

func (e *BadReplyError) Error() string { return e.Reason }

// maxDNSMessage is the largest DNS message (the TCP length prefix's limit);
// UDP reads use a buffer this large so that nothing is silently cut.
const maxDNSMessage = 65535

// udpBufs holds the UDP read buffers (nothing keeps a reference: a reply is
// unpacked, a bad one copied, before the buffer goes back).
var udpBufs = sync.Pool{New: func() any { b := make([]byte, maxDNSMessage); return &b }}

// Exchange sends m to addr ("IP:port") over UDP, family "" (either), "4"
// or "6", and returns the reply carrying m's ID; a truncated UDP reply is
// asked again over TCP. It returns when ctx ends at the latest.
func (t DNSTransport) Exchange(ctx context.Context, m *dns.Msg, family, addr string) (*dns.Msg, error) {
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	r, err := t.exchangeUDP(ctx, m.Id, wire, "udp"+family, addr)
	if err != nil || !r.Truncated {
		return r, err
	}
	r, err = t.exchangeTCP(ctx, m.Id, wire, "tcp"+family, addr)
	if err != nil {
		return nil, fmt.Errorf("tcp retry of truncated answer: %w", err)
	}
	return r, nil
}

// dial opens a connection whose I/O ends when ctx ends.
func (t DNSTransport) dial(ctx context.Context, network, addr string) (net.Conn, func(), error) {
	dial := t.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	c, err := dial(ctx, network, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s %s: %w", network, addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return c, func() { stop(); _ = c.Close() }, nil
}

func (t DNSTransport) exchangeUDP(ctx context.Context, id uint16, wire []byte, network, addr string) (*dns.Msg, error) {
	c, done, err := t.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer done()
	tries := max(t.UDPTries, 1)
	deadline, hasDeadline := ctx.Deadline()
	bp := udpBufs.Get().(*[]byte) // 64 KiB per query was most of a ddns round's garbage
	defer udpBufs.Put(bp)
	buf := *bp
	var bad *BadReplyError
	for try := 1; ; try++ {
		if _, err := c.Write(wire); err != nil {
			return nil, fmt.Errorf("send query to %s: %w", addr, ctxErr(ctx, err))
		}
		if hasDeadline && try < tries {
			_ = c.SetReadDeadline(time.Now().Add(time.Until(deadline) / time.Duration(tries-try+1)))
		} else if hasDeadline {
			_ = c.SetReadDeadline(deadline)
		}
		r, err := readUDP(c, buf, id, &bad)
		if err == nil {
			return r, nil
		}
		var ne net.Error
		if try < tries && ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
			continue // resend
		}
		if bad != nil {
			return nil, bad
		}
		if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
			// The read deadline (= ctx's deadline) fired a hair before ctx did.
			return nil, fmt.Errorf("read answer from %s: no answer: %w", addr, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("read answer from %s: %w", addr, ctxErr(ctx, err))
	}
}

// readUDP reads datagrams until one is the answer to query id, skipping
// (and remembering in *bad) those that are not.
func readUDP(c net.Conn, buf []byte, id uint16, bad **BadReplyError) (*dns.Msg, error) {
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			*bad = &BadReplyError{Reason: "malformed DNS message", Raw: append([]byte(nil), buf[:n]...)}
			continue
		}
		if r.Id != id || !r.Response {
			*bad = &BadReplyError{Reason: "DNS message with wrong ID or not a response"}
			continue
		}
		return r, nil
	}
}

// exchangeTCP sends the query with its two-byte length prefix (RFC 1035
// 4.2.2) and reads one reply, which must carry the query's ID.
func (t DNSTransport) exchangeTCP(ctx context.Context, id uint16, wire []byte, network, addr string) (*dns.Msg, error) {
	c, done, err := t.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer done()
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := c.Write(out); err != nil {
		return nil, fmt.Errorf("send query to %s: %w", addr, ctxErr(ctx, err))
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, fmt.Errorf("read answer length from %s: %w", addr, ctxErr(ctx, err))
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", addr, ctxErr(ctx, err))
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil {
		return nil, &BadReplyError{Reason: "malformed DNS message", Raw: buf}
	}
	if r.Id != id {
		return nil, &BadReplyError{Reason: "DNS message with wrong ID"}
	}
	return r, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}
