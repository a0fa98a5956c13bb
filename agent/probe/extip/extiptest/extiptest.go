// Package extiptest runs external-IP providers on loopback for tests and
// benchmarks: a miekg/dns server answering on UDP and TCP on one port, and a
// black hole that reads queries and never answers. Servers bind to any
// 127.0.0.0/8 address, so that tests can run several independent operators
// (127.0.0.1, 127.0.0.2, ...) side by side.
package extiptest

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNSServer is a DNS server on loopback.
type DNSServer struct {
	// Addr is "IP:PORT", the same port for UDP and TCP.
	Addr string
	// IP and Port are Addr's parts.
	IP   string
	Port int

	mu  sync.Mutex // guards tcp
	tcp int
}

// TCPQueries returns how many queries arrived over TCP.
func (s *DNSServer) TCPQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcp
}

// Provider returns the dns:// provider string asking the server for name
// with the given query type (A, AAAA or TXT).
func (s *DNSServer) Provider(name, qtype string) string {
	return "dns://" + s.Addr + "/" + name + "?type=" + qtype
}

// StartDNS serves h on ip (a loopback address) over UDP and TCP on the same
// free port, and shuts the server down when tb ends.
func StartDNS(tb testing.TB, ip string, h dns.Handler) *DNSServer {
	tb.Helper()
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		pc, err = net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			tb.Fatalf("listen udp on %s: %v", ip, err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		_ = pc.Close()
	}
	if err != nil {
		tb.Fatalf("listen tcp next to udp on %s: %v", ip, err)
	}
	s := &DNSServer{Addr: pc.LocalAddr().String(), IP: ip, Port: pc.LocalAddr().(*net.UDPAddr).Port}
	counting := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			s.mu.Lock()
			s.tcp++
			s.mu.Unlock()
		}
		h.ServeDNS(w, r)
	})
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: counting},
		{Listener: ln, Handler: counting},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		<-started
		tb.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
	return s
}

// StartBlackhole listens on ip over UDP and TCP on one port, reads whatever
// arrives and never answers, until tb ends. It returns "IP:PORT".
func StartBlackhole(tb testing.TB, ip string) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatalf("listen udp on %s: %v", ip, err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		tb.Fatalf("listen tcp on %s: %v", pc.LocalAddr(), err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		_ = pc.Close()
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return pc.LocalAddr().String()
}

// Answer returns a handler that answers every question with one record of
// the asked type holding text: an A record for an A question (text must be
// an IPv4 address), AAAA for AAAA, a one-string TXT record for TXT, in the
// question's class.
func Answer(text string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if rr, err := Record(r.Question[0], text); err == nil {
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeServerFailure
		}
		_ = w.WriteMsg(m)
	})
}

// Record builds the answer record for q holding text.
func Record(q dns.Question, text string) (dns.RR, error) {
	h := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: q.Qclass, Ttl: 0}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, err
		}
		if q.Qtype == dns.TypeA {
			return &dns.A{Hdr: h, A: a.AsSlice()}, nil
		}
		return &dns.AAAA{Hdr: h, AAAA: a.AsSlice()}, nil
	case dns.TypeTXT:
		return &dns.TXT{Hdr: h, Txt: []string{text}}, nil
	}
	return nil, errors.New("extiptest: unsupported type " + strconv.Itoa(int(q.Qtype)))
}
