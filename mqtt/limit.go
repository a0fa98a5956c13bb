package mqtt

import (
	"bufio"
	"fmt"
)

// DefaultMaxPacketSize is the Maximum Packet Size the client declares in
// CONNECT when Config.MaxPacketSize is 0: 8 KiB, far more than any command
// or Home Assistant birth message, and small enough that a hostile broker
// (or anything answering on its port) cannot make the client allocate more.
// The broker drops bigger messages instead of sending them (MQTT 5
// §3.1.2.11.4); a packet that comes anyway ends the connection with a
// *PacketTooLargeError before its body is read or allocated.
const DefaultMaxPacketSize = 8 << 10

// PacketTooLargeError ends a connection whose peer sent a packet bigger
// than the Maximum Packet Size the client declared.
type PacketTooLargeError struct {
	Type  byte // MQTT control packet type (3 = PUBLISH)
	Size  int  // the whole packet's size as its fixed header declares it
	Limit int
}

// Error names the packet, its declared size and the limit.
func (e *PacketTooLargeError) Error() string {
	return fmt.Sprintf("broker sent a %s packet of %d bytes, more than the %d-byte maximum packet size this client declared: connection dropped before reading it",
		packetName(e.Type), e.Size, e.Limit)
}

func packetName(t byte) string {
	names := [...]string{"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type-%d", t)
}

// packetLimiter passes a stream of MQTT control packets through, parsing
// each fixed header as it goes by, and fails — instead of handing over
// the last byte of the Remaining Length — when a packet declares more than
// limit bytes in all. paho's packets.ReadPacket reads the fixed header a
// byte at a time and then allocates the declared remaining length at once,
// so the error comes before that allocation.
type packetLimiter struct {
	r     *bufio.Reader
	limit int

	body   int  // bytes left of the current packet's body
	inLen  bool // reading the Remaining Length
	typ    byte // type of the current packet
	value  int  // Remaining Length so far
	shift  uint
	nLen   int   // length bytes read
	err    error // sticky
	onFail func(error)
}

// fail makes err the reader's answer from now on and reports it.
func (l *packetLimiter) fail(err error) error {
	l.err = err
	if l.onFail != nil {
		l.onFail(err)
	}
	return err
}

// Read implements io.Reader.
func (l *packetLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if l.body > 0 {
		if len(p) > l.body {
			p = p[:l.body]
		}
		n, err := l.r.Read(p)
		l.body -= n
		return n, err
	}
	// The fixed header, one byte at a time.
	b, err := l.r.ReadByte()
	if err != nil {
		return 0, err
	}
	if !l.inLen {
		l.inLen, l.typ, l.value, l.shift, l.nLen = true, b>>4, 0, 0, 0
		p[0] = b
		return 1, nil
	}
	l.nLen++
	l.value |= int(b&0x7f) << l.shift
	l.shift += 7
	switch {
	case b&0x80 != 0 && l.nLen == 4:
		// A fifth length byte is malformed (MQTT 5 §1.5.5); paho would
		// keep reading length bytes for ever.
		return 0, l.fail(fmt.Errorf("broker sent a malformed %s packet: remaining length longer than 4 bytes", packetName(l.typ)))
	case b&0x80 != 0:
		// More length bytes to come.
	case l.limit > 0 && 1+l.nLen+l.value > l.limit:
		return 0, l.fail(&PacketTooLargeError{Type: l.typ, Size: 1 + l.nLen + l.value, Limit: l.limit})
	default:
		l.inLen = false
		l.body = l.value
	}
	p[0] = b
	return 1, nil
}

// maxPacket is the biggest packet MQTT can frame: a 4-byte Remaining
// Length of 268,435,455 plus the fixed header.
const maxPacket = 1 + 4 + 268435455

// TooLargeError is Conn.Send's refusal of a message that does not fit in
// the broker's Maximum Packet Size.
type TooLargeError struct {
	Topic string
	Size  int // the PUBLISH packet's size
	Limit int // the broker's Maximum Packet Size
}

// Error names the topic and both sizes.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("message to %s is a %d-byte packet, more than the broker's maximum packet size of %d bytes", e.Topic, e.Size, e.Limit)
}

// PacketSize is the size of the QoS 1 PUBLISH packet that carries m, as
// the broker counts it against its Maximum Packet Size.
func (m Message) PacketSize() int {
	props := 0
	for _, u := range m.User {
		props += 1 + 2 + len(u.Key) + 2 + len(u.Value)
	}
	rest := 2 + len(m.Topic) + 2 /* packet id */ + vbiLen(props) + props + len(m.Payload)
	return 1 + vbiLen(rest) + rest
}

// vbiLen is the length of n as an MQTT Variable Byte Integer.
func vbiLen(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16384:
		return 2
	case n < 2097152:
		return 3
	}
	return 4
}
