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
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"
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
		Session:           ackSession{State: state.NewInMemory()},
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
		return nc, nil
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
		return nc, nil
	}
	tc := tls.Client(nc, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", u.Host, err)
	}
	// tls.Conn writes are not safe for paho's concurrent writers.
	return packets.NewThreadSafeConn(tc), nil
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
			return nil, fmt.Errorf("reading mqtt ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt ca-file %s: no PEM certificate found", c.cfg.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// readPassword returns the first line of the file, without its line end.
func readPassword(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading mqtt password-file: %w", err)
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	return append([]byte{}, line...), nil
}
