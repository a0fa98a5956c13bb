package command

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"imon/event"
)

// Limits bound what commands can do to the journal and the route.
type Limits struct {
	// Burst and Every make a token bucket per source ("cli", "mqtt"):
	// Burst commands at once, then one per Every. A command over the
	// budget is dropped (not journaled, not acted on) and counted.
	Burst int
	Every time.Duration
	// Window: the commands dropped from the first drop on, for Window,
	// are journaled as one command-throttled event when it ends.
	Window time.Duration
	// MinSwitch is the minimum time between two accepted commands that
	// change the mode (primary, standby, auto): a command that would change
	// it sooner is rejected. Repeating the current mode is always allowed.
	MinSwitch time.Duration
}

// DefaultLimits are the documented budget (docs/mqtt.md, "Command
// budget"): a burst of 5 commands per source, then one every 2 s; one
// command-throttled summary per minute of dropped commands; 10 s between
// mode changes.
var DefaultLimits = Limits{Burst: 5, Every: 2 * time.Second, Window: time.Minute, MinSwitch: 10 * time.Second}

// ErrTooSoon wraps Budget.Switch's refusal of a mode change that comes
// less than MinSwitch after the last one.
var ErrTooSoon = errors.New("too soon after the last mode change")

// Budget applies Limits. It is pure (the caller passes the time) and not
// safe for concurrent use.
type Budget struct {
	lim     Limits
	buckets map[string]bucket

	haveMode   bool
	lastMode   Mode
	lastChange time.Time

	open Throttled // the summary window in progress (Dropped > 0)
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewBudget returns a budget; zero fields of lim take DefaultLimits'.
func NewBudget(lim Limits) *Budget {
	if lim.Burst <= 0 {
		lim.Burst = DefaultLimits.Burst
	}
	if lim.Every <= 0 {
		lim.Every = DefaultLimits.Every
	}
	if lim.Window <= 0 {
		lim.Window = DefaultLimits.Window
	}
	if lim.MinSwitch < 0 {
		lim.MinSwitch = 0
	} else if lim.MinSwitch == 0 {
		lim.MinSwitch = DefaultLimits.MinSwitch
	}
	return &Budget{lim: lim, buckets: map[string]bucket{}}
}

// Limits returns the limits in force.
func (b *Budget) Limits() Limits { return b.lim }

// Take spends a token of source's bucket at now. ok is false when the
// bucket is empty: the command is dropped and counted. When that drop
// opened a summary window, closeAt is when the caller must call Close
// (zero otherwise).
func (b *Budget) Take(source string, now time.Time) (ok bool, closeAt time.Time) {
	if b.spend(source, b.lim.Every, now) {
		return true, time.Time{}
	}
	return false, b.count(source, now, &b.open.Dropped)
}

// rejectedKey is the bucket of journaled rejections, shared by all sources.
const rejectedKey = "\x00rejected"

// Reject is called for a command that passed Take but is rejected (bad
// payload, failover disabled, too soon). Rejections are journaled one by
// one only within their own budget, shared by every source: Burst at
// once, then one per Window. ok is false when that budget is spent: the
// rejection is not journaled but counted in the summary window (closeAt
// as for Take), so that a client sending a steady stream of bad commands
// within the command budget adds one command-rejected and one
// command-throttled event a minute to the journal, not 30.
func (b *Budget) Reject(source string, now time.Time) (ok bool, closeAt time.Time) {
	if b.spend(rejectedKey, b.lim.Window, now) {
		return true, time.Time{}
	}
	return false, b.count(source, now, &b.open.Rejected)
}

// spend refills bucket key (one token per every, up to Burst) and takes a
// token if there is one.
func (b *Budget) spend(key string, every time.Duration, now time.Time) bool {
	bk, seen := b.buckets[key]
	if !seen {
		bk = bucket{tokens: float64(b.lim.Burst), at: now}
	}
	if el := now.Sub(bk.at); el > 0 {
		bk.tokens = math.Min(float64(b.lim.Burst), bk.tokens+float64(el)/float64(every))
	}
	bk.at = now
	ok := bk.tokens >= 1
	if ok {
		bk.tokens--
	}
	b.buckets[key] = bk
	return ok
}

// count adds one to the open summary window's counter n (Dropped or
// Rejected), opening the window first when none is; it returns when a
// window it opened must be closed (zero otherwise).
func (b *Budget) count(source string, now time.Time, n *int) (closeAt time.Time) {
	if b.open.Empty() {
		b.open = Throttled{From: now, Window: b.lim.Window, BySource: map[string]int{}}
		closeAt = now.Add(b.lim.Window)
	}
	*n++
	b.open.BySource[source]++
	b.open.To = now
	return closeAt
}

// Close ends the summary window and returns it (Empty: none was open).
func (b *Budget) Close() Throttled {
	t := b.open
	b.open = Throttled{}
	return t
}

// Switch checks an accepted command against MinSwitch at now and records
// it: nil when mode is the last accepted mode or the last change is at
// least MinSwitch ago, else an error wrapping ErrTooSoon saying how long to
// wait.
func (b *Budget) Switch(mode Mode, now time.Time) error {
	if b.haveMode && mode == b.lastMode {
		return nil
	}
	if b.haveMode {
		if wait := b.lastChange.Add(b.lim.MinSwitch).Sub(now); wait > 0 {
			return fmt.Errorf("%w (%s, %s ago; the minimum is %s): retry in %s", ErrTooSoon,
				b.lastMode, now.Sub(b.lastChange).Round(time.Millisecond), b.lim.MinSwitch, wait.Round(100*time.Millisecond))
		}
	}
	b.haveMode, b.lastMode, b.lastChange = true, mode, now
	return nil
}

// Throttled summarises the commands dropped over the budget in a window,
// and the rejections that were over their own budget (not journaled one
// by one).
type Throttled struct {
	Dropped  int
	Rejected int
	BySource map[string]int
	From, To time.Time // first and last drop
	Window   time.Duration
}

// Empty reports whether nothing was dropped or left unjournaled.
func (t Throttled) Empty() bool { return t.Dropped == 0 && t.Rejected == 0 }

// Event is the command-throttled event of the summary.
func (t Throttled) Event() event.Event {
	srcs := make([]string, 0, len(t.BySource))
	for _, s := range slices.Sorted(maps.Keys(t.BySource)) {
		srcs = append(srcs, fmt.Sprintf("%d from %s", t.BySource[s], s))
	}
	return event.New(event.MonitorAgent, event.KindCommandThrottled,
		fmt.Sprintf("Dropped %d failover commands over the command budget and %d rejected ones not journaled (%s) in %s", t.Dropped, t.Rejected, strings.Join(srcs, ", "), t.Window),
		map[string]any{"dropped": t.Dropped, "rejected": t.Rejected, "sources": t.BySource, "from": t.From.UTC(), "to": t.To.UTC(), "window_s": t.Window.Seconds()}).
		WithLevel(event.LevelWarn)
}
