package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
)

// Conn is one established connection to the broker. It is valid until Done
// is closed; then Client.Connected returns the next one.
type Conn struct {
	cli           *paho.Client
	nc            net.Conn // the connection paho writes to
	recvMax       uint16
	maxOut        int // the broker's Maximum Packet Size; 0 = none declared
	packetTimeout time.Duration

	lostOnce sync.Once
	cause    error         // why the connection was lost; set once, before lost is closed
	lost     chan struct{} // closed when paho reports the connection failed
	done     chan struct{} // closed once the connection is fully shut down
}

// Done is closed when the connection has ended. Acks still pending then
// report ErrConnectionLost.
func (cn *Conn) Done() <-chan struct{} { return cn.done }

// ReceiveMaximum is the broker's limit of unacknowledged QoS 1 messages on
// this connection (Mosquitto: 20 by default). Send blocks while it is
// reached.
func (cn *Conn) ReceiveMaximum() uint16 { return cn.recvMax }

// MaxPacketSize is the broker's Maximum Packet Size (CONNACK), 0 when it
// declared none (then the protocol's 268,435,460 bytes apply). Send refuses
// a message that does not fit with a *TooLargeError, before writing it:
// a broker disconnects a client that sends a bigger packet.
func (cn *Conn) MaxPacketSize() int { return cn.maxOut }

func (cn *Conn) setLost(err error) {
	cn.lostOnce.Do(func() {
		cn.cause = err
		close(cn.lost)
	})
}

func (cn *Conn) lostErr() error {
	cn.setLost(errClosed)
	return cn.cause
}

// Send publishes m at QoS 1 (m.QoS is ignored) and returns once the message
// is written to the connection, without waiting for the broker's PUBACK:
// messages sent one after the other from one goroutine reach the broker, and
// so its subscribers, in that order. Send blocks while ReceiveMaximum
// messages are unacknowledged (or until ctx ends). The Ack reports the
// broker's answer.
func (cn *Conn) Send(ctx context.Context, m Message) (*Ack, error) {
	select {
	case <-cn.done:
		return nil, ErrConnectionLost
	default:
	}
	if cn.maxOut > 0 {
		if size := m.PacketSize(); size > cn.maxOut {
			return nil, &TooLargeError{Topic: m.Topic, Size: size, Limit: cn.maxOut}
		}
	}
	a := &Ack{resp: make(chan packets.ControlPacket, 1), done: cn.done, topic: m.Topic}
	p := m.publish()
	p.QoS = 1
	// The session wrapper takes a.resp from the context: paho's
	// asynchronous publish has no other way to report the PUBACK.
	_, err := cn.cli.PublishWithOptions(context.WithValue(ctx, ackKey{}, a.resp), p,
		paho.PublishOptions{Method: paho.PublishMethod_AsyncSend})
	switch {
	case err == nil:
		return a, nil
	case errors.Is(err, paho.ErrNetworkErrorAfterStored):
		// In the session but not written: the connection is failing, and
		// the Ack will say so.
		return a, nil
	case errors.Is(err, session.ErrNoConnection):
		return nil, ErrConnectionLost
	}
	return nil, fmt.Errorf("publish to %s: %w", m.Topic, err)
}

// Cork holds the messages sent from now on until Uncork, so that a burst
// leaves in one write; a Send that has to wait for the send quota sends
// them first. Other goroutines' packets wait too: keep corks short and
// never block between Cork and Uncork except in Send.
func (cn *Conn) Cork() {
	if bc, ok := cn.nc.(*bufferedConn); ok {
		bc.cork()
	}
}

// Uncork sends what Cork held back.
func (cn *Conn) Uncork() {
	if bc, ok := cn.nc.(*bufferedConn); ok {
		bc.uncork()
	}
}

// Publish publishes m and, for QoS 1 and 2, waits for the broker's
// acknowledgement (at most the packet timeout, or until ctx ends). QoS 2 is
// sent as QoS 1.
func (cn *Conn) Publish(ctx context.Context, m Message) error {
	if m.QoS == 0 {
		if _, err := cn.cli.Publish(ctx, m.publish()); err != nil {
			return fmt.Errorf("publish to %s: %w", m.Topic, err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cn.packetTimeout)
	defer cancel()
	a, err := cn.Send(ctx, m)
	if err != nil {
		return err
	}
	return a.Wait(ctx)
}

func (m Message) publish() *paho.Publish {
	p := &paho.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain}
	if len(m.User) > 0 {
		p.Properties = &paho.PublishProperties{User: make(paho.UserProperties, len(m.User))}
		for i, u := range m.User {
			p.Properties.User[i] = paho.UserProperty{Key: u.Key, Value: u.Value}
		}
	}
	return p
}

// Ack is the broker's pending answer to a message sent with Conn.Send.
// It is meant for one goroutine.
type Ack struct {
	resp  chan packets.ControlPacket
	done  <-chan struct{}
	topic string

	finished bool
	err      error
}

// Wait blocks until the broker acknowledged the message (nil), refused it
// (*PublishError), the connection ended first (ErrConnectionLost), or ctx
// ended (ctx's error; Wait may be called again).
func (a *Ack) Wait(ctx context.Context) error {
	if a.finished {
		return a.err
	}
	select {
	case cp := <-a.resp:
		return a.finish(cp)
	default:
	}
	select {
	case cp := <-a.resp:
		return a.finish(cp)
	case <-a.done:
		select {
		case cp := <-a.resp: // answered just before the end
			return a.finish(cp)
		default:
		}
		a.finished, a.err = true, ErrConnectionLost
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports, without blocking, whether the outcome is known, and if so
// the error Wait returns.
func (a *Ack) Ready() (bool, error) {
	if a.finished {
		return true, a.err
	}
	select {
	case cp := <-a.resp:
		return true, a.finish(cp)
	default:
	}
	select {
	case <-a.done:
		return true, a.Wait(context.Background()) // prefers an answer that came just before the end
	default:
		return false, nil
	}
}

func (a *Ack) finish(cp packets.ControlPacket) error {
	a.finished = true
	switch p := cp.Content.(type) {
	case *packets.Puback:
		if p.ReasonCode >= 0x80 {
			a.err = &PublishError{Topic: a.topic, Code: p.ReasonCode}
		}
	default:
		// A zero ControlPacket: the session was closed with the message in
		// flight.
		a.err = ErrConnectionLost
	}
	return a.err
}

// ackKey is the context key under which Conn.Send passes the channel for
// the PUBACK to connSession.
type ackKey struct{}

// RefusedError is a broker's refusal of a connection (CONNACK reason code
// ≥ 0x80), e.g. a wrong user name or password.
type RefusedError struct {
	Code byte
	// Detail is the broker's reason string, if it sent one.
	Detail string
}

// Error says that and why the broker refused the connection.
func (e *RefusedError) Error() string {
	s := fmt.Sprintf("broker refused the connection: %s (reason code 0x%02x)", ReasonText(e.Code), e.Code)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// PublishError is a broker's refusal of a message (PUBACK reason code
// ≥ 0x80), e.g. "not authorized" when an ACL forbids the topic.
type PublishError struct {
	Topic string
	Code  byte
}

// Error says which message the broker refused and why.
func (e *PublishError) Error() string {
	return fmt.Sprintf("broker refused the message to %s: %s (reason code 0x%02x)", e.Topic, ReasonText(e.Code), e.Code)
}

// DisconnectError is a DISCONNECT sent by the broker, e.g. "session taken
// over" when another client connected with the same client id.
type DisconnectError struct {
	Code   byte
	Detail string
}

// Error says why the broker closed the connection.
func (e *DisconnectError) Error() string {
	s := fmt.Sprintf("broker closed the connection: %s (reason code 0x%02x)", ReasonText(e.Code), e.Code)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// TLSError is a failed TLS handshake: an untrusted or mismatching
// certificate, or a broker that does not speak TLS.
type TLSError struct {
	Host string
	Err  error
}

// Error names the host and the handshake error.
func (e *TLSError) Error() string { return fmt.Sprintf("tls handshake with %s: %v", e.Host, e.Err) }

// Unwrap returns the handshake error.
func (e *TLSError) Unwrap() error { return e.Err }

// FileError is an unreadable password-file or ca-file.
type FileError struct {
	What string // "password-file" or "ca-file"
	Err  error
}

// Error names the file setting and the error.
func (e *FileError) Error() string { return fmt.Sprintf("mqtt %s: %v", e.What, e.Err) }

// Unwrap returns the file error.
func (e *FileError) Unwrap() error { return e.Err }

// Classify names the kind of a connection problem, for reporting a
// change once rather than every failed attempt: "network" (unreachable,
// dropped, timed out), "refused 0xNN" (the broker refused the connection),
// "closed 0xNN" (the broker sent DISCONNECT), "takeover" (another client
// uses the client id), "too-large" (the broker sent a packet over the
// limit), "tls", "password-file", "ca-file"; "" for nil.
func Classify(err error) string {
	var (
		re *RefusedError
		de *DisconnectError
		te *TLSError
		fe *FileError
		to *TakeoverError
		pl *PacketTooLargeError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &to):
		return "takeover"
	case errors.As(err, &pl):
		return "too-large"
	case errors.As(err, &re):
		return fmt.Sprintf("refused 0x%02x", re.Code)
	case errors.As(err, &de):
		return fmt.Sprintf("closed 0x%02x", de.Code)
	case errors.As(err, &te):
		return "tls"
	case errors.As(err, &fe):
		return fe.What
	}
	return "network"
}

// ReasonText is the MQTT v5 name of a reason code, in lower case.
func ReasonText(code byte) string {
	if s, ok := reasonTexts[code]; ok {
		return s
	}
	return "unknown reason"
}

var reasonTexts = map[byte]string{
	0x00: "success",
	0x04: "disconnect with will message",
	0x10: "no matching subscribers",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "qos not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}
