package extip

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRedirects is how many same-host redirects an HTTP provider may send
// (http→https upgrades, a trailing slash) before it is a fault.
const maxRedirects = 3

// maxRetryAfter caps a provider's Retry-After request.
const maxRetryAfter = time.Hour

// StatusError is an HTTP answer with a status other than 200 OK: a failure,
// not a fault. RetryAfter is the server's Retry-After (in seconds) on 429 and
// 503 answers, 0 when absent.
type StatusError struct {
	Code       int
	RetryAfter time.Duration
}

// Error returns e.g. "http status 429 Too Many Requests".
func (e *StatusError) Error() string {
	return fmt.Sprintf("http status %d %s", e.Code, http.StatusText(e.Code))
}

// httpQuerier asks an HTTP(S) service that answers with the address as text.
type httpQuerier struct {
	spec   Spec
	client *http.Client
}

func newHTTP(s Spec, opts Options) *httpQuerier {
	network := "tcp4"
	if s.Family() == IPv6 {
		network = "tcp6"
	}
	tr := &http.Transport{
		// A proxy would report its own address, so none is used, whatever
		// the environment says.
		Proxy: nil,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return opts.dial(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		// A kept-alive connection opened through the previous WAN would
		// still report the previous address after a failover: every query
		// opens a new connection.
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	host := s.Server
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			switch {
			case len(via) >= maxRedirects:
				return fault("too many redirects", req.URL.String())
			case !strings.EqualFold(req.URL.Hostname(), host):
				return fault("redirect to another host", req.URL.String())
			case via[0].URL.Scheme == "https" && req.URL.Scheme != "https":
				return fault("redirect from https to http", req.URL.String())
			}
			return nil
		},
	}
	return &httpQuerier{spec: s, client: client}
}

// Query GETs the URL and returns the body, which must be at most MaxAnswer
// bytes of text/plain (or untyped) content with status 200.
func (q *httpQuerier) Query(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.spec.URL, nil)
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "imon")
	req.Header.Set("Accept", "text/plain")
	resp, err := q.client.Do(req)
	if err != nil {
		if f, ok := IsFault(err); ok {
			return "", f
		}
		return "", fmt.Errorf("get %s: %w", q.spec.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		e := &StatusError{Code: resp.StatusCode}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				e.RetryAfter = min(time.Duration(n)*time.Second, maxRetryAfter)
			}
		}
		return "", e
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "text/plain" {
			return "", fault("content type is not text/plain", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return "", fmt.Errorf("read body of %s: %w", q.spec.URL, err)
	}
	if len(body) > MaxAnswer {
		return "", fault("answer too long", string(body))
	}
	return string(body), nil
}
