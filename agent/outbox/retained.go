package outbox

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"imon/event"
	"imon/homeassistant"
	"imon/mqtt"
)

// publishRetained keeps the retained topics of one connection current: on
// connect the discovery configs (when Home Assistant is enabled), the state
// of every enabled monitor and BASE/agent/state; then the states whenever
// an event changed one (at most every stateInterval), discovery again after
// Home Assistant's birth message, and the agent state when an error
// happened or every agentInterval if it changed. Its failures are logged
// and retried at the next occasion; they never stop the event stream.
func (o *Outbox) publishRetained(ctx context.Context, cn *mqtt.Conn) {
	r := retained{o: o, cn: cn, states: map[string]uint64{}}
	r.discovery(ctx)
	r.clearDisabledStates(ctx)
	r.publishStates(ctx)
	r.agentState(ctx)
	r.availability(ctx)

	tctx, stop := context.WithCancel(ctx)
	defer stop()
	agentTick := o.opt.every(tctx, o.opt.agentInterval)
	var stateTimer <-chan time.Time // armed while a state update waits for the interval
	lastStates := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.dirty:
			if stateTimer != nil {
				continue
			}
			if wait := o.opt.stateInterval - time.Since(lastStates); wait > 0 {
				stateTimer = time.After(wait)
				continue
			}
			r.publishStates(ctx)
			lastStates = time.Now()
		case <-stateTimer:
			stateTimer = nil
			r.publishStates(ctx)
			lastStates = time.Now()
		case <-o.births:
			// Home Assistant (re)started: after a small random delay, as
			// its docs ask, availability, discovery, then every state.
			d := o.opt.birthDelay[0]
			if span := o.opt.birthDelay[1] - d; span > 0 {
				d += rand.N(span)
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			r.publish(ctx, mqtt.Message{Topic: o.hac.StatusTopic(), Payload: []byte(mqtt.StatusOnline), QoS: 1, Retain: true})
			r.discovery(ctx)
			clear(r.states)
			r.publishStates(ctx)
			r.lastAgent = nil
			r.agentState(ctx)
			r.lastAvail, r.availAt = nil, time.Time{}
			r.availability(ctx)
		case <-o.errs:
			r.agentState(ctx)
		case <-agentTick:
			r.agentState(ctx)
			r.availability(ctx)
		}
	}
}

// retained is the retained-topic state of one connection.
type retained struct {
	o         *Outbox
	cn        *mqtt.Conn
	states    map[string]uint64 // monitor -> seq of the state published
	lastAgent []byte
	lastAvail []byte    // availability payload last published
	availAt   time.Time // when it was last computed
	lastErr   string    // the last failure logged
}

// publishAll sends msgs pipelined (QoS 1, retained) and waits for every
// acknowledgement; it reports the first failure.
func (r *retained) publishAll(ctx context.Context, msgs []mqtt.Message) error {
	acks := make([]*mqtt.Ack, 0, len(msgs))
	var first error
	for _, m := range msgs {
		a, err := r.cn.Send(ctx, m)
		if err != nil {
			first = err
			break
		}
		acks = append(acks, a)
	}
	for _, a := range acks {
		if err := a.Wait(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (r *retained) publish(ctx context.Context, msgs ...mqtt.Message) bool {
	for i := range msgs {
		msgs[i].QoS, msgs[i].Retain = 1, true
	}
	err := r.publishAll(ctx, msgs)
	if err == nil {
		return true
	}
	if ctx.Err() != nil || errors.Is(err, mqtt.ErrConnectionLost) {
		return false
	}
	r.o.setError(err)
	if err.Error() != r.lastErr {
		r.o.log.Warn("mqtt retained publish failed", "err", err)
		r.lastErr = err.Error()
	}
	return false
}

// discovery publishes the Home Assistant discovery configs (and removes
// those of disabled monitors).
func (r *retained) discovery(ctx context.Context) {
	if !r.o.ha.Enable {
		return
	}
	var msgs []mqtt.Message
	for _, m := range homeassistant.Discovery(r.o.hac) {
		msgs = append(msgs, mqtt.Message{Topic: m.Topic, Payload: m.Payload})
	}
	r.publish(ctx, msgs...)
}

// clearDisabledStates removes the retained state of monitors that are not
// enabled, so that no stale state outlives a disabled monitor.
func (r *retained) clearDisabledStates(ctx context.Context) {
	var msgs []mqtt.Message
	for _, m := range stateMonitors {
		if !r.o.enabled[m] {
			msgs = append(msgs, mqtt.Message{Topic: r.o.hac.StateTopic(m)})
		}
	}
	if !r.o.enabled[event.MonitorPing] {
		msgs = append(msgs, mqtt.Message{Topic: r.o.hac.PingMinuteTopic()})
	}
	r.publish(ctx, msgs...)
}

// publishStates publishes the latest journaled state of every enabled
// monitor that changed since it was last published on this connection.
func (r *retained) publishStates(ctx context.Context) {
	var msgs []mqtt.Message
	var seqs []uint64
	var mons []string
	for _, m := range r.o.enabledStateMonitors() {
		ev, ok := r.o.j.Latest(m)
		if !ok || len(ev.State) == 0 || r.states[m] == ev.Seq {
			continue
		}
		msgs = append(msgs, mqtt.Message{Topic: r.o.hac.StateTopic(m), Payload: ev.State})
		seqs = append(seqs, ev.Seq)
		mons = append(mons, m)
	}
	if len(msgs) > 0 && r.publish(ctx, msgs...) {
		for i, m := range mons {
			r.states[m] = seqs[i]
		}
	}
	r.pingMinute(ctx)
}

// pingMinute folds the ping rounds journaled since the last call into the
// minute statistics and publishes BASE/ping/minute when a minute is
// complete (the first round of the next minute arrived): Home Assistant's
// ping entities change at most once a minute, whatever the ping interval.
func (r *retained) pingMinute(ctx context.Context) {
	o := r.o
	if !o.enabled[event.MonitorPing] {
		return
	}
	latest, ok := o.j.Latest(event.MonitorPing)
	if ok && latest.Seq > o.pingSeq {
		for o.pingSeq < latest.Seq {
			evs, err := o.j.Read(o.pingSeq+1, readBatch)
			if err != nil || len(evs) == 0 {
				if err != nil {
					o.log.Debug("reading ping rounds", "err", err)
				}
				o.pingSeq = latest.Seq // trimmed or unreadable: skip them
				break
			}
			for _, ev := range evs {
				if ev.Seq > latest.Seq {
					break
				}
				o.pingSeq = ev.Seq
				if ev.Monitor != event.MonitorPing || ev.Kind != event.KindPingResult {
					continue
				}
				if m, done := o.pingWin.Add(ev.Time, ev.State); done {
					o.pingPending = m.JSON()
				}
			}
		}
	}
	if o.pingPending != nil && r.publish(ctx, mqtt.Message{Topic: o.hac.PingMinuteTopic(), Payload: o.pingPending}) {
		o.pingPending = nil
	}
}

// agentState publishes BASE/agent/state when it changed.
func (r *retained) agentState(ctx context.Context) {
	b := r.o.AgentState().JSON()
	if bytes.Equal(b, r.lastAgent) {
		return
	}
	if r.publish(ctx, mqtt.Message{Topic: r.o.hac.StateTopic(homeassistant.MonitorAgent), Payload: b}) {
		r.lastAgent = b
	}
}

// AgentState returns the agent's diagnostics as published on
// BASE/agent/state.
func (o *Outbox) AgentState() homeassistant.AgentState {
	last, cur := o.j.LastSeq(), o.j.Cursor(CursorName)
	s := homeassistant.AgentState{Version: o.version, Instance: o.instance, LastSeq: last}
	if last > cur {
		s.Backlog = last - cur
	}
	if o.opt.journalSize != nil {
		n := o.opt.journalSize()
		s.JournalBytes = &n
	}
	if o.opt.health != nil {
		s.Problem, s.Problems = o.opt.health()
	}
	o.mu.Lock()
	if o.lastErr != "" {
		s.LastError = o.lastErr
		at := o.lastErrAt
		s.LastErrorAt = &at
	}
	o.mu.Unlock()
	return s
}
