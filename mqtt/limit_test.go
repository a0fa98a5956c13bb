package mqtt_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"imon/mqtt"
	"imon/mqtt/mqtttest"
)

// fakeBroker is a TCP listener on loopback that answers CONNECT with
// CONNACK (props) and then writes what the test hands it.
type fakeBroker struct {
	ln       net.Listener
	connects chan *packets.Connect
	conns    chan net.Conn
}

func newFakeBroker(t *testing.T, props *packets.Properties) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBroker{ln: ln, connects: make(chan *packets.Connect, 16), conns: make(chan net.Conn, 16)}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cp, err := packets.ReadPacket(c)
			if err != nil {
				c.Close()
				continue
			}
			if p, ok := cp.Content.(*packets.Connect); ok {
				fb.connects <- p
			}
			ca := &packets.Connack{Properties: props}
			if ca.Properties == nil {
				ca.Properties = &packets.Properties{}
			}
			if _, err := (&packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.CONNACK}, Content: ca}).WriteTo(c); err != nil {
				c.Close()
				continue
			}
			fb.conns <- c
		}
	}()
	return fb
}

func (fb *fakeBroker) url() string { return "mqtt://" + fb.ln.Addr().String() }

func (fb *fakeBroker) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-fb.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not connect to the fake broker")
		return nil
	}
}

// TestHugePublishHeaderRefused: a "broker" declaring a PUBLISH of
// 268,435,455 bytes makes the client drop the connection, naming the
// sizes, without allocating the packet (before the limiter paho allocated
// the declared length at once: 256 MiB per attempt, seen failing). It
// also checks that CONNECT declares the Maximum Packet Size and a Receive
// Maximum.
func TestHugePublishHeaderRefused(t *testing.T) {
	fb := newFakeBroker(t, nil)
	c, sl := start(t, mqtt.Config{Server: fb.url()})
	_ = c
	conn := fb.next(t)
	select {
	case p := <-fb.connects:
		if p.Properties == nil || p.Properties.MaximumPacketSize == nil || *p.Properties.MaximumPacketSize != mqtt.DefaultMaxPacketSize {
			t.Fatalf("CONNECT declares no maximum packet size of %d: %+v", mqtt.DefaultMaxPacketSize, p.Properties)
		}
		// And a Receive Maximum: without one paho queues up to 65,535
		// received messages (a 512 KiB channel in the agent's heap).
		if p.Properties.ReceiveMaximum == nil || *p.Properties.ReceiveMaximum != 32 {
			t.Errorf("CONNECT's Receive Maximum %v, want 32", p.Properties.ReceiveMaximum)
		}
	default:
		t.Fatal("no CONNECT seen")
	}
	sl.wait(t, 10*time.Second, connected)

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// PUBLISH QoS 0, remaining length 268,435,455 (0xff 0xff 0xff 0x7f),
	// then the start of a body that never ends.
	if _, err := conn.Write([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	st := sl.wait(t, 10*time.Second, func(st mqtt.Status) bool { return !st.Connected && st.Err != nil })
	var runtimeAfter runtime.MemStats
	runtime.ReadMemStats(&runtimeAfter)
	var tl *mqtt.PacketTooLargeError
	if !errors.As(st.Err, &tl) {
		t.Fatalf("connection lost with %v, want a *PacketTooLargeError", st.Err)
	}
	if tl.Size != 1+4+268435455 || tl.Limit != mqtt.DefaultMaxPacketSize {
		t.Errorf("error %+v: want size %d, limit %d", tl, 1+4+268435455, mqtt.DefaultMaxPacketSize)
	}
	t.Logf("reason: %v", st.Err)
	if grew := runtimeAfter.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("the client allocated %d MiB for the packet; want ≤ 64 MiB", grew>>20)
	}
	// The connection is closed: the fake broker's read ends.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Errorf("the client did not close the connection: %v", err)
	}
}

// TestMalformedLengthRefused: a remaining length of more than four bytes
// (paho reads length bytes for as long as they come) ends the connection.
func TestMalformedLengthRefused(t *testing.T) {
	fb := newFakeBroker(t, nil)
	_, sl := start(t, mqtt.Config{Server: fb.url()})
	conn := fb.next(t)
	sl.wait(t, 10*time.Second, connected)
	if _, err := conn.Write(append([]byte{0x30}, bytes.Repeat([]byte{0x80}, 64)...)); err != nil {
		t.Fatal(err)
	}
	st := sl.wait(t, 10*time.Second, func(st mqtt.Status) bool { return !st.Connected && st.Err != nil })
	if st.Err == nil || !bytes.Contains([]byte(st.Err.Error()), []byte("longer than 4 bytes")) {
		t.Fatalf("connection lost with %v, want a malformed-length error", st.Err)
	}
}

// TestSmallPublishPassesLimiter: packets under the limit still arrive,
// whole and in order, after one that filled the buffer.
func TestSmallPublishPassesLimiter(t *testing.T) {
	fb := newFakeBroker(t, nil)
	got := make(chan mqtt.Message, 16)
	_, sl := start(t, mqtt.Config{Server: fb.url(), MaxPacketSize: 1024, OnMessage: func(m mqtt.Message) { got <- m }})
	conn := fb.next(t)
	sl.wait(t, 10*time.Second, connected)
	var buf bytes.Buffer
	for _, payload := range [][]byte{bytes.Repeat([]byte("a"), 1000), []byte("b"), bytes.Repeat([]byte("c"), 200)} {
		p := &packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.PUBLISH},
			Content: &packets.Publish{Topic: "t", Payload: payload, Properties: &packets.Properties{}}}
		if _, err := p.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b", "c"} {
		select {
		case m := <-got:
			if m.Topic != "t" || string(m.Payload[:1]) != want {
				t.Fatalf("got %q %q…, want payload %s…", m.Topic, m.Payload[:1], want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %s… not received", want)
		}
	}
}

// TestSendRefusesOverBrokerMax: a message that does not fit in the
// broker's Maximum Packet Size is refused by Send, not written (a broker
// disconnects a client that sends one), and the connection stays up.
func TestSendRefusesOverBrokerMax(t *testing.T) {
	limit := uint32(300)
	fb := newFakeBroker(t, &packets.Properties{MaximumPacketSize: &limit})
	c, sl := start(t, mqtt.Config{Server: fb.url()})
	fb.next(t)
	sl.wait(t, 10*time.Second, connected)
	cn := waitConn(t, c)
	if cn.MaxPacketSize() != 300 {
		t.Fatalf("MaxPacketSize %d, want 300", cn.MaxPacketSize())
	}
	m := mqtt.Message{Topic: "imon/x/event", Payload: bytes.Repeat([]byte("x"), 300)}
	_, err := cn.Send(context.Background(), m)
	var tl *mqtt.TooLargeError
	if !errors.As(err, &tl) || tl.Size != m.PacketSize() || tl.Limit != 300 {
		t.Fatalf("Send: %v, want a *TooLargeError of %d bytes", err, m.PacketSize())
	}
	select {
	case <-cn.Done():
		t.Fatal("the connection ended")
	default:
	}
}

// TestPacketSize: Message.PacketSize is the size of the packet on the wire.
func TestPacketSize(t *testing.T) {
	for _, m := range []mqtt.Message{
		{Topic: "a", Payload: nil},
		{Topic: "imon/host/event", Payload: bytes.Repeat([]byte("x"), 100), User: []mqtt.UserProperty{{Key: "seq", Value: "12345"}}},
		{Topic: "t", Payload: bytes.Repeat([]byte("y"), 20000), User: []mqtt.UserProperty{{Key: "seq", Value: "1"}, {Key: "k", Value: "v"}}},
		{Topic: "t", Payload: bytes.Repeat([]byte("z"), 3_000_000)},
	} {
		p := &packets.Publish{Topic: m.Topic, Payload: m.Payload, QoS: 1, PacketID: 1, Properties: &packets.Properties{}}
		for _, u := range m.User {
			p.Properties.User = append(p.Properties.User, packets.User{Key: u.Key, Value: u.Value})
		}
		var buf bytes.Buffer
		if _, err := (&packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.PUBLISH, Flags: 2}, Content: p}).WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		if got := m.PacketSize(); got != buf.Len() {
			t.Errorf("PacketSize of %d-byte payload = %d, packet is %d bytes", len(m.Payload), got, buf.Len())
		}
	}
}

// TestTakeoverReported: two clients with the same id take the session
// from each other; Mosquitto 2 closes the loser without a DISCONNECT, and
// after a few quick drops in a row the client says "another client uses
// client id X" instead of "connection closed" (seen failing: the reason
// was only "connection closed" / EOF).
func TestTakeoverReported(t *testing.T) {
	mqtttest.Require(t)
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := mqtt.Config{Server: b.URL(), ClientID: "imon-twin"}
	_, sl1 := start(t, cfg)
	_, sl2 := start(t, cfg)
	takeover := func(st mqtt.Status) bool {
		var te *mqtt.TakeoverError
		return errors.As(st.Err, &te) && te.ClientID == "imon-twin"
	}
	found := make(chan mqtt.Status, 2)
	for _, sl := range []*statusLog{sl1, sl2} {
		go func() {
			deadline := time.After(60 * time.Second)
			for {
				select {
				case st := <-sl.ch:
					if takeover(st) {
						found <- st
						return
					}
				case <-deadline:
					found <- mqtt.Status{}
					return
				}
			}
		}()
	}
	st := <-found
	if !takeover(st) {
		t.Fatal("no takeover reported within 60 s by either client")
	}
	if !strings.Contains(st.Err.Error(), `another client uses client id "imon-twin"`) {
		t.Errorf("reason %q", st.Err)
	}
	if got := mqtt.Classify(st.Err); got != "takeover" {
		t.Errorf("Classify = %q", got)
	}
	t.Logf("reason: %v", st.Err)
}
