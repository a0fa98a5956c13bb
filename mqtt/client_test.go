package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"imon/mqtt"
	"imon/mqtt/mqtttest"
)

// statusLog records the Status reports of a client.
type statusLog struct {
	mu  sync.Mutex
	all []mqtt.Status
	ch  chan mqtt.Status
}

func newStatusLog() *statusLog { return &statusLog{ch: make(chan mqtt.Status, 1024)} }

func (s *statusLog) add(st mqtt.Status) {
	s.mu.Lock()
	s.all = append(s.all, st)
	s.mu.Unlock()
	select {
	case s.ch <- st:
	default:
	}
}

// wait returns the first status report satisfying ok.
func (s *statusLog) wait(t *testing.T, timeout time.Duration, ok func(mqtt.Status) bool) mqtt.Status {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case st := <-s.ch:
			if ok(st) {
				return st
			}
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("no matching status within %s; got %v", timeout, s.all)
			return mqtt.Status{}
		}
	}
}

func connected(st mqtt.Status) bool { return st.Connected }

// start runs a client until the end of the test; it returns the client and
// its status log.
func start(t *testing.T, cfg mqtt.Config) (*mqtt.Client, *statusLog) {
	t.Helper()
	sl := newStatusLog()
	cfg.OnStatus = sl.add
	if cfg.ClientID == "" {
		cfg.ClientID = "imon-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 50 * time.Millisecond }
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := mqtt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c, sl
}

func waitConn(t *testing.T, c *mqtt.Client) *mqtt.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cn, err := c.Connected(ctx)
	if err != nil {
		t.Fatalf("not connected: %v", err)
	}
	return cn
}

// TestSendInOrder pipelines QoS 1 messages through Mosquitto's Receive
// Maximum of 20 and checks that every one is acknowledged and delivered in
// order.
func TestSendInOrder(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sub := b.Subscribe(t, "t/events")
	c, _ := start(t, mqtt.Config{Server: b.URL()})
	cn := waitConn(t, c)
	if got := cn.ReceiveMaximum(); got != 20 {
		t.Errorf("ReceiveMaximum = %d, want mosquitto's 20", got)
	}
	const n = 2000
	ctx := context.Background()
	acks := make(chan *mqtt.Ack, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(acks)
		for i := 1; i <= n; i++ {
			a, err := cn.Send(ctx, mqtt.Message{Topic: "t/events", Payload: []byte(strconv.Itoa(i)),
				User: []mqtt.UserProperty{{Key: "seq", Value: strconv.Itoa(i)}}})
			if err != nil {
				errc <- err
				return
			}
			acks <- a
		}
	}()
	count := 0
	for a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatalf("ack %d: %v", count+1, err)
		}
		count++
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if count != n {
		t.Fatalf("acked %d, want %d", count, n)
	}
	for i := 1; i <= n; i++ {
		m := sub.Next(10 * time.Second)
		if string(m.Payload) != strconv.Itoa(i) || m.User["seq"] != strconv.Itoa(i) {
			t.Fatalf("message %d: payload %q seq %q", i, m.Payload, m.User["seq"])
		}
	}
}

// TestBirthWillAndCleanOffline checks BASE/status: "online" retained after
// connect, the will "offline" when the connection drops without DISCONNECT,
// "online" again after the reconnect, and "offline" after a clean stop.
func TestBirthWillAndCleanOffline(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	p := mqtttest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(b.Port))
	sub := b.Subscribe(t, "imon/node/status")
	sl := newStatusLog()
	c, err := mqtt.New(mqtt.Config{
		Server: p.URL(), ClientID: "imon-will", StatusTopic: "imon/node/status", OnStatus: sl.add,
		Backoff: func(int) time.Duration { return 50 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(cancel)

	expect := func(want string) {
		t.Helper()
		m := sub.Next(10 * time.Second)
		if m.Topic != "imon/node/status" || string(m.Payload) != want {
			t.Fatalf("got %s %q, want %q", m.Topic, m.Payload, want)
		}
	}
	expect("online")
	sl.wait(t, 5*time.Second, connected)

	p.Cut() // the broker sees the connection drop: it publishes the will
	expect("offline")
	lost := sl.wait(t, 5*time.Second, func(st mqtt.Status) bool { return !st.Connected })
	if lost.Err == nil {
		t.Errorf("lost connection reported without an error")
	}
	expect("online") // reconnected
	sl.wait(t, 5*time.Second, connected)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expect("offline")
	if got := b.Retained(t, "imon/node/status"); string(got["imon/node/status"]) != "offline" {
		t.Errorf("retained status after stop = %q, want offline", got["imon/node/status"])
	}
}

// TestPasswordRefusedThenFixed: a wrong password is reported as the
// broker's refusal, retried, and a corrected password file is picked up
// without a restart.
func TestPasswordRefusedThenFixed(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"imon": "right"}})
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, sl := start(t, mqtt.Config{Server: b.URL(), Username: "imon", PasswordFile: pw})
	var first mqtt.Status
	for i := 1; i <= 3; i++ { // keeps retrying
		st := sl.wait(t, 10*time.Second, func(mqtt.Status) bool { return true })
		if st.Connected {
			t.Fatal("connected with a wrong password")
		}
		// Mosquitto 2.0 answers a bad password with 0x87 "not
		// authorized", not 0x86.
		var re *mqtt.RefusedError
		if !errors.As(st.Err, &re) || (re.Code != 0x86 && re.Code != 0x87) {
			t.Fatalf("attempt %d: err = %v, want a refusal with reason 0x86 or 0x87", i, st.Err)
		}
		if st.Failures != i {
			t.Errorf("attempt %d: Failures = %d", i, st.Failures)
		}
		first = st
	}
	if !strings.Contains(first.Err.Error(), "broker refused the connection: not authorized") {
		t.Errorf("error text %q does not say what is wrong", first.Err)
	}
	if err := os.WriteFile(pw, []byte("right\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sl.wait(t, 10*time.Second, connected)
}

// TestMissingPasswordFile reports the file problem, not the broker's.
func TestMissingPasswordFile(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"imon": "right"}})
	_, sl := start(t, mqtt.Config{Server: b.URL(), Username: "imon", PasswordFile: "/nonexistent/pw"})
	st := sl.wait(t, 10*time.Second, func(mqtt.Status) bool { return true })
	if st.Connected || !errors.Is(st.Err, os.ErrNotExist) || !strings.Contains(st.Err.Error(), "password-file") {
		t.Fatalf("status %+v, want a password-file error", st)
	}
}

// TestOversizedOrSpecialFiles: a password-file or ca-file that is a FIFO,
// or far bigger than a password or a CA bundle, is a file error at the
// attempt: never a connection loop blocked on the FIFO, nor the whole file
// read into memory before every attempt (a 400 MB password-file held
// 400 MB of RSS).
func TestOversizedOrSpecialFiles(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"imon": "right"}})
	bt := mqtttest.Start(t, mqtttest.Options{TLS: true})
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, append([]byte("right\n"), make([]byte, mqtt.MaxPasswordFile)...), 0o600); err != nil {
		t.Fatal(err)
	}
	bigCA := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(bigCA, make([]byte, mqtt.MaxCAFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cfg  mqtt.Config
		what string
	}{
		"password FIFO": {mqtt.Config{Server: b.URL(), Username: "imon", PasswordFile: fifo}, "password-file"},
		"big password":  {mqtt.Config{Server: b.URL(), Username: "imon", PasswordFile: big}, "password-file"},
		"CA FIFO":       {mqtt.Config{Server: bt.TLSURL(), CAFile: fifo}, "ca-file"},
		"big CA":        {mqtt.Config{Server: bt.TLSURL(), CAFile: bigCA}, "ca-file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, sl := start(t, tc.cfg)
			st := sl.wait(t, 10*time.Second, func(mqtt.Status) bool { return true })
			if st.Connected || st.Err == nil || !strings.Contains(st.Err.Error(), tc.what) ||
				!(strings.Contains(st.Err.Error(), "not a regular file") || strings.Contains(st.Err.Error(), "more than")) {
				t.Fatalf("status %+v, want a %s error naming the problem", st, tc.what)
			}
			t.Log(st.Err)
		})
	}
}

// TestTLS: a CA that did not sign the broker's certificate fails the
// handshake with a clear error (and retries); the right CA connects.
func TestTLS(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
	t.Run("wrong CA", func(t *testing.T) {
		_, sl := start(t, mqtt.Config{Server: b.TLSURL(), CAFile: b.OtherCAFile})
		for i := 1; i <= 2; i++ {
			st := sl.wait(t, 10*time.Second, func(mqtt.Status) bool { return true })
			if st.Connected {
				t.Fatal("connected with the wrong CA")
			}
			if msg := st.Err.Error(); !strings.Contains(msg, "tls handshake") || !strings.Contains(msg, "certificate signed by unknown authority") {
				t.Fatalf("err = %q, want a TLS verification error", msg)
			}
		}
	})
	t.Run("no CA file", func(t *testing.T) {
		_, sl := start(t, mqtt.Config{Server: b.TLSURL(), CAFile: filepath.Join(t.TempDir(), "missing.pem")})
		st := sl.wait(t, 10*time.Second, func(mqtt.Status) bool { return true })
		if st.Connected || !strings.Contains(st.Err.Error(), "ca-file") {
			t.Fatalf("status %+v, want a ca-file error", st)
		}
	})
	t.Run("right CA", func(t *testing.T) {
		c, sl := start(t, mqtt.Config{Server: b.TLSURL(), CAFile: b.CAFile, StatusTopic: "tls/status"})
		sl.wait(t, 10*time.Second, connected)
		cn := waitConn(t, c)
		if err := cn.Publish(context.Background(), mqtt.Message{Topic: "tls/x", Payload: []byte("x"), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCommandSubscription: subscriptions are made on every connection, with
// RetainHandling 2 a retained message is not replayed, and after a broker
// restart live messages arrive again.
func TestCommandSubscription(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	other := b.Subscribe(t, "unused/#")
	other.Publish("imon/n/failover/set", []byte("stale"), true) // retained

	got := make(chan mqtt.Message, 16)
	c, sl := start(t, mqtt.Config{
		Server:        b.URL(),
		Subscriptions: []mqtt.Subscription{{Topic: "imon/n/failover/set", QoS: 1, NoLocal: true, RetainHandling: 2}},
		OnMessage:     func(m mqtt.Message) { got <- m },
	})
	sl.wait(t, 10*time.Second, connected)
	waitConn(t, c)
	other.Publish("imon/n/failover/set", []byte("standby"), false)
	if m := <-got; string(m.Payload) != "standby" {
		t.Fatalf("first message %q: the retained command was replayed", m.Payload)
	}

	b.Restart()
	sl.wait(t, 15*time.Second, func(st mqtt.Status) bool { return !st.Connected })
	sl.wait(t, 15*time.Second, connected)
	waitConn(t, c)
	other = b.Subscribe(t, "unused/#")
	other.Publish("imon/n/failover/set", []byte("auto"), false)
	select {
	case m := <-got:
		if string(m.Payload) != "auto" {
			t.Fatalf("after restart got %q", m.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no command after the broker restart: not subscribed again")
	}
}

// TestAckConnectionLost: messages in flight when the connection dies report
// ErrConnectionLost promptly instead of hanging, and Send on the dead
// connection fails.
func TestAckConnectionLost(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	p := mqtttest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(b.Port))
	c, sl := start(t, mqtt.Config{Server: p.URL(), PacketTimeout: time.Minute})
	sl.wait(t, 10*time.Second, connected)
	cn := waitConn(t, c)
	p.SetBlackhole(true)
	var acks []*mqtt.Ack
	for i := 0; i < 5; i++ {
		a, err := cn.Send(context.Background(), mqtt.Message{Topic: "t/x", Payload: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, a)
	}
	p.Cut()
	p.SetBlackhole(false)
	for i, a := range acks {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.Wait(ctx)
		cancel()
		if !errors.Is(err, mqtt.ErrConnectionLost) {
			t.Fatalf("ack %d: %v, want ErrConnectionLost", i, err)
		}
	}
	<-cn.Done()
	if _, err := cn.Send(context.Background(), mqtt.Message{Topic: "t/x"}); !errors.Is(err, mqtt.ErrConnectionLost) {
		t.Fatalf("Send on a dead connection: %v", err)
	}
	if cn2 := waitConn(t, c); cn2 == cn {
		t.Fatal("Connected returned the dead connection")
	}
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "mqtt://broker", want: "mqtt://broker:1883"},
		{in: "tcp://broker:1884", want: "tcp://broker:1884"},
		{in: "mqtts://broker", want: "mqtts://broker:8883"},
		{in: "ssl://10.0.0.1", want: "ssl://10.0.0.1:8883"},
		{in: "MQTT://[::1]", want: "mqtt://[::1]:1883"},
		{in: "unix:///run/mosquitto.sock", want: "unix:///run/mosquitto.sock"},
		{in: "", err: "empty"},
		{in: "http://broker", err: "scheme must be"},
		{in: "broker:1883", err: "scheme must be"},
		{in: "mqtt://", err: "no host"},
		{in: "mqtt://b/x", err: "unexpected path"},
		{in: "unix://", err: "socket path"},
	} {
		u, err := mqtt.ParseServer(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseServer(%q) err = %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseServer(%q): %v", tc.in, err)
		case u.String() != tc.want:
			t.Errorf("ParseServer(%q) = %s, want %s", tc.in, u, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	f := mqtt.Backoff(time.Second, time.Minute)
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 100: time.Minute} {
		for range 20 {
			got := f(n)
			lo := time.Duration(float64(want) * 0.8)
			hi := time.Duration(float64(want) * 1.2)
			if want == time.Minute {
				hi = time.Minute
			}
			if got < lo || got > hi {
				t.Fatalf("Backoff(%d) = %s, want %s..%s", n, got, lo, hi)
			}
		}
	}
}

func TestErrorsText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&mqtt.RefusedError{Code: 0x86}, "broker refused the connection: bad user name or password (reason code 0x86)"},
		{&mqtt.RefusedError{Code: 0x87, Detail: "acl"}, "broker refused the connection: not authorized (reason code 0x87): acl"},
		{&mqtt.PublishError{Topic: "a/b", Code: 0x87}, "broker refused the message to a/b: not authorized (reason code 0x87)"},
		{&mqtt.DisconnectError{Code: 0x8E}, "broker closed the connection: session taken over (reason code 0x8e)"},
		{&mqtt.DisconnectError{Code: 0x01}, "broker closed the connection: unknown reason (reason code 0x01)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  mqtt.Config
		want string
	}{
		{mqtt.Config{Server: "mqtt://b"}, "client id"},
		{mqtt.Config{Server: "ftp://b", ClientID: "x"}, "scheme"},
		{mqtt.Config{Server: "mqtt://b", ClientID: "x", KeepAlive: 100 * time.Hour}, "keep-alive"},
	} {
		if _, err := mqtt.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want error with %q", tc.cfg, err, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	wrapped := func(err error) error { return fmt.Errorf("attempt: %w", err) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("connect: dial tcp 127.0.0.1:1: connect: connection refused"), "network"},
		{wrapped(&mqtt.RefusedError{Code: 0x87}), "refused 0x87"},
		{&mqtt.DisconnectError{Code: 0x8E}, "closed 0x8e"},
		{&mqtt.TLSError{Host: "h:8883", Err: errors.New("x509: certificate signed by unknown authority")}, "tls"},
		{&mqtt.FileError{What: "password-file", Err: os.ErrNotExist}, "password-file"},
		{wrapped(&mqtt.FileError{What: "ca-file", Err: os.ErrPermission}), "ca-file"},
	} {
		if got := mqtt.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestCorkBeyondQuota: a corked burst longer than the broker's Receive
// Maximum does not deadlock: the Send that waits for the quota sends the
// held messages first. All arrive in order.
func TestCorkBeyondQuota(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sub := b.Subscribe(t, "t/cork")
	c, _ := start(t, mqtt.Config{Server: b.URL()})
	cn := waitConn(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 3*int(cn.ReceiveMaximum()) + 5
	acks := make([]*mqtt.Ack, 0, n)
	cn.Cork()
	for i := range n {
		a, err := cn.Send(ctx, mqtt.Message{Topic: "t/cork", Payload: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatalf("send %d while corked: %v", i, err)
		}
		acks = append(acks, a)
	}
	cn.Uncork()
	for i, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	for i := range n {
		if m := sub.Next(10 * time.Second); string(m.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, m.Payload)
		}
	}
}
