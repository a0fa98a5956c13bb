// Package extip asks one external-IP provider for the address the
// internet sees, and checks that the answer is nothing but one public
// address.
//
// A provider is either a DNS server asked directly (never through a
// recursive resolver) for a name whose answer is the querier's address
// (dns://SERVER[:PORT]/NAME?type=A|AAAA|TXT&class=IN|CH), or an HTTP(S)
// service that answers with the address as text. [Parse] reads the
// configured string, [New] builds a [Querier], [ParseAnswer] validates the
// raw answer and [Operators] groups providers by the company that runs them,
// so that the ddns monitor can require independent operators to agree.
//
// # Caveats
//
// Answers are untrusted input: a captive portal answers HTML, a broken
// service answers its own address, a malicious one answers "1.2.3.4;
// reboot". Only a single address of the right family that parses with
// net/netip and is public unicast passes; every rejection is a
// [*FaultError], distinct from a failure (timeout, refused, SERVFAIL, HTTP
// error status), so the monitor can journal faults and back off both.
package extip

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
)

// Querier asks one provider for the external address, once.
type Querier interface {
	// Query returns the provider's raw answer, not yet validated: the text
	// of the single DNS record, or the HTTP body. It returns when ctx's
	// deadline passes or ctx is cancelled, at the latest. A structurally
	// wrong answer (several records, HTML content type, too long) is a
	// *FaultError; a provider that cannot answer gives another error.
	Query(ctx context.Context) (string, error)
}

// Options tune the queriers New builds.
type Options struct {
	// RootCAs verifies HTTPS providers; nil means the system's roots.
	RootCAs *x509.CertPool
	// Dial opens every connection (UDP and TCP for DNS, TCP for HTTP);
	// nil means a net.Dialer. Tests use it to open sockets inside a
	// network namespace; it could also bind queries to one WAN.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o Options) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if o.Dial != nil {
		return o.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// New returns the Querier for spec.
func New(spec Spec, opts Options) (Querier, error) {
	switch spec.Scheme {
	case "dns":
		return newDNS(spec, opts), nil
	case "http", "https":
		return newHTTP(spec, opts), nil
	default:
		return nil, fmt.Errorf("provider %q: unsupported scheme %q", spec.Raw, spec.Scheme)
	}
}
