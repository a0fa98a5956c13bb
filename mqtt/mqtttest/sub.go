package mqtttest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// probeUser is the account Subscribe uses on a broker with Options.Users.
const probeUser, probePassword = "mqtttest-probe", "probe-password"

// Msg is a message a Sub received.
type Msg struct {
	Topic   string
	Payload []byte
	Retain  bool
	// User holds the MQTT v5 user properties (last value per key).
	User map[string]string
}

// Sub is a test subscriber written directly on paho (independent of imon's
// mqtt package).
type Sub struct {
	// C receives every message, in order. It is buffered (1<<18) and the
	// client blocks when it is full.
	C   chan Msg
	cli *paho.Client
	t   testing.TB
	seq atomic.Int64
	id  string
}

var subCount atomic.Int64

// Subscribe connects a subscriber to the plain listener and subscribes to
// filters with QoS 1; it is disconnected at the end of the test. Messages
// already retained arrive first.
func (b *Broker) Subscribe(t testing.TB, filters ...string) *Sub {
	t.Helper()
	return b.SubscribeQoS(t, 1, filters...)
}

// SubscribeQoS is Subscribe with the given QoS (0 spares the subscriber
// its PUBACKs, e.g. in benchmarks of the publisher).
func (b *Broker) SubscribeQoS(t testing.TB, qos byte, filters ...string) *Sub {
	t.Helper()
	s := &Sub{C: make(chan Msg, 1<<18), t: t, id: fmt.Sprintf("mqtttest-sub-%d-%d", time.Now().UnixNano(), subCount.Add(1))}
	tc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(b.Port))
	if err != nil {
		t.Fatalf("subscriber dial: %v", err)
	}
	// Buffered reads: paho reads each packet in small pieces.
	nc := &bufConn{Conn: tc, r: bufio.NewReaderSize(tc, 64<<10)}
	s.cli = paho.NewClient(paho.ClientConfig{
		ClientID: s.id,
		Conn:     nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			m := Msg{Topic: pr.Packet.Topic, Payload: pr.Packet.Payload, Retain: pr.Packet.Retain}
			if pr.Packet.Properties != nil && len(pr.Packet.Properties.User) > 0 {
				m.User = map[string]string{}
				for _, u := range pr.Packet.Properties.User {
					m.User[u.Key] = u.Value
				}
			}
			s.C <- m
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cp := &paho.Connect{ClientID: s.id, KeepAlive: 30, CleanStart: true}
	if len(b.opt.Users) > 0 {
		cp.Username, cp.UsernameFlag = probeUser, true
		cp.Password, cp.PasswordFlag = []byte(probePassword), true
	}
	if _, err := s.cli.Connect(ctx, cp); err != nil {
		t.Fatalf("subscriber connect: %v", err)
	}
	t.Cleanup(func() { _ = s.cli.Disconnect(&paho.Disconnect{}) })
	sub := &paho.Subscribe{}
	for _, f := range filters {
		sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: qos})
	}
	// The sentinel topic of Sync.
	sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: "mqtttest/sync/" + s.id, QoS: 1})
	if _, err := s.cli.Subscribe(ctx, sub); err != nil {
		t.Fatalf("subscribe %v: %v", filters, err)
	}
	return s
}

// bufConn reads through a buffer. Its Lock/Unlock, which paho's
// ControlPacket.WriteTo takes around the pieces of a packet, keep packets
// of concurrent writers (a PUBACK and a PUBLISH) from interleaving, which
// a *net.TCPConn's writev did by itself.
type bufConn struct {
	net.Conn
	r *bufio.Reader
	sync.Mutex
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Publish publishes a message (QoS 1) from the subscriber's connection, as
// Home Assistant or a user would.
func (s *Sub) Publish(topic string, payload []byte, retain bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.cli.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 1, Retain: retain}); err != nil {
		s.t.Fatalf("publish %s: %v", topic, err)
	}
}

// Sync returns every message received before a marker that the subscriber
// sends itself: since the broker delivers to one client in order, this
// includes all retained messages of the subscription and everything
// published before the call.
func (s *Sub) Sync(timeout time.Duration) []Msg {
	s.t.Helper()
	marker := strconv.FormatInt(s.seq.Add(1), 10)
	s.Publish("mqtttest/sync/"+s.id, []byte(marker), false)
	var got []Msg
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case m := <-s.C:
			if m.Topic == "mqtttest/sync/"+s.id {
				if string(m.Payload) == marker {
					return got
				}
				continue
			}
			got = append(got, m)
		case <-deadline.C:
			s.t.Fatalf("sync marker not received within %s", timeout)
			return nil
		}
	}
}

// Next returns the next message, failing the test after timeout.
func (s *Sub) Next(timeout time.Duration) Msg {
	s.t.Helper()
	select {
	case m := <-s.C:
		return m
	case <-time.After(timeout):
		s.t.Fatalf("no message within %s", timeout)
		return Msg{}
	}
}

// Retained returns the messages retained under filter, by topic (empty
// payloads are not retained by MQTT, so absent topics were cleared).
func (b *Broker) Retained(t testing.TB, filter string) map[string][]byte {
	t.Helper()
	s := b.Subscribe(t, filter)
	out := map[string][]byte{}
	for _, m := range s.Sync(10 * time.Second) {
		if m.Retain {
			out[m.Topic] = m.Payload
		}
	}
	_ = s.cli.Disconnect(&paho.Disconnect{})
	return out
}

// Count runs mosquitto_sub (a separate process, as a real subscriber
// would be) subscribed to topic at QoS 1 (at QoS 0 Mosquitto may drop
// messages for a subscriber that falls behind) until it has received n
// messages; the returned channel gets its exit status. Count returns once
// the broker has logged the subscription.
func (b *Broker) Count(t testing.TB, topic string, n int) <-chan error {
	t.Helper()
	id := fmt.Sprintf("mqtttest-count-%d", subCount.Add(1))
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.Port), "-i", id, "-q", "1", "-t", topic, "-C", strconv.Itoa(n)}
	if len(b.opt.Users) > 0 {
		args = append(args, "-u", probeUser, "-P", probePassword)
	}
	cmd := exec.Command("mosquitto_sub", args...) // output to /dev/null: no copying in this process
	if err := cmd.Start(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.Log(), id+" 1 "+topic) {
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub did not subscribe:\n%s", b.Log())
		}
		time.Sleep(10 * time.Millisecond) // observing the broker's log
	}
	return done
}
