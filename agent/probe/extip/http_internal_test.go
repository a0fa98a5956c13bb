package extip

import (
	"net/http"
	"testing"
)

// TestHTTPTransport pins the transport settings a test on loopback cannot
// observe: Go never proxies loopback requests, and a reused connection is
// only visible across a route change.
func TestHTTPTransport(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://192.0.2.1:3128")
	spec, err := Parse("https://api.ipify.org")
	if err != nil {
		t.Fatal(err)
	}
	tr := newHTTP(spec, Options{}).client.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Error("Proxy is set: a proxy would report its own address")
	}
	if !tr.DisableKeepAlives {
		t.Error("keep-alives enabled: a connection opened through the previous WAN would report the old address")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("TLS verification is not on")
	}
}
