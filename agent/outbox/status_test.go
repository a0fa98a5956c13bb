package outbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"imon/agent/outbox"
	"imon/config"
	"imon/journal"
	"imon/journal/journaltest"
	"imon/mqtt/mqtttest"
)

// connState decodes the latest mqtt connection state, as `imon status`
// shows it.
func connState(t *testing.T, j *journal.Journal) outbox.ConnState {
	t.Helper()
	ev, ok := j.Latest("mqtt")
	if !ok {
		t.Fatal("no mqtt state in the journal")
	}
	var st outbox.ConnState
	if err := ev.DecodeState(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// countIn polls the broker's log until it contains want at least n times.
func countIn(t *testing.T, b *mqtttest.Broker, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(b.Log(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q appears %d times in the broker log, want %d", want, strings.Count(b.Log(), want), n)
		}
		time.Sleep(20 * time.Millisecond) // observing a subprocess's log
	}
}

// TestWrongPassword: the broker's refusal is journaled once (not once per
// attempt), retries go on, `imon status` sees it, journaling is not held
// up, and a corrected password file connects without a restart; then the
// events journaled meanwhile are published.
func TestWrongPassword(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"imon": "right"}})
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mqttConfig(b.URL())
	cfg.Username, cfg.PasswordFile = "imon", pw
	j := journaltest.Open(t)
	run(t, cfg, config.HomeAssistant{}, allMonitors, j)

	evs := waitEvents(t, j, outbox.KindMQTTDisconnected, 1, 20*time.Second)
	if ev := evs[0]; ev.Monitor != "mqtt" || ev.Level != "warn" || !strings.Contains(ev.Msg, "broker refused the connection: not authorized") {
		t.Errorf("event %+v", ev)
	}
	countIn(t, b, "not authorised", 4) // retrying
	start := time.Now()
	appendEvents(t, j, 100) // a monitor journaling meanwhile
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("journaling took %s while the broker refused us", d)
	}
	if n := len(journalEvents(t, j, outbox.KindMQTTDisconnected)); n != 1 {
		t.Errorf("%d mqtt-disconnected events for one refusal, want 1", n)
	}
	if st := connState(t, j); st.Connected || !strings.Contains(st.Reason, "not authorized") || st.Server != b.URL() {
		t.Errorf("status %+v", st)
	}

	sub := b.Subscribe(t, base+"/event")
	if err := os.WriteFile(pw, []byte("right\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, j, outbox.KindMQTTConnected, 1, 20*time.Second)
	if st := connState(t, j); !st.Connected || st.Reason != "" || st.ReceiveMaximum != 20 {
		t.Errorf("status %+v", st)
	}
	newStream(t).drain(sub, j.LastSeq(), 30*time.Second)
}

// TestWrongCA: a CA that did not sign the broker's certificate is a clear
// TLS error, journaled once; the right CA (read again from the same file)
// connects.
func TestWrongCA(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	copyFile(t, b.OtherCAFile, ca)
	cfg := mqttConfig(b.TLSURL())
	cfg.CAFile = ca
	j := journaltest.Open(t)
	run(t, cfg, config.HomeAssistant{}, allMonitors, j)

	evs := waitEvents(t, j, outbox.KindMQTTDisconnected, 1, 20*time.Second)
	if msg := evs[0].Msg; !strings.Contains(msg, "tls handshake") || !strings.Contains(msg, "certificate signed by unknown authority") {
		t.Errorf("message %q does not say the certificate is not trusted", msg)
	}
	countIn(t, b, "OpenSSL Error", 3) // retrying
	if n := len(journalEvents(t, j, outbox.KindMQTTDisconnected)); n != 1 {
		t.Errorf("%d mqtt-disconnected events, want 1", n)
	}
	copyFile(t, b.CAFile, ca)
	waitEvents(t, j, outbox.KindMQTTConnected, 1, 20*time.Second)
	if st := connState(t, j); !st.Connected {
		t.Errorf("status %+v", st)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBrokerDownAtStart: no broker at all; the outbox journals the problem
// once and Run still returns promptly when stopped.
func TestBrokerDownAtStart(t *testing.T) {
	j := journaltest.Open(t)
	port := mqtttest.FreePort(t) // nobody listens there
	r := run(t, mqttConfig("mqtt://127.0.0.1:"+strconv.Itoa(port)), config.HomeAssistant{}, allMonitors, j)
	evs := waitEvents(t, j, outbox.KindMQTTDisconnected, 1, 20*time.Second)
	if !strings.Contains(evs[0].Msg, "connection refused") {
		t.Errorf("message %q", evs[0].Msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { r.stop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Run did not stop while the broker is down")
	}
}
