// Package mqtt is imon's thin MQTT v5 client, built on
// github.com/eclipse/paho.golang. It imports no imon package: it knows
// brokers, connections, topics and payloads, not events.
//
// # Basics
//
// [New] checks a [Config]; [Client.Run] connects and keeps reconnecting with
// backoff until its context ends. Each connection announces itself with a
// retained "online" on Config.StatusTopic, leaves "offline" there as its last
// will, and publishes "offline" itself before a clean disconnect. The
// subscriptions of Config.Subscriptions are made again on every connection.
// [Client.Connected] hands out the live [Conn]; [Conn.Done] is closed when
// that connection is lost, after which a new Conn comes up.
//
// [Conn.Send] publishes a QoS 1 message without waiting for its PUBACK: it
// returns once the message is written, so that messages sent one after the
// other from one goroutine reach the broker in that order, and it blocks
// while the broker's Receive Maximum of messages is in flight. The returned
// [Ack] reports the broker's answer. This is what makes an outbox fast:
// paho's blocking Publish allows one message per round trip, and concurrent
// Publish calls may overtake each other on the wire.
//
// # Bounds
//
// The client declares a Maximum Packet Size (Config.MaxPacketSize, 8 KiB by
// default) and refuses a bigger incoming packet before it is read into
// memory (*PacketTooLargeError; see packetLimiter: paho allocates what a
// header declares). Send refuses a message over the broker's Maximum
// Packet Size (*TooLargeError) instead of getting disconnected for it.
// Connections that the broker closes again and again soon after accepting
// them are reported as a *TakeoverError: another client uses the id.
//
// # Caveats
//
//   - Every connection starts a clean session (Clean Start, session expiry
//     0): nothing survives a reconnect, neither on the broker (queued commands
//     are dropped, which is wanted for stale commands) nor in the client. An
//     Ack of a message whose connection was lost reports [ErrConnectionLost]
//     even though the broker may have received it: the caller resends, so
//     delivery is at least once.
//   - This is why the client drives paho.Client itself instead of autopaho:
//     autopaho's ConnectionManager offers neither an asynchronous publish with
//     an acknowledgement nor per-connection session state, and keeps session
//     state across reconnects, where paho silently wipes it when the broker
//     reports no session (see ../docs/mqtt.md). Measured in one run
//     (BenchmarkTransport, transport_bench_test.go, 2026-12-06, 2 vCPUs
//     shared with other work, 20,000 QoS 1 messages of 250 bytes to a local
//     Mosquitto with a QoS 1 subscriber): Conn.Send 10,160 msg/s in order
//     with an Ack per message; autopaho's Publish from one goroutine (its
//     only ordered, acknowledged path) 4,480 msg/s; Publish from 20
//     goroutines 7,620 msg/s but out of order; PublishViaQueue 9,120 msg/s,
//     in order but with no acknowledgement at all, so a journal cursor could
//     not follow it. Single-message latency is alike (0.13–0.15 ms median;
//     p99 0.52 ms for Conn.Send, 0.69 ms for autopaho's Publish). The
//     hand-written session stays: 2.3 times autopaho's ordered rate, and the
//     only one of the four that the outbox's cursor can trust.
//   - Callbacks (OnMessage, OnStatus) run on the client's goroutines and must
//     not block: hand the work to a channel.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"imon/internal/backoff"
)

// Payloads of the status topic.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// Defaults of Config.
const (
	// DefaultKeepAlive is the MQTT keep-alive when Config.KeepAlive is 0.
	DefaultKeepAlive = 30 * time.Second
	// DefaultConnectTimeout bounds dialling, the TLS handshake and the
	// CONNECT/CONNACK exchange of one attempt.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultPacketTimeout bounds the wait for a PUBACK or SUBACK in
	// Conn.Publish and the subscriptions.
	DefaultPacketTimeout = 10 * time.Second
	// stableAfter is how long a connection must have lasted for a reconnect
	// to start again without delay; a connection that drops sooner counts as
	// a failed attempt (a duplicate client id that kicks us out, a broker
	// that accepts and closes).
	stableAfter = 30 * time.Second
	// offlineTimeout bounds the final "offline" publish at shutdown.
	offlineTimeout = 2 * time.Second
)

// ErrConnectionLost is reported by [Ack.Wait] and [Conn.Publish] when the
// connection a message was sent on ended before the broker acknowledged it,
// and by [Conn.Send] on a connection that already ended. The message may or
// may not have reached the broker.
var ErrConnectionLost = errors.New("mqtt connection lost")

// Config configures a Client.
type Config struct {
	// Server is the broker's URL: mqtt:// or tcp:// (port 1883 by default),
	// mqtts://, ssl:// or tls:// (port 8883), or unix:///path/to/socket.
	Server string
	// ClientID must be stable and unique per broker: two clients with the
	// same id keep disconnecting each other.
	ClientID string
	// Username is sent when not empty.
	Username string
	// PasswordFile names a file whose first line is the password. It is read
	// before every connection attempt, so a corrected file is picked up
	// without a restart.
	PasswordFile string
	// CAFile names a PEM bundle of the CAs that may sign the broker's
	// certificate (mqtts). Empty means the system's roots. Read before every
	// attempt.
	CAFile string
	// TLSConfig, when set, is the base of the TLS configuration (cloned).
	TLSConfig *tls.Config
	// KeepAlive is the MQTT keep-alive (whole seconds); 0 means
	// DefaultKeepAlive.
	KeepAlive time.Duration
	// StatusTopic receives the retained "online" after each connect, the
	// retained "offline" last will, and "offline" before a clean disconnect.
	// Empty means no birth and no will.
	StatusTopic string
	// Subscriptions are made on every connection.
	Subscriptions []Subscription
	// OnMessage is called for every message received, in order, on the
	// connection's receive goroutine. It must not block. May be nil.
	OnMessage func(Message)
	// OnStatus is called after every connection attempt and every lost
	// connection. It must not block. May be nil.
	OnStatus func(Status)
	// Backoff gives the delay before the next attempt after n consecutive
	// failures (n ≥ 1). Nil means DefaultBackoff.
	Backoff func(n int) time.Duration
	// ConnectTimeout bounds one attempt; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxPacketSize is the Maximum Packet Size declared in CONNECT: the
	// broker must not send bigger packets, and one that comes anyway ends
	// the connection (*PacketTooLargeError) before it is read into memory.
	// 0 means DefaultMaxPacketSize.
	MaxPacketSize int
	// PacketTimeout bounds Publish and Subscribe; 0 means
	// DefaultPacketTimeout.
	PacketTimeout time.Duration
	// Logger receives debug detail and warnings (failed subscriptions).
	// Nil discards them.
	Logger *slog.Logger
}

// Subscription is a subscription made on every connection.
type Subscription struct {
	Topic string
	QoS   byte
	// NoLocal: do not receive this client's own publications.
	NoLocal bool
	// RetainHandling: 0 send retained messages on subscribe, 1 only for a
	// new subscription, 2 never (commands: a retained command must not be
	// replayed on every reconnect).
	RetainHandling byte
}

// Message is an MQTT application message.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// User holds the MQTT v5 user properties.
	User []UserProperty
}

// UserProperty is an MQTT v5 user property.
type UserProperty struct {
	Key, Value string
}

// Status reports the outcome of a connection attempt or the loss of a
// connection.
type Status struct {
	// Connected is true after a successful connect.
	Connected bool
	// Server is the broker URL without credentials.
	Server string
	// Err says why the attempt failed or the connection was lost; nil when
	// Connected, and nil for a clean shutdown.
	Err error
	// Failures counts the consecutive failed attempts (0 when Connected).
	Failures int
	// ReceiveMaximum is the broker's limit of QoS 1 messages in flight
	// (when Connected).
	ReceiveMaximum uint16
}

// Client is an MQTT connection that reconnects by itself. Create it with
// New and run it with Run; Connected hands out the live connection.
type Client struct {
	cfg    Config
	server *url.URL
	log    *slog.Logger

	mu      sync.Mutex    // guards the following
	cur     *Conn         // the live connection, nil when down
	changed chan struct{} // closed and replaced whenever cur changes
	running bool
}

// New checks cfg and returns a Client; nothing is dialled before Run.
func New(cfg Config) (*Client, error) {
	u, err := ParseServer(cfg.Server)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, errors.New("mqtt client id is empty")
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.KeepAlive < time.Second || cfg.KeepAlive > 65535*time.Second {
		return nil, fmt.Errorf("mqtt keep-alive %s out of range 1s..65535s", cfg.KeepAlive)
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.MaxPacketSize < 128 || cfg.MaxPacketSize > maxPacket {
		return nil, fmt.Errorf("mqtt maximum packet size %d out of range 128..%d", cfg.MaxPacketSize, maxPacket)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.PacketTimeout == 0 {
		cfg.PacketTimeout = DefaultPacketTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg:     cfg,
		server:  u,
		log:     cfg.Logger.With("server", u.Redacted()),
		changed: make(chan struct{}),
	}, nil
}

// Server returns the broker URL without credentials.
func (c *Client) Server() string { return c.server.Redacted() }

// DefaultBackoff waits 1 s after the first failure, doubling up to 60 s,
// with ±20 % jitter so that many agents do not reconnect in lockstep.
func DefaultBackoff(n int) time.Duration {
	return Backoff(time.Second, time.Minute)(n)
}

// Backoff returns an exponential backoff from lo to hi with ±20 % jitter
// (imon's one retry schedule, internal/backoff).
func Backoff(lo, hi time.Duration) func(n int) time.Duration {
	return backoff.Policy{Min: lo, Max: hi, Jitter: 0.2}.Delay
}

// Connected waits until a connection is up and returns it, or returns
// ctx's error.
func (c *Client) Connected(ctx context.Context) (*Conn, error) {
	for {
		c.mu.Lock()
		cn, ch := c.cur, c.changed
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Client) clearCurrent(cn *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == cn {
		c.cur = nil
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

func (c *Client) setCurrent(cn *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = cn
	close(c.changed)
	c.changed = make(chan struct{})
}

// Run connects, and reconnects with backoff whenever the connection fails,
// until ctx ends; then it publishes "offline", disconnects and returns nil.
// A Client runs once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("mqtt client already running")
	}
	c.running = true
	c.mu.Unlock()

	failures := 0
	quickDrops := 0 // connections in a row that the broker dropped soon after CONNACK
	for {
		if failures > 0 {
			t := time.NewTimer(c.cfg.Backoff(failures))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		cn, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			c.log.Debug("mqtt connect failed", "err", err, "failures", failures)
			c.report(Status{Server: c.Server(), Err: err, Failures: failures})
			continue
		}
		started := time.Now()
		err = c.serve(ctx, cn)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case time.Since(started) >= stableAfter:
			failures, quickDrops = 0, 0
		case closedByPeer(err):
			failures++
			quickDrops++
		default:
			failures++
			quickDrops = 0
		}
		err = c.takeover(err, quickDrops)
		c.log.Debug("mqtt connection lost", "err", err)
		c.report(Status{Server: c.Server(), Err: err, Failures: failures})
	}
}

// takeoverDrops is how many connections in a row the broker must drop,
// each within stableAfter of its CONNACK and without a reason, before the
// client reports a takeover: Mosquitto 2 closes a session taken over by
// another client with the same id without sending DISCONNECT 0x8E.
const takeoverDrops = 3

// TakeoverError reports that another client uses this client's id: the
// broker said so (DISCONNECT 0x8E, session taken over), or dropped Drops
// connections in a row soon after accepting them.
type TakeoverError struct {
	ClientID string
	Drops    int // 0 when the broker said so
	Err      error
}

// Error names the client id.
func (e *TakeoverError) Error() string {
	if e.Drops == 0 {
		return fmt.Sprintf("another client uses client id %q: the broker handed it the session (set a unique mqtt client-id)", e.ClientID)
	}
	return fmt.Sprintf("another client uses client id %q: the broker closed %d connections in a row within %s of accepting them (%v); set a unique mqtt client-id",
		e.ClientID, e.Drops, stableAfter, e.Err)
}

// Unwrap returns the last connection's error.
func (e *TakeoverError) Unwrap() error { return e.Err }

// takeover turns the loss of a connection into a *TakeoverError when it
// looks like one (see TakeoverError); other errors are returned as they are.
func (c *Client) takeover(err error, quickDrops int) error {
	var de *DisconnectError
	switch {
	case errors.As(err, &de) && de.Code == 0x8E:
		return &TakeoverError{ClientID: c.cfg.ClientID, Err: err}
	case quickDrops < takeoverDrops:
		return err
	}
	return &TakeoverError{ClientID: c.cfg.ClientID, Drops: quickDrops, Err: err}
}

// errClosed is the loss of a connection that paho reported no error for.
var errClosed = errors.New("connection closed")

// closedByPeer reports whether err is the broker closing the connection
// without a word (end of stream), as opposed to a reset, a timeout or a
// DISCONNECT with a reason.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, errClosed)
}

func (c *Client) report(st Status) {
	if c.cfg.OnStatus != nil {
		c.cfg.OnStatus(st)
	}
}

// serve runs one established connection: birth, subscriptions, then it
// waits for the connection to fail (returning why) or ctx to end (clean
// disconnect, nil).
func (c *Client) serve(ctx context.Context, cn *Conn) error {
	// The connection stops being current before its Done is closed, so
	// that Connected never hands out a connection that is known dead.
	defer c.clearCurrent(cn)
	// The connection's own context: subscriptions and the birth give up
	// when the connection fails.
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-cn.lost:
			cancel()
		case <-connCtx.Done():
		}
	}()

	if c.cfg.StatusTopic != "" {
		pctx, pcancel := context.WithTimeout(connCtx, c.cfg.PacketTimeout)
		err := cn.Publish(pctx, Message{Topic: c.cfg.StatusTopic, Payload: []byte(StatusOnline), QoS: 1, Retain: true})
		pcancel()
		if err != nil && !errors.Is(err, ErrConnectionLost) {
			c.log.Warn("mqtt birth message failed", "topic", c.cfg.StatusTopic, "err", err)
		}
	}
	c.subscribe(connCtx, cn)

	c.report(Status{Connected: true, Server: c.Server(), ReceiveMaximum: cn.recvMax})
	c.setCurrent(cn)

	select {
	case <-cn.lost:
		c.clearCurrent(cn)
		<-cn.cli.Done()
		close(cn.done)
		return cn.lostErr()
	case <-cn.cli.Done():
		c.clearCurrent(cn)
		close(cn.done)
		return cn.lostErr()
	case <-ctx.Done():
	}
	// Clean shutdown: "offline" first, because a normal DISCONNECT
	// suppresses the will.
	c.clearCurrent(cn)
	if c.cfg.StatusTopic != "" {
		octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), offlineTimeout)
		if err := cn.Publish(octx, Message{Topic: c.cfg.StatusTopic, Payload: []byte(StatusOffline), QoS: 1, Retain: true}); err != nil {
			c.log.Debug("mqtt offline message failed", "err", err)
		}
		ocancel()
	}
	if err := cn.cli.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		c.log.Debug("mqtt disconnect", "err", err)
	}
	<-cn.cli.Done()
	close(cn.done)
	return nil
}

func (c *Client) subscribe(ctx context.Context, cn *Conn) {
	if len(c.cfg.Subscriptions) == 0 {
		return
	}
	sub := &paho.Subscribe{}
	for _, s := range c.cfg.Subscriptions {
		sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{
			Topic: s.Topic, QoS: s.QoS, NoLocal: s.NoLocal, RetainHandling: s.RetainHandling,
		})
	}
	sctx, cancel := context.WithTimeout(ctx, c.cfg.PacketTimeout)
	defer cancel()
	ack, err := cn.cli.Subscribe(sctx, sub)
	if ack != nil {
		for i, code := range ack.Reasons {
			if code >= 0x80 && i < len(c.cfg.Subscriptions) {
				c.log.Warn("mqtt subscription refused", "topic", c.cfg.Subscriptions[i].Topic,
					"err", fmt.Errorf("reason code 0x%02x", code))
			}
		}
		return
	}
	if err != nil && ctx.Err() == nil {
		c.log.Warn("mqtt subscribe failed", "err", err)
	}
}

func (c *Client) onPublish(pr paho.PublishReceived) (bool, error) {
	if c.cfg.OnMessage == nil {
		return true, nil
	}
	p := pr.Packet
	m := Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain}
	if p.Properties != nil {
		for _, u := range p.Properties.User {
			m.User = append(m.User, UserProperty{Key: u.Key, Value: u.Value})
		}
	}
	c.cfg.OnMessage(m)
	return true, nil
}
