package mqtt_test

// The transport benchmarks answer issue "MQTT: decide from a measurement":
// is imon's own session on paho.Client (Conn.Send: in-order pipelined QoS 1
// with a per-message acknowledgement) worth its code against autopaho, the
// library's connection manager? Each variant publishes the same backlog to
// the same local Mosquitto in one run, with mosquitto_sub (a separate
// process, QoS 1) receiving all of it, and the same one-message latency.
//
//	go test -run '^$' -bench Transport -benchtime 3x ./mqtt/
//
// Variants:
//   - conn-send: Conn.Send, up to Receive Maximum in flight, each Ack
//     awaited in order (what the outbox does: the journal cursor advances
//     over acknowledged events only).
//   - autopaho-publish: ConnectionManager.Publish from one goroutine, the
//     only way autopaho reports a per-message acknowledgement in order;
//     one message in flight at a time.
//   - autopaho-publish-20: 20 goroutines calling Publish: Receive Maximum
//     in flight, but the order on the wire (and at subscribers) is lost.
//   - autopaho-queue: PublishViaQueue (memory queue): in order and
//     pipelined, but with no acknowledgement at all: a publisher cannot
//     know which events reached the broker, so a journal cursor could not
//     be advanced on it.

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/autopaho/queue/memory"
	"github.com/eclipse/paho.golang/paho"

	"imon/mqtt"
	"imon/mqtt/mqtttest"
)

const transportBacklog = 20_000

func payload(i int) []byte {
	// About the size of a ping-result event.
	p := make([]byte, 0, 256)
	p = append(p, `{"seq":`...)
	p = strconv.AppendInt(p, int64(i), 10)
	for len(p) < 240 {
		p = append(p, ' ')
	}
	return append(p, '}')
}

// publisher publishes n messages on topic and returns once the transport
// considers them delivered (acknowledged, or handed over for the queue).
type publisher func(ctx context.Context, topic string, n int) error

func BenchmarkTransport(b *testing.B) {
	for _, v := range []struct {
		name string
		dial func(b *testing.B, url string) publisher
	}{
		{"conn-send", connSend},
		{"autopaho-publish", func(b *testing.B, u string) publisher { return autopahoPublish(b, u, 1) }},
		{"autopaho-publish-20", func(b *testing.B, u string) publisher { return autopahoPublish(b, u, 20) }},
		{"autopaho-queue", autopahoQueue},
	} {
		b.Run(v.name+"/drain", func(b *testing.B) {
			br := mqtttest.Start(b, mqtttest.Options{})
			pub := v.dial(b, br.URL())
			ctx := context.Background()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				topic := "bench/" + strconv.Itoa(i)
				received := br.Count(b, topic, transportBacklog)
				start := time.Now()
				if err := pub(ctx, topic, transportBacklog); err != nil {
					b.Fatal(err)
				}
				if err := <-received; err != nil {
					b.Fatalf("mosquitto_sub: %v", err)
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(transportBacklog*b.N)/total.Seconds(), "msg/s")
			b.ReportMetric(0, "ns/op")
		})
		b.Run(v.name+"/latency", func(b *testing.B) {
			br := mqtttest.Start(b, mqtttest.Options{})
			sub := br.Subscribe(b, "lat")
			pub := v.dial(b, br.URL())
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			for range max(b.N, 200) {
				start := time.Now()
				if err := pub(ctx, "lat", 1); err != nil {
					b.Fatal(err)
				}
				sub.Next(10 * time.Second)
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/float64(time.Millisecond), "ms-median")
			b.ReportMetric(float64(lat[len(lat)*99/100])/float64(time.Millisecond), "ms-p99")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func connSend(b *testing.B, url string) publisher {
	c, err := mqtt.New(mqtt.Config{Server: url, ClientID: "bench-conn-send-" + strconv.Itoa(int(time.Now().UnixNano()%1e6))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	cn, err := c.Connected(wctx)
	if err != nil {
		b.Fatal(err)
	}
	return func(ctx context.Context, topic string, n int) error {
		acks := make(chan *mqtt.Ack, 256)
		errc := make(chan error, 1)
		go func() {
			defer close(acks)
			for i := 1; i <= n; i++ {
				a, err := cn.Send(ctx, mqtt.Message{Topic: topic, Payload: payload(i)})
				if err != nil {
					errc <- err
					return
				}
				acks <- a
			}
		}()
		for a := range acks {
			if err := a.Wait(ctx); err != nil {
				return err
			}
		}
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	}
}

func autopahoManager(b *testing.B, server string, q bool) *autopaho.ConnectionManager {
	u, err := url.Parse(server)
	if err != nil {
		b.Fatal(err)
	}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ClientConfig:                  paho.ClientConfig{ClientID: "bench-autopaho-" + strconv.Itoa(int(time.Now().UnixNano()%1e6))},
	}
	if q {
		cfg.Queue = memory.New()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); <-cm.Done() })
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if err := cm.AwaitConnection(wctx); err != nil {
		b.Fatal(err)
	}
	return cm
}

func autopahoPublish(b *testing.B, server string, workers int) publisher {
	cm := autopahoManager(b, server, false)
	return func(ctx context.Context, topic string, n int) error {
		next := make(chan int)
		errc := make(chan error, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if _, err := cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload(i)}); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		for i := 1; i <= n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	}
}

func autopahoQueue(b *testing.B, server string) publisher {
	cm := autopahoManager(b, server, true)
	return func(ctx context.Context, topic string, n int) error {
		for i := 1; i <= n; i++ {
			if err := cm.PublishViaQueue(ctx, &autopaho.QueuePublish{Publish: &paho.Publish{Topic: topic, QoS: 1, Payload: payload(i)}}); err != nil {
				return err
			}
		}
		return nil // no acknowledgement to wait for: the caller only learns of delivery from a subscriber
	}
}
