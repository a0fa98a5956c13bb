package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"imon/event"
)

// KindJournalFull is journaled when the journal accepts appends again after
// a full disk (or a file at its size limit): one event per monitor whose
// events could not be journaled meanwhile, with Monitor set to that monitor,
// level warn, data {since, until, dropped, kinds, error} (until: the last
// append that failed; kinds: dropped events by kind) and, as State, the monitor's latest state among them, so
// that `imon status` and the retained MQTT state are current again. It is
// not an action-script command.
const KindJournalFull = "journal-full"

// DefaultJournalFullSettle is the default of Options.JournalFullSettle.
const DefaultJournalFullSettle = 10 * time.Second

// fullEpisode tracks one period during which appends failed for lack of
// space: monitors keep running (Emit reports success for their events, see
// Agent.Emit), and what they emitted is counted here. On a nearly full disk
// some commits still fit in pages bbolt freed, so single appends succeed
// now and then: the episode ends only once appends have succeeded for
// Options.JournalFullSettle without a failure.
type fullEpisode struct {
	mu       sync.Mutex // guards the fields below
	since    time.Time
	lastFail time.Time
	err      string
	byMon    map[string]*dropped

	open atomic.Bool // an episode is open: the next successful append ends it
}

// dropped counts the events of one monitor that were not journaled.
type dropped struct {
	count int
	kinds map[string]int
	state json.RawMessage // the latest State among them
}

// noSpace records ev as not journaled; the first one of an episode logs
// the condition (once per episode, not per event).
func (a *Agent) noSpace(ev event.Event, err error) {
	f := &a.full
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UTC()
	f.lastFail = now
	if f.byMon == nil {
		f.since, f.err, f.byMon = now, err.Error(), map[string]*dropped{}
		f.open.Store(true)
		a.log.Error("journal full: events are not journaled until space returns; monitoring continues", "err", err)
	}
	d := f.byMon[ev.Monitor]
	if d == nil {
		d = &dropped{kinds: map[string]int{}}
		f.byMon[ev.Monitor] = d
	}
	d.count++
	d.kinds[ev.Kind]++
	if len(ev.State) > 0 {
		d.state = ev.State
	}
}

// endFull runs after a successful append while an episode is open: once
// appends have succeeded for the settle time, it journals the episode's
// journal-full events and closes it. When that append fails, the episode
// stays open and a later success tries again.
func (a *Agent) endFull(ctx context.Context) {
	f := &a.full
	f.mu.Lock()
	defer f.mu.Unlock()
	until := time.Now().UTC()
	if f.byMon == nil || until.Sub(f.lastFail) < a.opt.JournalFullSettle {
		return
	}
	total := 0
	var evs []event.Event
	for _, mon := range slices.Sorted(maps.Keys(f.byMon)) {
		d := f.byMon[mon]
		total += d.count
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(d.kinds)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, d.kinds[k]))
		}
		ev := event.New(mon, KindJournalFull,
			fmt.Sprintf("Journal was full for %s: %d %s events were not journaled (%s)",
				f.lastFail.Sub(f.since).Round(time.Millisecond), d.count, mon, strings.Join(kinds, ", ")),
			map[string]any{
				"since": f.since.Format(event.TimeFormat), "until": f.lastFail.Format(event.TimeFormat),
				"dropped": d.count, "kinds": d.kinds, "error": f.err,
			}).WithLevel(event.LevelWarn)
		if len(d.state) > 0 {
			ev.State = d.state
		}
		ev.Instance = a.opt.Instance
		evs = append(evs, ev)
	}
	if _, err := a.opt.Journal.Append(ctx, evs...); err != nil {
		f.lastFail = until
		a.log.Debug("journaling the full-journal report failed; retrying later", "err", err)
		return
	}
	a.log.Warn("journal writable again", "since", f.since.Format(event.TimeFormat), "not_journaled", total)
	f.byMon = nil
	f.open.Store(false)
}
