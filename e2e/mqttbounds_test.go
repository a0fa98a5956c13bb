package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"imon/agent"
	"imon/event"
	"imon/internal/harness"
	"imon/internal/nettest"
	"imon/internal/testbed"
	"imon/mqtt"
	"imon/mqtt/mqtttest"
)

// These tests run the real binary against hostile MQTT input (issue 11):
// huge packets, command floods, flapping commands.

// mqttAgentConfig writes a config with the ping monitor on loopback and
// MQTT to server with node id inst; extra is added to the journal section.
func mqttAgentConfig(t *testing.T, dir, inst, server, journalExtra string) string {
	t.Helper()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if journalExtra != "" {
		journalExtra = ", " + journalExtra
	}
	return harness.WriteFile(t, dir, "imon-"+inst, fmt.Sprintf(`{
  "global": {"instance": %q},
  "ping": {"enable": true, "interval": 1, "pingcount": 1, "pingwait": 0.5, "monitorip": "127.0.0.1"},
  "mqtt": {"enable": true, "server": %q, "node-id": %q},
  "journal": {"path": %q, "socket": %q%s}
}`, inst, server, inst, filepath.Join(dir, inst+".db"), filepath.Join(dir, inst+".sock"), journalExtra), 0o600)
}

// agentPID is the pid in the agent-start event.
func agentPID(t *testing.T, w *harness.Watcher) int {
	t.Helper()
	ev := w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))
	var d struct{ PID int }
	if err := ev.DecodeData(&d); err != nil || d.PID == 0 {
		t.Fatalf("agent-start data %s: %v", ev.Data, err)
	}
	return d.PID
}

// peakRSS is the process's peak resident set size (VmHWM): what it held at
// its worst since it started, not only now.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

const rssLimit = 64 << 20

// publisher is an MQTT client of the test (imon's own mqtt package: Send
// pipelines QoS 1 messages).
func publisher(t *testing.T, server string) *mqtt.Conn {
	t.Helper()
	c, err := mqtt.New(mqtt.Config{Server: server, ClientID: fmt.Sprintf("e2e-pub-%d", time.Now().UnixNano()),
		MaxPacketSize: 1 << 20, PacketTimeout: time.Minute, Backoff: func(int) time.Duration { return 100 * time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
	defer ccancel()
	cn, err := c.Connected(cctx)
	if err != nil {
		t.Fatalf("test publisher: %v", err)
	}
	return cn
}

func publish(t *testing.T, cn *mqtt.Conn, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cn.Publish(ctx, mqtt.Message{Topic: topic, Payload: payload, QoS: 1}); err != nil {
		t.Fatalf("publish %d bytes to %s: %v", len(payload), topic, err)
	}
}

// rejectedPayload matches the command-rejected event of payload.
func rejectedPayload(payload string) func(event.Event) bool {
	return func(ev event.Event) bool {
		var d struct{ Payload string }
		return ev.Kind == event.KindCommandRejected && ev.DecodeData(&d) == nil && d.Payload == payload
	}
}

// TestMQTTHugeInputBoundedMemory: a 200 MB publish on BASE/failover/set
// through a real Mosquitto, then a "broker" that sends a PUBLISH header
// declaring 268,435,455 bytes at every connection: the agent's peak RSS
// stays ≤ 64 MiB and the connection is dropped with a clear reason. Before
// (no Maximum Packet Size declared, paho allocating what the header
// declares) the agent went from 17 MB to 624 MB and 276 MB.
func TestMQTTHugeInputBoundedMemory(t *testing.T) {
	nettest.NeedRoot(t, "network namespaces")
	mqtttest.Require(t)

	t.Run("200 MB publish", func(t *testing.T) {
		dir := t.TempDir()
		b := mqtttest.Start(t, mqtttest.Options{})
		const inst = "hugepub"
		cfg := mqttAgentConfig(t, dir, inst, b.URL(), "")
		harness.Start(t, "", cfg)
		w := harness.Watch(t, cfg)
		pid := agentPID(t, w)
		w.WaitFor(20*time.Second, "mqtt-connected", harness.Kind("mqtt-connected"))
		pub := publisher(t, b.URL())
		big := bytes.Repeat([]byte("p"), 200<<20)
		for i := range 2 {
			publish(t, pub, "imon/"+inst+"/failover/set", big)
			// The broker delivers in order: once this marker's rejection is
			// journaled, the big one was dealt with.
			marker := fmt.Sprintf("marker-%d", i)
			publish(t, pub, "imon/"+inst+"/failover/set", []byte(marker))
			w.Next(30*time.Second, "rejection of "+marker, rejectedPayload(marker))
		}
		if rss := peakRSS(t, pid); rss > rssLimit {
			t.Errorf("agent peak RSS %d MiB after two 200 MB publishes, want ≤ 64 MiB", rss>>20)
		} else {
			t.Logf("agent peak RSS %.1f MiB", float64(rss)/(1<<20))
		}
	})

	t.Run("huge PUBLISH header", func(t *testing.T) {
		dir := t.TempDir()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var accepts atomic.Int32
		accepted := make(chan struct{}, 1024)
		stop := make(chan struct{})
		served := make(chan struct{})
		go func() {
			defer close(served)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepts.Add(1)
				select {
				case accepted <- struct{}{}:
				default:
				}
				go func() {
					defer c.Close()
					if _, err := packets.ReadPacket(c); err != nil {
						return
					}
					ca := &packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.CONNACK}, Content: &packets.Connack{Properties: &packets.Properties{}}}
					if _, err := ca.WriteTo(c); err != nil {
						return
					}
					// PUBLISH, remaining length 268,435,455, then a trickle.
					if _, err := c.Write([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 'x'}); err != nil {
						return
					}
					chunk := make([]byte, 64<<10)
					for {
						select {
						case <-stop:
							return
						default:
						}
						_ = c.SetWriteDeadline(time.Now().Add(time.Second))
						if _, err := c.Write(chunk); err != nil {
							return
						}
					}
				}()
			}
		}()
		t.Cleanup(func() { close(stop); ln.Close(); <-served })

		const inst = "hugehdr"
		cfg := mqttAgentConfig(t, dir, inst, "mqtt://"+ln.Addr().String(), "")
		harness.Start(t, "", cfg)
		w := harness.Watch(t, cfg)
		pid := agentPID(t, w)
		ev := w.WaitFor(30*time.Second, "mqtt-disconnected naming the packet size", func(ev event.Event) bool {
			return ev.Kind == "mqtt-disconnected" && strings.Contains(ev.Msg, "maximum packet size")
		})
		t.Logf("reason: %s", ev.Msg)
		if !strings.Contains(ev.Msg, "268435460 bytes") {
			t.Errorf("reason %q does not name the declared size", ev.Msg)
		}
		// Reconnects meet the same header: still bounded.
		deadline := time.After(30 * time.Second)
		for range 3 {
			select {
			case <-accepted:
			case <-deadline:
				t.Fatalf("only %d connections in 30 s", accepts.Load())
			}
		}
		if rss := peakRSS(t, pid); rss > rssLimit {
			t.Errorf("agent peak RSS %d MiB, want ≤ 64 MiB", rss>>20)
		} else {
			t.Logf("agent peak RSS %.1f MiB after %d hostile connections", float64(rss)/(1<<20), accepts.Load())
		}
	})
}

// TestMQTTCommandFlood: 1,000 rejected commands a second for 60 s on
// BASE/failover/set with a 1 MiB journal: the
// journal keeps the agent-start event and grows by a bounded number of
// command events (the budget's burst, one per 2 s, and one
// command-throttled summary per minute). Before the budget every command
// was journaled and the whole history was gone in 8 s.
func TestMQTTCommandFlood(t *testing.T) {
	nettest.NeedRoot(t, "network namespaces")
	mqtttest.Require(t)
	const dur = 60 * time.Second
	dir := t.TempDir()
	b := mqtttest.Start(t, mqtttest.Options{})
	const inst = "cmdflood"
	cfg := mqttAgentConfig(t, dir, inst, b.URL(), `"max-bytes": 1048576`)
	a := harness.Start(t, "", cfg)
	w := harness.Watch(t, cfg)
	start := w.WaitFor(20*time.Second, "agent-start", harness.Kind(event.KindAgentStart))
	w.WaitFor(20*time.Second, "mqtt-connected", harness.Kind("mqtt-connected"))
	pub := publisher(t, b.URL())
	topic := "imon/" + inst + "/failover/set"

	ctx := context.Background()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	var acks []*mqtt.Ack
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		<-tick.C
		for range 10 {
			ack, err := pub.Send(ctx, mqtt.Message{Topic: topic, Payload: []byte("flood-" + strconv.Itoa(sent))})
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			acks = append(acks, ack)
			sent++
		}
		for len(acks) > 0 {
			if ok, _ := acks[0].Ready(); !ok {
				break
			}
			acks = acks[1:]
		}
	}
	for _, a := range acks {
		_ = a.Wait(ctx)
	}
	elapsed := dur
	rate := float64(sent) / elapsed.Seconds()
	t.Logf("sent %d commands in %s (%.0f/s)", sent, elapsed, rate)
	if rate < 500 {
		t.Logf("the test publisher reached only %.0f/s (machine load)", rate)
	}
	// Stop the agent: the open throttled window is journaled at stop.
	if err := a.Stop(); err != nil {
		t.Fatalf("agent stop: %v", err)
	}
	out, err := harness.Command(t, "", "journal", "--config", cfg, "--json").Output()
	if err != nil {
		t.Fatalf("imon journal: %v", err)
	}
	var rejected, throttled, dropped int
	first := uint64(0)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ev event.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		if first == 0 {
			first = ev.Seq
		}
		switch ev.Kind {
		case event.KindCommandRejected:
			rejected++
		case event.KindCommandThrottled:
			throttled++
			var d struct{ Dropped int }
			_ = ev.DecodeData(&d)
			dropped += d.Dropped
		}
	}
	if first > start.Seq {
		t.Errorf("the journal lost its history: oldest event #%d, agent-start was #%d", first, start.Seq)
	}
	// Burst 5, then one per 2 s; one summary per minute (and at stop).
	maxRejected := 5 + int(dur/(2*time.Second)) + 2
	if rejected > maxRejected {
		t.Errorf("%d command-rejected events for a %s flood, want ≤ %d", rejected, dur, maxRejected)
	}
	if maxThrottled := int(dur/time.Minute) + 2; throttled == 0 || throttled > maxThrottled {
		t.Errorf("%d command-throttled events, want 1..%d", throttled, maxThrottled)
	}
	t.Logf("journal: %d command-rejected, %d command-throttled counting %d dropped commands (of %d sent)", rejected, throttled, dropped, sent)
	if rejected+dropped > sent {
		t.Errorf("%d rejected + %d dropped > %d sent", rejected, dropped, sent)
	}
}

// controlFailover sends one failover request on the control socket (as
// `imon failover` does, without waiting for the outcome).
func controlFailover(t *testing.T, socket, mode string) agent.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := agent.Call(ctx, socket, agent.Request{Cmd: "failover", Mode: mode})
	if err != nil {
		t.Fatalf("failover %s: %v", mode, err)
	}
	return r
}

// TestFailoverCommandHonestAndBudgeted runs the failover monitor on a
// testbed. `imon failover primary` while the primary is down exits 1 and
// says why (it printed "journaled" and exited 0). Then 50 valid commands a
// second alternating primary/standby for 5 s on the control socket move
// the route at most once (the minimum of 10 s between mode changes; before
// there were 249 route changes and action runs in 5 s).
func TestFailoverCommandHonestAndBudgeted(t *testing.T) {
	b := testbed.New(t)
	dir := t.TempDir()
	action, calls := harness.RecordingAction(t, dir)
	cfg := failoverConfig(t, dir, action, 1)
	harness.Start(t, b.Host.Name, cfg)
	w := harness.Watch(t, cfg)
	w.WaitFor(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	socket := filepath.Join(dir, strings.TrimPrefix(filepath.Base(cfg), "imon-")+".sock")

	b.CutUpstream(0)
	w.Next(10*time.Second, "failover-standby", harness.Kind(event.KindFailoverStandby))
	out, err := harness.Command(t, b.Host.Name, "failover", "--config", cfg, "primary").CombinedOutput()
	if err == nil {
		t.Fatalf("imon failover primary with the primary down exited 0:\n%s", out)
	}
	if !strings.Contains(string(out), "primary network is down") || !strings.Contains(string(out), "stays via standby") {
		t.Errorf("imon failover primary: %s", out)
	}
	t.Logf("imon failover primary: %s", strings.TrimSpace(string(out)))
	pinned := time.Now()

	// The pin takes effect when the primary is back.
	b.Heal()
	w.Next(20*time.Second, "failover-primary", harness.Kind(event.KindFailoverPrimary))
	oneDefault(t, b, "wan0")

	// A mode change within 10 s of the last is refused with the wait.
	r := controlFailover(t, socket, "standby")
	if r.OK || !strings.Contains(r.Error, "too soon") {
		t.Errorf("standby right after primary: %+v, want a too-soon rejection", r)
	}
	time.Sleep(time.Until(pinned.Add(10 * time.Second))) // the documented minimum between mode changes

	callsBefore := len(harness.ActionCalls(t, calls))
	tick := time.NewTicker(20 * time.Millisecond)
	var ok, throttled, rejected int
	for i := range 250 {
		<-tick.C
		mode := []string{"standby", "primary"}[i%2]
		switch r := controlFailover(t, socket, mode); {
		case r.OK:
			ok++
		case strings.Contains(r.Error, "budget"):
			throttled++
		default:
			rejected++
		}
	}
	tick.Stop()
	t.Logf("250 commands in 5 s: %d accepted, %d rejected, %d over the budget", ok, rejected, throttled)
	// Let the last accepted command take effect, then count.
	w.Next(10*time.Second, "the first switch", harness.Kind(event.KindFailoverStandby))
	var switches int
	for _, ev := range w.Seen() {
		if ev.Time.After(pinned.Add(10*time.Second)) && (ev.Kind == event.KindFailoverPrimary || ev.Kind == event.KindFailoverStandby) {
			switches++
		}
	}
	if switches > 2 {
		t.Errorf("%d route changes from 250 alternating commands, want ≤ 2", switches)
	}
	if got := len(harness.ActionCalls(t, calls)) - callsBefore; got > 8 {
		t.Errorf("%d action runs during the command flood", got)
	}
	if ok+rejected > 5+3+2 {
		t.Errorf("%d commands journaled in 5 s, want the burst of 5 and one per 2 s", ok+rejected)
	}
}
