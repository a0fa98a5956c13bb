package mqtt

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// FuzzBrokerPackets feeds arbitrary bytes, as a broker would send them,
// through the client's receive path: the packet limiter, paho's packet
// parser and the session's handling of each packet. No input may panic,
// hang (the limiter ends an endless remaining length) or yield a packet
// bigger than the declared maximum.
func FuzzBrokerPackets(f *testing.F) {
	var seed bytes.Buffer
	for _, p := range []*packets.ControlPacket{
		{FixedHeader: packets.FixedHeader{Type: packets.PUBLISH, Flags: 2}, Content: &packets.Publish{Topic: "imon/h/failover/set", Payload: []byte("primary"), QoS: 1, PacketID: 7, Properties: &packets.Properties{}}},
		{FixedHeader: packets.FixedHeader{Type: packets.PUBACK}, Content: &packets.Puback{PacketID: 1, Properties: &packets.Properties{}}},
		{FixedHeader: packets.FixedHeader{Type: packets.SUBACK}, Content: &packets.Suback{PacketID: 2, Reasons: []byte{1}, Properties: &packets.Properties{}}},
		{FixedHeader: packets.FixedHeader{Type: packets.DISCONNECT}, Content: &packets.Disconnect{ReasonCode: 0x8e, Properties: &packets.Properties{}}},
	} {
		_, _ = p.WriteTo(&seed)
	}
	f.Add(seed.Bytes())
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 'x'})
	f.Add(append([]byte{0x30}, bytes.Repeat([]byte{0x80}, 16)...))
	f.Add([]byte{0x62, 0x02, 0x00, 0x01, 0x50, 0x02, 0x00, 0x09})
	const limit = 512
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &packetLimiter{r: bufio.NewReader(bytes.NewReader(data)), limit: limit}
		s := newConnSession()
		s.conn = io.Discard
		s.quota = make(chan struct{}, 20)
		pub := make(chan *packets.Publish, 1)
		for range len(data) + 1 {
			cp, err := packets.ReadPacket(r)
			if err != nil {
				return
			}
			if p, ok := cp.Content.(*packets.Publish); ok && len(p.Payload) > limit {
				t.Fatalf("a %d-byte payload passed the %d-byte limit", len(p.Payload), limit)
			}
			_ = s.PacketReceived(cp, pub)
			select {
			case <-pub:
			default:
			}
		}
	})
}
