package mqtt

import (
	"context"
	"io"
	"sync"

	"github.com/eclipse/paho.golang/packets"
	paholog "github.com/eclipse/paho.golang/paho/log"
	"github.com/eclipse/paho.golang/paho/session"
)

// connSession is the MQTT session state of one connection, in place of
// paho's state.State. A session lives exactly as long as its connection
// (Clean Start, expiry 0), so it keeps no packet for retransmission; what it
// does keep is the packet identifiers in use with the channel that gets each
// one's answer, and the send quota (the broker's Receive Maximum).
//
// It exists for speed and for Conn.Send: paho's state.State copies every
// message into its store and starts a goroutine for every publish, which at
// tens of thousands of messages a second is most of the client's work; and
// a publish whose context carries an ackKey channel gets its PUBACK there,
// which is how Send reports acknowledgements of asynchronous publishes.
// When the connection is lost, every pending request gets a zero
// ControlPacket (paho's "shutting down").
type connSession struct {
	mu      sync.Mutex // guards the following
	conn    io.Writer  // nil before CONNACK and after the connection was lost
	lost    bool
	down    chan struct{} // closed when the connection is lost
	quota   chan struct{} // one element per PUBLISH in flight; cap = Receive Maximum
	pending map[uint16]request
	lastID  uint16
	qos2In  map[uint16]bool // inbound QoS 2 publishes answered with PUBREC
}

// request is a packet waiting for its answer.
type request struct {
	typ  byte
	resp chan<- packets.ControlPacket
}

var _ session.SessionManager = (*connSession)(nil)

func newConnSession() *connSession {
	return &connSession{down: make(chan struct{}), pending: map[uint16]request{}, qos2In: map[uint16]bool{}}
}

// ConAckReceived implements session.SessionManager.
func (s *connSession) ConAckReceived(conn io.Writer, _ *packets.Connect, ca *packets.Connack) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	recvMax := int64(65535) // MQTT's default when the broker sends none
	if ca.Properties != nil && ca.Properties.ReceiveMaximum != nil {
		recvMax = int64(*ca.Properties.ReceiveMaximum)
	}
	s.conn = conn
	s.quota = make(chan struct{}, recvMax)
	return nil
}

// ConnectionLost implements session.SessionManager.
func (s *connSession) ConnectionLost(*packets.Disconnect) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		return nil
	}
	s.lost, s.conn = true, nil
	close(s.down)
	for id, r := range s.pending {
		deliver(r.resp, packets.ControlPacket{})
		delete(s.pending, id)
	}
	return nil
}

// AddToSession implements session.SessionManager: it takes a slot of the
// send quota for a PUBLISH (waiting while the broker's Receive Maximum is
// reached) and a packet identifier.
func (s *connSession) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	if ch, ok := ctx.Value(ackKey{}).(chan packets.ControlPacket); ok {
		resp = ch
	}
	s.mu.Lock()
	quota, down, conn := s.quota, s.down, s.conn
	up := s.conn != nil
	s.mu.Unlock()
	if !up {
		return session.ErrNoConnection
	}
	publish := p.Type() == packets.PUBLISH
	if publish && !tryAcquire(quota) {
		// The quota is used up: wait for a PUBACK, giving up when the
		// connection is lost or ctx ends. What a cork holds back must
		// leave first, or the PUBACK would never come.
		if f, ok := conn.(interface{ flush() }); ok {
			f.flush()
		}
		actx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-down:
				cancel()
			case <-actx.Done():
			}
		}()
		var err error
		select {
		case quota <- struct{}{}:
		case <-actx.Done():
			err = actx.Err()
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return session.ErrNoConnection
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		if publish {
			release(quota)
		}
		return session.ErrNoConnection
	}
	id := s.lastID
	for range 65535 {
		id++
		if id == 0 {
			id = 1
		}
		if _, used := s.pending[id]; !used {
			s.lastID = id
			s.pending[id] = request{typ: p.Type(), resp: resp}
			p.SetIdentifier(id)
			return nil
		}
	}
	if publish {
		release(quota)
	}
	return session.ErrPacketIdentifiersExhausted
}

// end hands the answer to a request and frees its identifier (and quota).
func (s *connSession) end(id uint16, recv *packets.ControlPacket) {
	s.mu.Lock()
	r, ok := s.pending[id]
	if ok {
		delete(s.pending, id)
	}
	quota := s.quota
	s.mu.Unlock()
	if !ok {
		return // an answer to a request of no concern (or after the loss)
	}
	if r.typ == packets.PUBLISH {
		release(quota)
	}
	deliver(r.resp, *recv)
}

// tryAcquire takes a slot of the send quota if one is free.
func tryAcquire(quota chan struct{}) bool {
	select {
	case quota <- struct{}{}:
		return true
	default:
		return false
	}
}

// release frees a slot of the send quota.
func release(quota chan struct{}) {
	select {
	case <-quota:
	default:
	}
}

// deliver sends the answer without blocking: every resp channel is
// buffered and receives at most one answer.
func deliver(ch chan<- packets.ControlPacket, cp packets.ControlPacket) {
	select {
	case ch <- cp:
	default:
	}
}

// PacketReceived implements session.SessionManager.
func (s *connSession) PacketReceived(recv *packets.ControlPacket, pubChan chan<- *packets.Publish) error {
	switch p := recv.Content.(type) {
	case *packets.Puback:
		s.end(p.PacketID, recv)
	case *packets.Suback:
		s.end(p.PacketID, recv)
	case *packets.Unsuback:
		s.end(p.PacketID, recv)
	case *packets.Pubcomp:
		s.end(p.PacketID, recv)
	case *packets.Pubrec:
		// Only for QoS 2 publishes, which this client never sends.
		return s.write(&packets.Pubrel{PacketID: p.PacketID, ReasonCode: 0x92})
	case *packets.Publish:
		if p.QoS == 2 {
			s.mu.Lock()
			seen := s.qos2In[p.PacketID]
			s.mu.Unlock()
			if seen && p.Duplicate {
				return s.Ack(p) // delivered already: answer again
			}
		}
		pubChan <- p
	case *packets.Pubrel:
		s.mu.Lock()
		delete(s.qos2In, p.PacketID)
		s.mu.Unlock()
		return s.write(&packets.Pubcomp{PacketID: p.PacketID})
	}
	return nil
}

// Ack implements session.SessionManager: it answers a received QoS 1
// (PUBACK) or QoS 2 (PUBREC) publish once the handlers are done.
func (s *connSession) Ack(pb *packets.Publish) error {
	switch pb.QoS {
	case 1:
		return s.write(&packets.Puback{PacketID: pb.PacketID, Properties: &packets.Properties{}})
	case 2:
		s.mu.Lock()
		s.qos2In[pb.PacketID] = true
		s.mu.Unlock()
		return s.write(&packets.Pubrec{PacketID: pb.PacketID, Properties: &packets.Properties{}})
	}
	return nil
}

func (s *connSession) write(p io.WriterTo) error {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return nil // the broker sends it again on the next connection
	}
	_, err := p.WriteTo(conn)
	return err
}

// Close implements session.SessionManager.
func (s *connSession) Close() error { return s.ConnectionLost(nil) }

// SetErrorLogger implements session.SessionManager (nothing is logged).
func (s *connSession) SetErrorLogger(paholog.Logger) {}

// SetDebugLogger implements session.SessionManager (nothing is logged).
func (s *connSession) SetDebugLogger(paholog.Logger) {}
