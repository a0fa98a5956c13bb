package extip_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"imon/agent/probe/extip"
	"imon/agent/probe/extip/extiptest"
)

// queryTimeout bounds each query in these tests; "slow" servers never
// answer within it.
const queryTimeout = 300 * time.Millisecond

// outcome classifies a query: "ok ADDR", "fault REASON" or "fail".
func ask(t *testing.T, raw string, opts extip.Options) (string, error) {
	t.Helper()
	spec, err := extip.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	q, err := extip.New(spec, opts)
	if err != nil {
		t.Fatalf("new %q: %v", raw, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), queryTimeout)
	defer cancel()
	start := time.Now()
	text, err := q.Query(ctx)
	if d := time.Since(start); d > queryTimeout+200*time.Millisecond {
		t.Errorf("%s: query took %v, longer than its timeout %v", raw, d, queryTimeout)
	}
	if err == nil {
		var a netip.Addr
		a, err = extip.ParseAnswer(text, spec.Family(), false)
		if err == nil {
			return "ok " + a.String(), nil
		}
	}
	if f, ok := extip.IsFault(err); ok {
		return "fault " + f.Reason, err
	}
	return "fail", err
}

// dnsBehaviour answers by query name, like a provider that is good, lies,
// is slow, truncates, fails or sends garbage.
func dnsBehaviour(release <-chan struct{}) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		m := new(dns.Msg)
		m.SetReply(r)
		add := func(text string) {
			rr, err := extiptest.Record(q, text)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		_, overTCP := w.RemoteAddr().(*net.TCPAddr)
		switch strings.TrimSuffix(q.Name, ".") {
		case "good.test", "good6.test":
			if q.Qtype == dns.TypeAAAA {
				add("2a00:1450:4001:82b::200e")
			} else {
				add("1.2.3.4")
			}
		case "txt.test":
			add("5.6.7.8")
		case "wrong.test":
			add("192.168.1.1")
		case "wrongfamily.test":
			add("2a00:1450::1")
		case "slow.test":
			<-release
			return
		case "trunc.test":
			if overTCP {
				add("1.2.3.4")
			} else {
				m.Truncated = true
			}
		case "trunctcp.test": // truncated even over TCP
			m.Truncated = true
		case "servfail.test":
			m.Rcode = dns.RcodeServerFailure
		case "nxdomain.test":
			m.Rcode = dns.RcodeNameError
		case "refused.test":
			m.Rcode = dns.RcodeRefused
			m.Question = nil
		case "nodata.test":
		case "garbage.test":
			_, _ = w.Write([]byte("\x00\x01garbage, not DNS <html>"))
			return
		case "garbagetxt.test":
			add("\x00\xff\x1b[2J garbage")
		case "several.test":
			add("1.2.3.4")
			add("5.6.7.8")
		case "inject.test":
			add("1.2.3.4; reboot")
		case "html.test":
			add("<html><body>1.2.3.4</body></html>")
		case "twostrings.test":
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: q.Qclass}, Txt: []string{"1.2.3.4", "5.6.7.8"}})
		case "othername.test":
			rr, _ := extiptest.Record(dns.Question{Name: "evil.test.", Qtype: q.Qtype, Qclass: q.Qclass}, "1.2.3.4")
			m.Answer = append(m.Answer, rr)
		case "otherquestion.test":
			m.Question[0].Name = "evil.test."
			add("1.2.3.4")
		case "wrongid.test":
			m.Id++
			add("1.2.3.4")
		case "noqr.test":
			m.Response = false
			add("1.2.3.4")
		case "cname.test": // CNAME then the record: the A is owned by another name
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: q.Qclass}, Target: "evil.test."})
			rr, _ := extiptest.Record(dns.Question{Name: "evil.test.", Qtype: q.Qtype, Qclass: q.Qclass}, "1.2.3.4")
			m.Answer = append(m.Answer, rr)
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
}

func TestDNSProvider(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := extiptest.StartDNS(t, "127.0.0.1", dnsBehaviour(release))
	t.Cleanup(func() { close(release) }) // runs before the server's shutdown
	tests := []struct {
		name, qtype, want string
	}{
		{"good.test", "A", "ok 1.2.3.4"},
		{"good6.test", "AAAA", "ok 2a00:1450:4001:82b::200e"},
		{"txt.test", "TXT", "ok 5.6.7.8"},
		{"trunc.test", "A", "ok 1.2.3.4"},
		{"wrong.test", "A", "fault private address"},
		{"wrongfamily.test", "TXT", "fault wrong family: want IPv4"},
		{"slow.test", "A", "fail"},
		{"trunctcp.test", "A", "fault truncated DNS response"},
		{"servfail.test", "A", "fail"},
		{"nxdomain.test", "A", "fail"},
		{"refused.test", "A", "fail"},
		{"nodata.test", "A", "fail"},
		{"garbage.test", "A", "fault malformed DNS message"},
		{"garbagetxt.test", "TXT", "fault not an address"},
		{"several.test", "A", "fault several records"},
		{"several.test", "TXT", "fault several records"},
		{"inject.test", "TXT", "fault not an address"},
		{"html.test", "TXT", "fault not an address"},
		{"twostrings.test", "TXT", "fault TXT record with several strings"},
		{"othername.test", "A", "fault record for another name"},
		{"otherquestion.test", "A", "fault DNS response to another question"},
		{"wrongid.test", "A", "fault DNS message with wrong ID or not a response"},
		{"noqr.test", "A", "fault DNS message with wrong ID or not a response"},
		{"cname.test", "A", "fault record for another name"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.qtype, func(t *testing.T) {
			t.Parallel()
			got, err := ask(t, srv.Provider(tc.name, tc.qtype), extip.Options{})
			if got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	t.Run("chaos class", func(t *testing.T) {
		t.Parallel()
		got, err := ask(t, srv.Provider("txt.test", "TXT")+"&class=CH", extip.Options{})
		if got != "ok 5.6.7.8" {
			t.Errorf("got %q (%v)", got, err)
		}
	})
}

func TestDNSTruncatedRetriesOverTCP(t *testing.T) {
	t.Parallel()
	srv := extiptest.StartDNS(t, "127.0.0.1", dnsBehaviour(nil))
	if got, err := ask(t, srv.Provider("trunc.test", "A"), extip.Options{}); got != "ok 1.2.3.4" {
		t.Fatalf("got %q (%v)", got, err)
	}
	if n := srv.TCPQueries(); n != 1 {
		t.Errorf("TCP queries = %d, want 1", n)
	}
	if _, err := ask(t, srv.Provider("good.test", "A"), extip.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := srv.TCPQueries(); n != 1 {
		t.Errorf("TCP queries after an untruncated answer = %d, want still 1", n)
	}
}

func TestDNSRefusedPort(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: ICMP port unreachable, a failure.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_ = pc.Close()
	if got, err := ask(t, "dns://"+addr+"/good.test", extip.Options{}); got != "fail" {
		t.Errorf("got %q (%v), want fail", got, err)
	}
}

// TestDNSCancel checks that cancelling the context, not only its deadline,
// ends a query at once (miekg/dns#1399 is worked around).
func TestDNSCancel(t *testing.T) {
	t.Parallel()
	addr := extiptest.StartBlackhole(t, "127.0.0.1")
	spec, err := extip.Parse("dns://" + addr + "/good.test")
	if err != nil {
		t.Fatal(err)
	}
	q, _ := extip.New(spec, extip.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := q.Query(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("query still running 10s after cancel")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled query took %v", d)
	}
}

func httpBehaviour(release <-chan struct{}, otherHost string) http.Handler {
	mux := http.NewServeMux()
	text := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("/good", text("1.2.3.4\n"))
	mux.HandleFunc("/untyped", func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = nil // no sniffing, no header
		_, _ = fmt.Fprint(w, "1.2.3.4")
	})
	mux.HandleFunc("/wrong", text("10.0.0.1"))
	mux.HandleFunc("/several", text("1.2.3.4\n5.6.7.8\n"))
	mux.HandleFunc("/inject", text("1.2.3.4; reboot"))
	mux.HandleFunc("/htmltext", text("<html><body>1.2.3.4</body></html>"))
	mux.HandleFunc("/html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, "<html><body>Login to the hotspot</body></html>")
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"ip":"1.2.3.4"}`)
	})
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("\x00\xff\xfe\x1b[2J\x07"))
	})
	mux.HandleFunc("/long", text(strings.Repeat("1.2.3.4 ", 1000)))
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/error", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "1.2.3.4", http.StatusInternalServerError)
	})
	mux.HandleFunc("/ratelimited", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	mux.HandleFunc("/redirect-same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/good", http.StatusFound)
	})
	mux.HandleFunc("/redirect-other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+otherHost+"/good", http.StatusFound)
	})
	mux.HandleFunc("/redirect-loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redirect-loop", http.StatusFound)
	})
	return mux
}

func startHTTP(t *testing.T, ip string, h http.Handler, tls bool) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-CA case logs a handshake error
	_ = srv.Listener.Close()
	srv.Listener = ln
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPProvider(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	other := startHTTP(t, "127.0.0.2", httpBehaviour(release, ""), false)
	srv := startHTTP(t, "127.0.0.1", httpBehaviour(release, other.Listener.Addr().String()), false)
	t.Cleanup(func() { close(release) })
	tests := []struct{ path, want string }{
		{"/good", "ok 1.2.3.4"},
		{"/untyped", "ok 1.2.3.4"},
		{"/redirect-same", "ok 1.2.3.4"},
		{"/wrong", "fault private address"},
		{"/several", "fault several addresses"},
		{"/inject", "fault not an address"},
		{"/htmltext", "fault not an address"},
		{"/html", "fault content type is not text/plain"},
		{"/json", "fault content type is not text/plain"},
		{"/garbage", "fault not an address"},
		{"/long", "fault answer too long"},
		{"/slow", "fail"},
		{"/error", "fail"},
		{"/ratelimited", "fail"},
		{"/redirect-other", "fault redirect to another host"},
		{"/redirect-loop", "fault too many redirects"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			got, err := ask(t, srv.URL+tc.path, extip.Options{})
			if got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	t.Run("retry-after", func(t *testing.T) {
		t.Parallel()
		_, err := ask(t, srv.URL+"/ratelimited", extip.Options{})
		var se *extip.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || se.RetryAfter != 120*time.Second {
			t.Errorf("err = %#v, want StatusError 429 with RetryAfter 120s", err)
		}
	})
}

func TestHTTPSProvider(t *testing.T) {
	t.Parallel()
	srv := startHTTP(t, "127.0.0.1", httpBehaviour(nil, ""), true)
	if got, err := ask(t, srv.URL+"/good", extip.Options{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}); got != "ok 1.2.3.4" {
		t.Errorf("with the test CA: got %q (%v)", got, err)
	}
	// Without the test CA the certificate does not verify: a failure.
	if got, err := ask(t, srv.URL+"/good", extip.Options{}); got != "fail" {
		t.Errorf("without the test CA: got %q (%v), want fail", got, err)
	}
	// An https provider must not be redirected to plain http.
	plain := startHTTP(t, "127.0.0.1", httpBehaviour(nil, ""), false)
	down := startHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/good", http.StatusFound)
	}), true)
	if got, err := ask(t, down.URL+"/", extip.Options{RootCAs: down.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}); got != "fault redirect from https to http" {
		t.Errorf("downgrade: got %q (%v)", got, err)
	}
}
