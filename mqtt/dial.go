package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
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
		packetTimeout: c.cfg.PacketTimeout,
		lost:          make(chan struct{}),
		done:          make(chan struct{}),
		recvMax:       65535, // MQTT's default when the broker sends none
	}
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
	cp := &paho.Connect{
		ClientID:   c.cfg.ClientID,
		KeepAlive:  uint16(c.cfg.KeepAlive / time.Second),
		CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry},
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
	return cn, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	u := c.server
	if u.Scheme == "unix" {
		nc, err := d.DialContext(ctx, "unix", u.Path)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		return newBufferedConn(nc), nil
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
		return newBufferedConn(nc), nil
	}
	tc := tls.Client(nc, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, &TLSError{Host: u.Host, Err: err}
	}
	// The buffered connection's single flusher makes the tls.Conn safe for
	// paho's concurrent writers.
	return newBufferedConn(tc), nil
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
		pem, err := os.ReadFile(c.cfg.CAFile)
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
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{What: "password-file", Err: err}
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	return append([]byte{}, line...), nil
}

// bufferedConn buffers both directions of a connection.
//
// Reads: paho parses packets with small reads (the fixed header byte,
// each length byte, then the rest), which unbuffered cost three system
// calls per PUBACK. Only paho's receive goroutine reads.
//
// Writes: Write appends to a buffer that one flusher goroutine writes out
// as soon as it can, so the packets written while a write is in progress
// leave together: a window of QoS 1 messages costs a few system calls, not
// one each, and nothing waits for a timer. Write errors are reported by
// the next Write (and close the connection, which ends paho's reads).
// The Lock/Unlock pair is what paho's ControlPacket.WriteTo takes around
// the pieces of one packet, so packets of concurrent writers never
// interleave; the flusher being the only writer of the underlying
// connection also makes a tls.Conn safe.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	packet sync.Mutex // held by paho for the pieces of one packet

	mu      sync.Mutex // guards the following
	buf     []byte
	err     error
	closing bool

	kick    chan struct{} // cap 1: data or closing
	flushed chan struct{} // closed when the flusher has exited
}

// flushTimeout bounds how long Close waits for buffered data (a
// DISCONNECT) to be written.
const flushTimeout = time.Second

func newBufferedConn(c net.Conn) net.Conn {
	bc := &bufferedConn{
		Conn:    c,
		r:       bufio.NewReaderSize(c, 16<<10),
		kick:    make(chan struct{}, 1),
		flushed: make(chan struct{}),
	}
	go bc.flush()
	return bc
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Lock implements sync.Locker for paho's packet writes.
func (c *bufferedConn) Lock() { c.packet.Lock() }

// Unlock implements sync.Locker.
func (c *bufferedConn) Unlock() { c.packet.Unlock() }

func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	case c.closing:
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

// flush is the connection's only writer. It exits on a write error or
// once closing with nothing left to write.
func (c *bufferedConn) flush() {
	defer close(c.flushed)
	var spare []byte
	for {
		c.mu.Lock()
		for len(c.buf) == 0 && !c.closing {
			c.mu.Unlock()
			<-c.kick
			c.mu.Lock()
		}
		if len(c.buf) == 0 {
			c.mu.Unlock()
			return
		}
		b := c.buf
		c.buf = spare[:0]
		c.mu.Unlock()
		if _, err := c.Conn.Write(b); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			c.Conn.Close() // the reader sees it: the connection is lost
			return
		}
		spare = b
	}
}

// Close writes what is buffered (at most flushTimeout), then closes.
func (c *bufferedConn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(flushTimeout))
	<-c.flushed
	return c.Conn.Close()
}
