package probe

// trackerWindow is how many recent probes a Tracker remembers. Outcomes
// older than this (by Seq) are ignored; streak lengths are capped by it.
const trackerWindow = 256

// Tracker folds the outcomes of one stream, which may arrive out of Seq
// order, into streaks counted in Seq order. The zero Tracker is ready to use;
// it is not safe for concurrent use.
//
// The streaks look back from the newest settled probe (the highest Seq with
// a known outcome). Probes still in flight below it are skipped: they are
// neither counted nor do they break a streak.
type Tracker struct {
	newest  uint64
	seen    [trackerWindow]uint64 // Seq stored in the slot, 0 = empty
	ok      [trackerWindow]bool
	last    Outcome // newest reply
	replied bool
}

// Reset forgets everything (a new stream starts at Seq 1 again).
func (t *Tracker) Reset() { *t = Tracker{} }

// Add records an outcome. Duplicates and outcomes too old for the window
// are ignored.
func (t *Tracker) Add(o Outcome) {
	if o.Seq == 0 || (t.newest >= trackerWindow && o.Seq <= t.newest-trackerWindow) {
		return
	}
	i := o.Seq % trackerWindow
	if t.seen[i] == o.Seq {
		return
	}
	t.seen[i] = o.Seq
	t.ok[i] = o.OK
	if o.Seq > t.newest {
		t.newest = o.Seq
	}
	if o.OK && (!t.replied || o.Seq > t.last.Seq) {
		t.last = o
		t.replied = true
	}
}

// Newest is the highest Seq with a known outcome (0 before the first).
func (t *Tracker) Newest() uint64 { return t.newest }

// LostStreak is the number of consecutive lost probes ending at the newest
// settled probe (0 if that one was answered).
func (t *Tracker) LostStreak() int { return t.streak(false) }

// OKStreak is the number of consecutive answered probes ending at the newest
// settled probe (0 if that one was lost).
func (t *Tracker) OKStreak() int { return t.streak(true) }

// LastReply returns the answered probe with the highest Seq.
func (t *Tracker) LastReply() (Outcome, bool) { return t.last, t.replied }

func (t *Tracker) streak(ok bool) int {
	n := 0
	for s := t.newest; s > 0 && t.newest-s < trackerWindow; s-- {
		i := s % trackerWindow
		if t.seen[i] != s {
			continue // in flight (or never reported): skipped
		}
		if t.ok[i] != ok {
			break
		}
		n++
	}
	return n
}
