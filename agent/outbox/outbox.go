// Package outbox publishes an imon instance's journal to MQTT: it is the
// journal consumer behind BASE/event, the retained BASE/<monitor>/state,
// BASE/agent/state and Home Assistant discovery, and it turns commands on
// BASE/failover/set into journaled events.
//
// # Delivery
//
// The journal is the outbox. Events are published to BASE/event at QoS 1,
// in journal order, from the persisted cursor "mqtt" on, with up to the
// broker's Receive Maximum of them in flight; the cursor advances only over
// the contiguous prefix of events the broker acknowledged. Any failure — a
// lost connection, a refused message, a stalled broker — ends the round and
// the next one starts again from the cursor, so nothing journaled is lost
// and duplicates are limited to the unacknowledged window (subscribers
// dedupe by seq, which is in the payload and in the user property "seq").
// After a process restart the cursor, persisted by the journal, says where
// to resume.
//
// # Connection status
//
// The broker being down, refusing the credentials or failing TLS never
// blocks anything else: the client retries with backoff, and every change
// of the connection's state (connected, or not with a new reason) is logged
// once and journaled as mqtt-connected or mqtt-disconnected (monitor
// "mqtt", with a State, so `imon status` shows it through the journal's
// Latest("mqtt")).
//
// # Commands
//
// Payloads received on BASE/failover/set go, with source "mqtt", to the
// agent's one entry point of commands (WithCommander), the same the
// control socket uses: it budgets them, parses them (primary, standby,
// auto; see package command) and journals a failover-command event that
// the failover monitor acts on, or a command-rejected event. The outbox
// itself only queues them (commandQueue; beyond it they are dropped and
// counted, so a flood cannot stall the client).
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"imon/agent/probe"
	"imon/config"
	"imon/event"
	"imon/homeassistant"
	"imon/mqtt"
)

// Journal is what the outbox needs of the event journal (*journal.Journal
// satisfies it).
type Journal interface {
	// Follow reads the journal from seq from on, waiting for new events,
	// and reports the ranges it skips (journal.Journal.Follow).
	Follow(ctx context.Context, from uint64, f event.Follower) (uint64, error)
	// Read returns up to max events from seq from on, in order (the ping
	// minute statistics read the rounds between two publications).
	Read(from uint64, max int) ([]event.Event, error)
	LastSeq() uint64
	// Cursor and SetCursor keep the outbox's position (lazily persisted).
	Cursor(name string) uint64
	SetCursor(name string, seq uint64)
	// Latest is the latest event of monitor that carried a State.
	Latest(monitor string) (event.Event, bool)
}

// Emitter journals the outbox's own events (mqtt-connected,
// mqtt-disconnected, mqtt-event-trimmed): the agent's Emit, with its one
// ordered writer and its policy when the journal cannot be written; it
// sets the Instance.
type Emitter interface {
	Emit(ctx context.Context, ev event.Event) (event.Event, error)
}

// CursorName is the journal cursor of the events the broker acknowledged,
// and the consumer name (Name).
const CursorName = "mqtt"

// Event kinds the outbox journals (monitor "mqtt").
const (
	KindMQTTConnected    = "mqtt-connected"
	KindMQTTDisconnected = "mqtt-disconnected"
)

// Monitors whose state is published retained on BASE/<monitor>/state when
// enabled (and cleared when not).
var stateMonitors = []string{event.MonitorUpdown, event.MonitorPing, event.MonitorDDNS, event.MonitorFailover}

// ErrDisabled is returned by New when the mqtt section is not enabled.
var ErrDisabled = errors.New("mqtt is not enabled")

// Tuning.
const (
	// maxWindow caps the events in flight on brokers with a huge Receive
	// Maximum (the default is 65535): enough to fill a loopback or LAN
	// round trip.
	maxWindow = 256
	// readBatch is how many events one journal Read returns.
	readBatch = 256
	// commandQueue bounds the commands waiting to be journaled; beyond it
	// they are dropped (and logged), so a flood cannot stall the client.
	commandQueue = 256
)

// Option changes a default of New (mainly for tests).
type Option func(*options)

type options struct {
	backoff       func(n int) time.Duration
	birthDelay    [2]time.Duration
	stateInterval time.Duration
	every         func(ctx context.Context, period time.Duration) <-chan time.Time
	agentInterval time.Duration
	journalSize   func() int64
	sections      *config.Config
	commander     Commander
	availability  func(ctx context.Context) ([]byte, error) // see WithAvailability
	health        func() (problem bool, problems []string)
	emitter       Emitter
}

// WithEmitter sets the Emitter of the outbox's own events (required).
func WithEmitter(e Emitter) Option { return func(o *options) { o.emitter = e } }

// WithSections gives discovery the monitors' sections of the configuration
// (WAN names for the labels, ddns.interface, IPv6 providers); without it
// the labels are "Primary"/"Standby" and the CGNAT check counts as not
// configured.
func WithSections(cfg *config.Config) Option { return func(o *options) { o.sections = cfg } }

// WithBackoff sets the delay after n consecutive failures, both for
// reconnecting and for resending after a publish error (default 1 s
// doubling to 1 min, with jitter).
func WithBackoff(f func(n int) time.Duration) Option { return func(o *options) { o.backoff = f } }

// WithBirthDelay sets the random delay between Home Assistant's birth
// message and the re-publication of discovery (default 1–3 s).
func WithBirthDelay(min, max time.Duration) Option {
	return func(o *options) { o.birthDelay = [2]time.Duration{min, max} }
}

// WithStateInterval sets the shortest interval between two publications of
// the retained monitor states (default 200 ms): during a backlog they are
// published at that rate, not once per event.
func WithStateInterval(d time.Duration) Option { return func(o *options) { o.stateInterval = d } }

// WithAgentStateInterval sets how often BASE/agent/state is refreshed when
// it changed (default 30 s).
func WithAgentStateInterval(d time.Duration) Option { return func(o *options) { o.agentInterval = d } }

// WithTicker sets the source of the agent-state refresh ticks (default:
// probe.TimeTicks, a time.Ticker). imon's is the probe engine's (probe.Engine.Every): the
// refresh lands on the tick of the probes and shares their wakeup.
func WithTicker(every func(ctx context.Context, period time.Duration) <-chan time.Time) Option {
	return func(o *options) { o.every = every }
}

// WithJournalSize sets the function giving the journal's size on disk for
// the diagnostics (default: none, not published).
func WithJournalSize(f func() int64) Option { return func(o *options) { o.journalSize = f } }

// WithHealth sets the function giving the agent's degraded state for
// BASE/agent/state (problem, problems); call HealthChanged when it
// changes.
func WithHealth(f func() (bool, []string)) Option { return func(o *options) { o.health = f } }

// Outbox is the MQTT publisher of one instance. Create it with New; the
// agent runs it as a consumer (Name, Run).
type Outbox struct {
	cfg      config.MQTT
	ha       config.HomeAssistant
	hac      homeassistant.Config
	enabled  map[string]bool
	instance string
	version  string
	j        Journal
	log      *slog.Logger
	opt      options

	eventTopic string

	// The ping minute statistics (BASE/ping/minute), owned by the
	// publishRetained goroutine: rounds folded up to pingSeq, and a
	// completed minute not published yet.
	pingWin     homeassistant.MinuteWindow
	pingSeq     uint64
	pingPending []byte

	cmds   chan []byte
	births chan struct{}
	dirty  chan struct{} // cap 1: a monitor state may have changed
	errs   chan struct{} // cap 1: lastErr changed
	status chan mqtt.Status

	mu        sync.Mutex // guards the following
	lastErr   string
	lastErrAt time.Time
	dropped   int // commands dropped because the queue was full

	trimJournaled uint64 // the last event whose trim was journaled (pump only)
}

// New returns the outbox for an instance. enabled lists the monitors that
// run ("updown", "ping", "ddns", "failover"). Empty TopicPrefix, NodeID,
// ClientID, KeepAlive and DiscoveryPrefix get their defaults (the config
// loader normally fills them). It returns ErrDisabled when cfg.Enable is
// false, and an error for an invalid server URL; it does no I/O.
func New(cfg config.MQTT, ha config.HomeAssistant, enabled []string, instance, version string, j Journal, logger *slog.Logger, opts ...Option) (*Outbox, error) {
	if !cfg.Enable {
		return nil, ErrDisabled
	}
	if j == nil {
		return nil, errors.New("outbox: nil journal")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = config.DefaultTopicPrefix
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = config.DefaultNodeID(host, config.ReadMachineID(), instance)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = config.DefaultClientIDPrefix + cfg.NodeID
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = config.DefaultKeepAlive
	}
	if ha.DiscoveryPrefix == "" {
		ha.DiscoveryPrefix = config.DefaultDiscoveryPrefix
	}
	if _, err := mqtt.ParseServer(cfg.Server); err != nil {
		return nil, err
	}
	o := &Outbox{
		cfg:      cfg,
		ha:       ha,
		hac:      homeassistant.FromConfig(cfg, ha, enabled, instance, version),
		enabled:  map[string]bool{},
		instance: instance,
		version:  version,
		j:        j,
		log:      logger.With("consumer", CursorName),
		opt: options{
			backoff:       mqtt.DefaultBackoff,
			birthDelay:    [2]time.Duration{time.Second, 3 * time.Second},
			stateInterval: 200 * time.Millisecond,
			agentInterval: 30 * time.Second,
			every:         probe.TimeTicks,
		},
	}
	for _, m := range enabled {
		o.enabled[m] = true
	}
	for _, f := range opts {
		f(&o.opt)
	}
	if o.opt.emitter == nil {
		return nil, errors.New("outbox: no emitter of its events (WithEmitter)")
	}
	o.hac = o.hac.WithSections(o.opt.sections)
	// The minute statistics start with the latest round journaled.
	o.pingSeq = j.LastSeq()
	if ev, ok := j.Latest(event.MonitorPing); ok {
		o.pingSeq = ev.Seq - 1
	}
	o.eventTopic = o.hac.Base() + "/event"
	return o, nil
}

// Name implements the agent's Consumer: the cursor name "mqtt".
func (o *Outbox) Name() string { return CursorName }

// Base is the instance's MQTT base topic, <topic-prefix>/<node-id>.
func (o *Outbox) Base() string { return o.hac.Base() }

// Run publishes until ctx ends: it connects (retrying with backoff while
// the broker is unreachable), publishes the journal from the cursor on,
// and on return has published "offline" and disconnected. It returns nil
// when ctx ends; it never gives up on a broker.
func (o *Outbox) Run(ctx context.Context) error {
	o.cmds = make(chan []byte, commandQueue)
	o.births = make(chan struct{}, 1)
	o.dirty = make(chan struct{}, 1)
	o.errs = make(chan struct{}, 1)
	o.status = make(chan mqtt.Status, 256)

	client, err := mqtt.New(o.clientConfig())
	if err != nil {
		return fmt.Errorf("mqtt client: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = client.Run(ctx) })
	wg.Go(func() { o.handleCommands(ctx) })
	wg.Go(func() { o.handleStatus(ctx) })
	o.publishLoop(ctx, client)
	cancel()
	wg.Wait()
	return nil
}

// clientConfig is the MQTT client's configuration.
func (o *Outbox) clientConfig() mqtt.Config {
	ccfg := mqtt.Config{
		Server:       o.cfg.Server,
		ClientID:     o.cfg.ClientID,
		Username:     o.cfg.Username,
		PasswordFile: o.cfg.PasswordFile,
		CAFile:       o.cfg.CAFile,
		KeepAlive:    o.cfg.KeepAlive,
		StatusTopic:  o.hac.StatusTopic(),
		OnMessage:    o.onMessage,
		OnStatus:     o.onStatus,
		Backoff:      o.opt.backoff,
		Logger:       o.log,
	}
	if o.cfg.Commands {
		// RetainHandling 2: a retained command is never replayed on
		// (re)subscribe; NoLocal: our own publications are not commands.
		ccfg.Subscriptions = append(ccfg.Subscriptions, mqtt.Subscription{Topic: o.hac.CommandTopic(), QoS: 1, NoLocal: true, RetainHandling: 2})
	}
	if o.ha.Enable {
		ccfg.Subscriptions = append(ccfg.Subscriptions, mqtt.Subscription{Topic: o.hac.BirthTopic(), QoS: 1, RetainHandling: 2})
	}
	return ccfg
}

// onMessage runs on the client's receive goroutine: it only hands over.
func (o *Outbox) onMessage(m mqtt.Message) {
	switch m.Topic {
	case o.hac.CommandTopic():
		select {
		case o.cmds <- m.Payload:
		default:
			o.mu.Lock()
			o.dropped++
			n := o.dropped
			o.mu.Unlock()
			if n == 1 || n%1000 == 0 {
				o.log.Warn("mqtt command queue full, commands dropped", "dropped", n)
			}
		}
	case o.hac.BirthTopic():
		if string(m.Payload) == mqtt.StatusOnline {
			select {
			case o.births <- struct{}{}:
			default:
			}
		}
	}
}

func (o *Outbox) onStatus(st mqtt.Status) {
	select {
	case o.status <- st:
	default: // 256 unprocessed reports: the handler is far behind; the next one will do
	}
}

// setError records the latest problem for BASE/agent/state.
func (o *Outbox) setError(err error) {
	o.mu.Lock()
	changed := o.lastErr != err.Error()
	o.lastErr, o.lastErrAt = err.Error(), time.Now()
	o.mu.Unlock()
	if changed {
		signal(o.errs)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// publishLoop runs one round per connection (serve) until ctx ends.
func (o *Outbox) publishLoop(ctx context.Context, client *mqtt.Client) {
	failures := 0
	lastLogged := ""
	for {
		cn, err := client.Connected(ctx)
		if err != nil {
			return
		}
		err = o.serve(ctx, cn)
		if ctx.Err() != nil {
			return
		}
		select {
		case <-cn.Done(): // the connection ended: the client reconnects
			failures = 0
			continue
		default:
		}
		// The connection is up but the round failed (a refused message,
		// a stalled broker, a journal error): resend from the cursor after
		// a backoff.
		failures++
		o.setError(err)
		if err.Error() != lastLogged {
			o.log.Warn("mqtt publishing failed, resending from the cursor", "err", err, "cursor", o.j.Cursor(CursorName))
			lastLogged = err.Error()
		}
		t := time.NewTimer(o.opt.backoff(failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-cn.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// pending is an event sent and not yet acknowledged.
type pending struct {
	seq uint64
	ack *mqtt.Ack
}

// serve publishes on one connection until it fails: this goroutine pumps
// the journal to the broker (pump), another publishes the retained topics.
func (o *Outbox) serve(ctx context.Context, cn *mqtt.Conn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-cn.Done():
			cancel(mqtt.ErrConnectionLost)
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() { o.publishRetained(ctx, cn) })
	if err := o.pump(ctx, cn); err != nil {
		cancel(err)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return errors.New("publishing stopped") // not reached: a round ends by an error or ctx
}

// pump reads the journal from the cursor on and sends each event, in
// order, keeping up to the window's size of them in flight; it advances the
// cursor over the acknowledged prefix as the PUBACKs come back. The window
// is refilled one message per acknowledgement: refilling in bursts (after
// half of it was acknowledged) would batch better, but it stalls against
// brokers with Nagle's algorithm on, Mosquitto's default, which hold back
// their next PUBACKs until our TCP ACK, delayed 40 ms while we send
// nothing that could carry it. One goroutine does it all, so an
// acknowledgement costs one wake-up, not a hand-over between goroutines.
// It returns nil when ctx ends, else why the round failed.
func (o *Outbox) pump(ctx context.Context, cn *mqtt.Conn) error {
	size := min(max(int(cn.ReceiveMaximum()), 1), maxWindow)
	window := make([]pending, 0, size) // in send order

	// acked pops the acknowledged head of the window; with wait it blocks
	// for the head's answer.
	acked := func(wait bool) error {
		n := 0
		for n < len(window) {
			p := window[n]
			if ok, err := p.ack.Ready(); !ok {
				if !wait || n > 0 {
					break
				}
				if err := p.ack.Wait(ctx); err != nil {
					return fmt.Errorf("event %d: %w", p.seq, err)
				}
			} else if err != nil {
				return fmt.Errorf("event %d: %w", p.seq, err)
			}
			n++
		}
		if n > 0 {
			o.j.SetCursor(CursorName, window[n-1].seq)
			window = window[:copy(window, window[n:])]
		}
		return nil
	}

	_, err := o.j.Follow(ctx, o.j.Cursor(CursorName)+1, event.Follower{
		Batch: readBatch,
		Events: func(ctx context.Context, evs []event.Event) (int, error) {
			n := len(evs)
			for len(evs) > 0 {
				if err := acked(len(window) == size); err != nil {
					return 0, err
				}
				if len(window) == size {
					continue
				}
				// A burst: as many events as the window has room for, held
				// by a cork so that they leave in one write.
				cn.Cork()
				err := o.sendBurst(ctx, cn, &evs, &window, size)
				cn.Uncork()
				if err != nil {
					return 0, err
				}
			}
			return n, nil
		},
		// Caught up: collect the acks still due (the head's, then read
		// again), then wait for the journal.
		Idle: func(context.Context) (bool, error) {
			if len(window) > 0 {
				return false, acked(true)
			}
			return true, nil
		},
		// Events retention deleted, or on damaged pages (the journal
		// journals journal-damaged), are skipped.
		Gap: func(_ context.Context, g event.Gap) error {
			if len(window) == 0 {
				o.j.SetCursor(CursorName, g.Last)
			}
			return nil
		},
	})
	return o.roundErr(ctx, err)
}

// sendBurst sends events from buf while the window has room.
func (o *Outbox) sendBurst(ctx context.Context, cn *mqtt.Conn, buf *[]event.Event, window *[]pending, size int) error {
	for len(*buf) > 0 && len(*window) < size {
		ev := (*buf)[0]
		*buf = (*buf)[1:]
		m, trimmed, ok, err := o.eventMessage(ev, cn.MaxPacketSize())
		if err != nil {
			return err
		}
		if len(trimmed) > 0 {
			// Never a stuck stream: an event the broker cannot take goes
			// out trimmed (or, below any sensible limit, not at all).
			full, _ := ev.MarshalJSON()
			o.journalTrim(ctx, ev, len(full), cn.MaxPacketSize(), trimmed, ok)
		}
		if !ok {
			if len(*window) == 0 {
				o.j.SetCursor(CursorName, ev.Seq)
			}
			continue
		}
		a, err := cn.Send(ctx, m)
		if err != nil {
			return fmt.Errorf("sending event %d: %w", ev.Seq, err)
		}
		*window = append(*window, pending{seq: ev.Seq, ack: a})
		if len(ev.State) > 0 && o.enabled[ev.Monitor] {
			signal(o.dirty)
		}
	}
	return nil
}

// roundErr is nil when ctx ended (the round is over anyway), else err.
func (o *Outbox) roundErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// enabledStateMonitors lists the enabled monitors whose state is
// published, in a stable order.
func (o *Outbox) enabledStateMonitors() []string {
	var out []string
	for _, m := range stateMonitors {
		if o.enabled[m] {
			out = append(out, m)
		}
	}
	return out
}

// HealthChanged republishes BASE/agent/state soon (the agent's degraded
// state changed; see WithHealth). It never blocks.
func (o *Outbox) HealthChanged() { signal(o.errs) }
