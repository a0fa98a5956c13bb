package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// ParseServer checks a broker URL and fills in the default port: mqtt:// and
// tcp:// (1883), mqtts://, ssl://, tls:// (8883), unix:///path.
func ParseServer(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("mqtt server is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("mqtt server %q: %w", s, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme == "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("mqtt server %q: unix:// needs a socket path (unix:///run/mosquitto.sock)", s)
		}
		return u, nil
	case isTLS(u.Scheme), u.Scheme == "mqtt", u.Scheme == "tcp":
	default:
		return nil, fmt.Errorf("mqtt server %q: scheme must be mqtt, mqtts, tcp, ssl, tls or unix", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("mqtt server %q: no host", s)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("mqtt server %q: unexpected path %q", s, u.Path)
	}
	if u.Port() == "" {
		port := "1883"
		if isTLS(u.Scheme) {
			port = "8883"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

func isTLS(scheme string) bool {
	switch scheme {
	case "mqtts", "ssl", "tls", "tcps", "mqtt+ssl":
		return true
	}
	return false
}

// receiveMaximum is the Receive Maximum imon sends in its CONNECT: the
// broker may have at most this many QoS 1 and 2 messages to imon
// unacknowledged, and holds the rest back. imon receives only commands and
// Home Assistant's status, a few at a time. It is also the size of paho's
// queue of received messages: without it, MQTT's default of 65,535 made that
// a 512 KiB channel, a fifth of the agent's live heap (a heap profile,
// 2026-12-06).
const receiveMaximum = 32

// connect makes one connection attempt: password, dial, TLS, CONNECT.
func (c *Client) connect(ctx context.Context) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()

	var password []byte
	if c.cfg.PasswordFile != "" {
		p, err := readPassword(c.cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		password = p
	}
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}

	cn := &Conn{
		nc:            nc,
		packetTimeout: c.cfg.PacketTimeout,
		lost:          make(chan struct{}),
		done:          make(chan struct{}),
		recvMax:       65535, // MQTT's default when the broker sends none
	}
	// A packet over the limit ends the connection with this reason, even
	// if paho's own report of the read error comes later.
	nc.in.onFail = cn.setLost
	cn.cli = paho.NewClient(paho.ClientConfig{
		ClientID: c.cfg.ClientID,
		Conn:     nc,
		// A fresh session per connection: see the package doc.
		Session:           newConnSession(),
		PacketTimeout:     c.cfg.PacketTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){c.onPublish},
		OnClientError:     func(err error) { cn.setLost(err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			e := &DisconnectError{Code: d.ReasonCode}
			if d.Properties != nil {
				e.Detail = d.Properties.ReasonString
			}
			cn.setLost(e)
		},
	})
	expiry := uint32(0)
	maxIn := uint32(c.cfg.MaxPacketSize)
	recvMax := uint16(receiveMaximum)
	cp := &paho.Connect{
		ClientID:   c.cfg.ClientID,
		KeepAlive:  uint16(c.cfg.KeepAlive / time.Second),
		CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry, MaximumPacketSize: &maxIn, ReceiveMaximum: &recvMax},
	}
	if c.cfg.Username != "" {
		cp.Username, cp.UsernameFlag = c.cfg.Username, true
	}
	if password != nil {
		cp.Password, cp.PasswordFlag = password, true
	}
	if c.cfg.StatusTopic != "" {
		cp.WillMessage = &paho.WillMessage{Topic: c.cfg.StatusTopic, Payload: []byte(StatusOffline), QoS: 1, Retain: true}
	}
	ca, err := cn.cli.Connect(ctx, cp)
	if err != nil {
		if ca != nil && ca.ReasonCode >= 0x80 {
			e := &RefusedError{Code: ca.ReasonCode}
			if ca.Properties != nil {
				e.Detail = ca.Properties.ReasonString
			}
			return nil, e
		}
		return nil, fmt.Errorf("mqtt handshake with %s: %w", c.Server(), err)
	}
	if ca.Properties != nil && ca.Properties.ReceiveMaximum != nil {
		cn.recvMax = *ca.Properties.ReceiveMaximum
	}
	if ca.Properties != nil && ca.Properties.MaximumPacketSize != nil {
		cn.maxOut = int(*ca.Properties.MaximumPacketSize)
	}
	return cn, nil
}

func (c *Client) dial(ctx context.Context) (*bufferedConn, error) {
	var d net.Dialer
	u := c.server
	if u.Scheme == "unix" {
		nc, err := d.DialContext(ctx, "unix", u.Path)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		return newBufferedConn(nc, c.cfg.MaxPacketSize), nil
	}
	var tlsCfg *tls.Config
	if isTLS(u.Scheme) {
		// Built before dialling: a broken CA file is the error to report,
		// not whatever the network says.
		var err error
		if tlsCfg, err = c.tlsConfig(); err != nil {
			return nil, err
		}
	}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if tlsCfg == nil {
		return newBufferedConn(nc, c.cfg.MaxPacketSize), nil
	}
	tc := tls.Client(nc, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, &TLSError{Host: u.Host, Err: err}
	}
	// The buffered connection's single flusher makes the tls.Conn safe for
	// paho's concurrent writers.
	return newBufferedConn(tc, c.cfg.MaxPacketSize), nil
}

func (c *Client) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.TLSConfig != nil {
		cfg = c.cfg.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.server.Hostname()
	}
	if c.cfg.CAFile != "" {
		pem, err := readBounded(c.cfg.CAFile, MaxCAFile)
		if err != nil {
			return nil, &FileError{What: "ca-file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &FileError{What: "ca-file", Err: fmt.Errorf("%s: no PEM certificate found", c.cfg.CAFile)}
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// readPassword returns the first line of the file, without its line end.
func readPassword(path string) ([]byte, error) {
	b, err := readBounded(path, MaxPasswordFile)
	if err != nil {
		return nil, &FileError{What: "password-file", Err: err}
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	return append([]byte{}, line...), nil
}

// MaxPasswordFile and MaxCAFile bound what is read of the password file
// and the CA file, both read again before every connection attempt: a
// setting naming a big file must not take its size in memory each time.
const (
	MaxPasswordFile = 64 << 10 // 64 KiB
	MaxCAFile       = 1 << 20  // 1 MiB, several times a system CA bundle
)

// readBounded reads the regular file path if it holds at most limit
// bytes. A FIFO or device is refused without blocking on it.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read-only
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s holds more than %d bytes", path, limit)
	}
	return b, nil
}

// bufferedConn buffers both directions of a connection.
//
// Reads: paho parses packets with small reads (the fixed header byte,
// each length byte, then the rest), which unbuffered cost three system
// calls per PUBACK. Only paho's receive goroutine reads.
//
// Writes: paho writes every packet in pieces between Lock and Unlock (its
// ControlPacket.WriteTo takes the lock of a writer that is a sync.Locker),
// so the pieces of concurrent writers never interleave. Write only appends
// to a buffer; Unlock sends it, from the goroutine that wrote the packet,
// unless another one is already in a write system call: that one sends
// what was added meanwhile before it returns; or unless the connection is
// corked (Conn.Cork) for a burst of messages. So a packet leaves in one
// write, the packets of a busy connection leave together, and nothing
// waits for a timer or hands off to another goroutine. (On loopback a
// write system call also runs the receiver's TCP processing: fewer writes
// save the most CPU.) A write error is
// kept, returned by every later Write, and closes the connection, which
// ends paho's reads. Writes outside Lock/Unlock are not supported.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	in     *packetLimiter // what paho reads: r, a packet at most maxIn bytes
	packet sync.Mutex     // held by paho for the pieces of one packet

	mu      sync.Mutex // guards the following
	buf     []byte
	spare   []byte
	writing bool // a goroutine is sending buf
	corked  bool // Unlock does not send (see cork)
	err     error
	closing bool
}

// flushTimeout bounds how long Close waits for buffered data (a
// DISCONNECT) to be written.
const flushTimeout = time.Second

func newBufferedConn(c net.Conn, maxIn int) *bufferedConn {
	r := bufio.NewReaderSize(c, 16<<10)
	return &bufferedConn{Conn: c, r: r, in: &packetLimiter{r: r, limit: maxIn}}
}

// Read reads through the buffer, refusing a packet bigger than the
// Maximum Packet Size declared (see packetLimiter).
func (c *bufferedConn) Read(p []byte) (int, error) { return c.in.Read(p) }

// Lock implements sync.Locker for paho's packet writes.
func (c *bufferedConn) Lock() { c.packet.Lock() }

// Unlock implements sync.Locker: the packet is complete, send it.
func (c *bufferedConn) Unlock() {
	c.packet.Unlock()
	c.mu.Lock()
	corked := c.corked
	c.mu.Unlock()
	if !corked {
		c.send()
	}
}

// cork holds the packets written from now on in the buffer until uncork
// (or flush): a burst of messages leaves in one write.
func (c *bufferedConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork ends cork and sends the buffer.
func (c *bufferedConn) uncork() {
	c.mu.Lock()
	c.corked = false
	c.mu.Unlock()
	c.send()
}

// flush sends the buffer now, corked or not (before a publish waits for
// the send quota: the messages it waits for must have left).
func (c *bufferedConn) flush() { c.send() }

// Write appends to the buffer; Unlock sends it.
func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, net.ErrClosed
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// send writes the buffer out, unless another goroutine is doing so.
func (c *bufferedConn) send() {
	c.mu.Lock()
	if c.writing {
		c.mu.Unlock()
		return
	}
	c.writing = true
	for len(c.buf) > 0 && c.err == nil {
		b := c.buf
		c.buf = c.spare[:0]
		c.mu.Unlock()
		_, err := c.Conn.Write(b)
		c.mu.Lock()
		c.spare = b
		if err != nil {
			c.err = err
			c.Conn.Close() // the reader sees it: the connection is lost
		}
	}
	c.writing = false
	c.mu.Unlock()
}

// Close sends what is buffered (at most flushTimeout), then closes.
func (c *bufferedConn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(flushTimeout))
	c.send()
	return c.Conn.Close()
}
