package sdnotify_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"imon/agent/sdnotify"
)

// listen creates a fake NOTIFY_SOCKET (a unixgram socket the test reads)
// named addr and points the environment at it.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return c
}

// recv reads one datagram.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification received: %v", err)
	}
	return string(buf[:n])
}

func TestNotifications(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"file", ""}, // a socket file in t.TempDir()
		{"abstract", "@imon-sdnotify-test-" + strconv.Itoa(os.Getpid())}, // as systemd uses
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr
			if addr == "" {
				addr = filepath.Join(t.TempDir(), "notify.sock")
			}
			c := listen(t, addr)
			steps := []struct {
				send func() error
				want string
			}{
				{sdnotify.Ready, "READY=1"},
				{sdnotify.Watchdog, "WATCHDOG=1"},
				{func() error { return sdnotify.Status("2 monitors\nrunning") }, "STATUS=2 monitors running"},
				{sdnotify.Stopping, "STOPPING=1"},
				{func() error { return sdnotify.Notify("READY=1", "STATUS=up") }, "READY=1\nSTATUS=up"},
			}
			for _, s := range steps {
				if err := s.send(); err != nil {
					t.Fatalf("send %q: %v", s.want, err)
				}
				if got := recv(t, c); got != s.want {
					t.Errorf("received %q, want %q", got, s.want)
				}
			}
		})
	}
}

func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for _, f := range []func() error{sdnotify.Ready, sdnotify.Watchdog, sdnotify.Stopping} {
		if err := f(); err != nil {
			t.Errorf("without NOTIFY_SOCKET: %v, want nil", err)
		}
	}
}

func TestSocketGone(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	err := sdnotify.Ready()
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Ready to a missing socket: %v, want a not-exist error", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	tests := []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"30000000", me, 30 * time.Second, false},
		{"30000000", "", 30 * time.Second, false}, // no WATCHDOG_PID: meant for us
		{"30000000", "1", 0, false},               // meant for another process
		{"", "", 0, false},
		{"soon", me, 0, true},
	}
	for _, tc := range tests {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		if tc.usec == "" {
			os.Unsetenv("WATCHDOG_USEC")
		}
		if tc.pid == "" {
			os.Unsetenv("WATCHDOG_PID")
		}
		got, err := sdnotify.WatchdogInterval()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %s, %v; want %s, err %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}
