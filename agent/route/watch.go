package route

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"imon/internal/backoff"
)

// UpdateKind says what changed.
type UpdateKind int

// Kinds of Update.
const (
	// Resync: a subscription broke and was renewed; changes may have been
	// missed, so re-read everything.
	Resync UpdateKind = iota
	// LinkChanged: a link appeared, changed flags or carrier, or vanished.
	LinkChanged
	// AddrChanged: an IPv4 address was added or removed.
	AddrChanged
	// RouteChanged: an IPv4 route was added or removed.
	RouteChanged
	// RuleChanged: an IPv4 policy routing rule was added or removed.
	RuleChanged
)

// Update is one change reported by the kernel.
type Update struct {
	Kind      UpdateKind
	LinkIndex int
	// LinkName, AdminUp, Carrier and Deleted describe a LinkChanged link.
	LinkName string
	AdminUp  bool
	Carrier  bool
	Deleted  bool
	// Route is the changed route of a RouteChanged update.
	Route Route
}

// watchBuffer is the channel buffer of each subscription and of Watch's
// output. The kernel's socket buffer (watchRcvBuf) is what absorbs a burst;
// when it overflows, Watch resubscribes and sends Resync. 512 (until
// 2026-12-06) kept 360 KiB of the agent's 2.5 MiB live heap in four
// channels (netlink.LinkUpdate is large).
const watchBuffer = 32

// resubscribe is the wait before subscribing again after a subscription
// broke: 100 ms doubling to 5 s (internal/backoff), again from 100 ms
// after subscriptions that worked for a while.
var resubscribe = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// watchRcvBuf is the netlink socket receive buffer of a subscription (a
// variable so that a test can provoke ENOBUFS).
var watchRcvBuf = 1 << 20

// Watch streams link, IPv4 address, IPv4 route and IPv4 rule changes of network
// namespace ns (netns.None() = the caller's) until ctx ends; the channel is
// then closed. When a subscription breaks (the kernel drops messages with
// ENOBUFS and netlink closes the channel; nl#477), it resubscribes and sends
// a Resync update. The caller must keep reading.
func Watch(ctx context.Context, ns netns.NsHandle, logger *slog.Logger) <-chan Update {
	out := make(chan Update, watchBuffer)
	go func() {
		defer close(out)
		failures := 0
		first := true
		for ctx.Err() == nil {
			ok := watchOnce(ctx, ns, logger, out, !first)
			first = false
			if ctx.Err() != nil {
				return
			}
			if ok {
				failures = 0
			}
			failures++
			wait := resubscribe.Delay(failures)
			logger.Debug("netlink subscription broke; resubscribing", "backoff", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return out
}

// watchOnce runs one set of subscriptions until one breaks or ctx ends.
// It reports whether the subscriptions worked for a while.
func watchOnce(ctx context.Context, ns netns.NsHandle, logger *slog.Logger, out chan<- Update, resync bool) bool {
	done := make(chan struct{})
	links := make(chan netlink.LinkUpdate, watchBuffer)
	addrs := make(chan netlink.AddrUpdate, watchBuffer)
	routes := make(chan netlink.RouteUpdate, watchBuffer)
	rules := make(chan struct{}, watchBuffer)
	var stopped atomic.Bool
	errCb := func(err error) {
		if !stopped.Load() {
			logger.Debug("netlink subscription error", "err", err)
		}
	}
	nsp := &ns
	var errs []error
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{Namespace: nsp, ErrorCallback: errCb, ReceiveBufferSize: watchRcvBuf}); err != nil {
		errs = append(errs, err)
		close(links)
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: nsp, ErrorCallback: errCb, ReceiveBufferSize: watchRcvBuf}); err != nil {
		errs = append(errs, err)
		close(addrs)
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: nsp, ErrorCallback: errCb, ReceiveBufferSize: watchRcvBuf}); err != nil {
		errs = append(errs, err)
		close(routes)
	}
	if err := subscribeRules(ns, rules, done, errCb); err != nil {
		errs = append(errs, err)
		close(rules)
	}
	start := time.Now()
	// On return: stop the subscriptions and drain until netlink closes the
	// channels, so that no subscriber goroutine stays blocked on a send.
	defer func() {
		stopped.Store(true)
		close(done)
		for links != nil || addrs != nil || routes != nil || rules != nil {
			select {
			case _, ok := <-links:
				if !ok {
					links = nil
				}
			case _, ok := <-addrs:
				if !ok {
					addrs = nil
				}
			case _, ok := <-routes:
				if !ok {
					routes = nil
				}
			case _, ok := <-rules:
				if !ok {
					rules = nil
				}
			}
		}
	}()
	if len(errs) > 0 {
		logger.Debug("netlink subscribe failed", "err", errs[0])
		return false
	}
	send := func(u Update) bool {
		select {
		case out <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if resync && !send(Update{Kind: Resync}) {
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return true
		case u, ok := <-links:
			if !ok {
				links = nil
				return time.Since(start) > time.Second
			}
			a := u.Attrs()
			if !send(Update{
				Kind: LinkChanged, LinkIndex: a.Index, LinkName: a.Name,
				AdminUp: a.Flags&net.FlagUp != 0, Carrier: u.IfInfomsg.Flags&unix.IFF_LOWER_UP != 0,
				Deleted: u.Header.Type == unix.RTM_DELLINK,
			}) {
				return true
			}
		case u, ok := <-addrs:
			if !ok {
				addrs = nil
				return time.Since(start) > time.Second
			}
			if u.LinkAddress.IP.To4() == nil {
				continue
			}
			if !send(Update{Kind: AddrChanged, LinkIndex: u.LinkIndex, Deleted: !u.NewAddr}) {
				return true
			}
		case u, ok := <-routes:
			if !ok {
				routes = nil
				return time.Since(start) > time.Second
			}
			if u.Family != netlink.FAMILY_V4 && u.Family != 0 {
				continue
			}
			r := Route{Table: u.Table, Dst: netip.MustParsePrefix("0.0.0.0/0"), LinkIndex: u.LinkIndex, Metric: u.Priority, Proto: int(u.Protocol)}
			if p, ok := prefixOf(u.Dst); ok {
				r.Dst = p
			}
			if !send(Update{Kind: RouteChanged, LinkIndex: u.LinkIndex, Deleted: u.Type == unix.RTM_DELROUTE, Route: r}) {
				return true
			}
		case _, ok := <-rules:
			if !ok {
				rules = nil
				return time.Since(start) > time.Second
			}
			if !send(Update{Kind: RuleChanged}) {
				return true
			}
		}
	}
}

// subscribeRules reports every IPv4 rule notification of ns on ch (closed
// when the subscription ends: done closed, or an error such as ENOBUFS).
// The netlink library subscribes to links, addresses and routes but not to
// rules; this is its own subscription (nl.SubscribeAt) read the way the
// library reads the others. A rule deleted by someone else is put back
// within reassert's 100 ms instead of at the next resync.
func subscribeRules(ns netns.NsHandle, ch chan<- struct{}, done <-chan struct{}, cberr func(error)) error {
	s, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_RULE)
	if err != nil {
		return fmt.Errorf("subscribing to rule notifications: %w", err)
	}
	if err := s.SetReceiveBufferSize(watchRcvBuf, false); err != nil {
		s.Close()
		return fmt.Errorf("subscribing to rule notifications: %w", err)
	}
	go func() {
		<-done
		s.Close()
	}()
	go func() {
		defer close(ch)
		for {
			msgs, from, err := s.Receive()
			if err != nil {
				cberr(fmt.Errorf("rule notifications: %w", err))
				return
			}
			if from.Pid != nl.PidKernel {
				continue
			}
			for _, m := range msgs {
				if m.Header.Type == unix.RTM_NEWRULE || m.Header.Type == unix.RTM_DELRULE {
					select {
					case ch <- struct{}{}:
					case <-done:
						return
					}
				}
			}
		}
	}()
	return nil
}
