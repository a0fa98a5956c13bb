// Package mqtttest runs a real Mosquitto broker for tests: Debian's
// /usr/sbin/mosquitto started as a subprocess with a configuration the test
// writes into its temporary directory, listening on loopback only, with
// optional password authentication and a TLS listener whose CA and
// certificates are generated at run time (no secrets in the repository).
//
// Tests skip in -short mode, and when mosquitto is not installed, except
// when the environment variable CI is "true": then a missing broker fails
// the test.
package mqtttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"imon/internal/nettest"
)

// Options configure a broker.
type Options struct {
	// Users maps user names to passwords. When set, anonymous clients are
	// refused.
	Users map[string]string
	// TLS adds a TLS listener with a certificate for "localhost" and
	// 127.0.0.1 signed by a CA generated for this broker (CAFile).
	TLS bool
	// Extra lines appended to mosquitto.conf.
	Extra []string
}

// Broker is a running (or stopped) mosquitto.
type Broker struct {
	t    testing.TB
	dir  string
	conf string
	opt  Options

	// Port is the plain MQTT listener on 127.0.0.1.
	Port int
	// TLSPort is the TLS listener on 127.0.0.1 (Options.TLS).
	TLSPort int
	// CAFile is the PEM CA that signed the TLS listener's certificate.
	CAFile string
	// OtherCAFile is a PEM CA that signed nothing the broker uses (for
	// "wrong CA" tests).
	OtherCAFile string

	mu  sync.Mutex // guards the following
	cmd *exec.Cmd
	out *nettest.Buffer
}

// Binary is the mosquitto executable the tests run.
const Binary = "/usr/sbin/mosquitto"

// Require skips the test in -short mode (unit tests only, no broker) and
// when mosquitto (and mosquitto_passwd) are missing, or fails it then when
// CI=true.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a mosquitto broker: not in -short mode")
	}
	missing := ""
	if _, err := os.Stat(Binary); err != nil {
		missing = Binary
	} else if _, err := exec.LookPath("mosquitto_passwd"); err != nil {
		missing = "mosquitto_passwd"
	}
	if missing == "" {
		return
	}
	nettest.Unavailable(t, "%s not installed (apt-get install mosquitto mosquitto-clients)", missing)
}

// Start writes a configuration and starts mosquitto; it is stopped at the
// end of the test.
func Start(t testing.TB, opt Options) *Broker {
	t.Helper()
	Require(t)
	b := &Broker{t: t, dir: t.TempDir(), opt: opt}
	b.Port = FreePort(t)
	var lines []string
	if os.Geteuid() == 0 {
		// Otherwise mosquitto drops to user mosquitto, which cannot read
		// the test's 0700 directory.
		lines = append(lines, "user root")
	}
	lines = append(lines,
		"persistence false",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type notice",
		"log_type information",
		"log_type subscribe",
		"connection_messages true",
		// Tests subscribe with QoS 1 and may fall behind a burst: never
		// drop their messages.
		"max_queued_messages 0",
		"per_listener_settings false",
	)
	if len(opt.Users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		users := map[string]string{probeUser: probePassword}
		for u, p := range opt.Users {
			users[u] = p
		}
		for u, p := range users {
			if out, err := exec.Command("mosquitto_passwd", "-b", pw, u, p).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		lines = append(lines, "allow_anonymous false", "password_file "+pw)
	} else {
		lines = append(lines, "allow_anonymous true")
	}
	lines = append(lines, fmt.Sprintf("listener %d 127.0.0.1", b.Port))
	if opt.TLS {
		b.TLSPort = FreePort(t)
		ca, certs := writeCerts(t, b.dir)
		b.CAFile, b.OtherCAFile = ca, certs.other
		lines = append(lines,
			fmt.Sprintf("listener %d 127.0.0.1", b.TLSPort),
			"cafile "+ca, "certfile "+certs.cert, "keyfile "+certs.key)
	}
	lines = append(lines, opt.Extra...)
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", b.Log())
		}
	})
	return b
}

// URL is the plain listener's URL.
func (b *Broker) URL() string { return "mqtt://127.0.0.1:" + strconv.Itoa(b.Port) }

// TLSURL is the TLS listener's URL (host name localhost).
func (b *Broker) TLSURL() string { return "mqtts://localhost:" + strconv.Itoa(b.TLSPort) }

// Dir is the broker's directory (configuration, certificates).
func (b *Broker) Dir() string { return b.dir }

// CPUTime returns the CPU time the running mosquitto has used (user and
// system, from /proc), for benchmarks that report the broker's share.
func (b *Broker) CPUTime() time.Duration {
	b.mu.Lock()
	cmd := b.cmd
	b.mu.Unlock()
	if cmd == nil {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses): utime and
	// stime are the 12th and 13th of them, in clock ticks (100 Hz).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// Log returns what mosquitto logged so far.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out == nil {
		return ""
	}
	return b.out.String()
}

// Stop kills the broker (SIGKILL: no retained state survives, since
// persistence is off) and waits for it to exit. Stopping a stopped broker
// does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd := b.cmd
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// Restart starts the broker again on the same ports (after Stop) and waits
// until it accepts connections.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	out := &nettest.Buffer{}
	cmd := exec.Command(Binary, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	b.mu.Lock()
	b.out = out
	b.mu.Unlock()
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto did not start listening on %d: %v\n%s", b.Port, err, b.Log())
		}
		time.Sleep(20 * time.Millisecond) // polling a subprocess's readiness: no event to wait on
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago
// (mosquitto cannot listen on port 0).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type certFiles struct{ cert, key, other string }

// writeCerts creates a CA, a server certificate for localhost/127.0.0.1
// signed by it, and an unrelated second CA.
func writeCerts(t testing.TB, dir string) (caFile string, f certFiles) {
	t.Helper()
	caKey, caCert, caDER := newCA(t, "imon test CA")
	caFile = filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", caDER)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	f.cert = filepath.Join(dir, "server.pem")
	writePEM(t, f.cert, "CERTIFICATE", der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f.key = filepath.Join(dir, "server.key")
	writePEM(t, f.key, "EC PRIVATE KEY", keyDER)

	_, _, otherDER := newCA(t, "some other CA")
	f.other = filepath.Join(dir, "other-ca.pem")
	writePEM(t, f.other, "CERTIFICATE", otherDER)
	return caFile, f
}

func newCA(t testing.TB, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
