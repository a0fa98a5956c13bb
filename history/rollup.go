package history

import (
	"math"
	"time"
)

// Subjects of the rollups.
const (
	// SubjectInternet is the internet as the updown monitor sees it.
	SubjectInternet = "internet"
	// SubjectPrimary and SubjectStandby are the failover monitor's WANs.
	SubjectPrimary = "wan:primary"
	SubjectStandby = "wan:standby"
	// SubjectActive is the active WAN: up while imon's default route
	// uses a WAN that is up (Standby counts the part on the standby),
	// down while both WANs are down.
	SubjectActive = "active"
	// SubjectPing holds the ping monitor's statistics.
	SubjectPing = "ping"
	// SubjectIP holds the external IP changes (ddns monitor).
	SubjectIP = "ip"
)

// Status values of a subject.
const (
	Up      = "up"
	Down    = "down"
	Unknown = "unknown"
)

// Bounds of one day's lists: beyond them only the counts grow.
const (
	MaxOutagesPerDay   = 200
	MaxFailoversPerDay = 200
	MaxIPChangesPerDay = 100
)

// Day is the rollup of one subject over one local day.
type Day struct {
	Date    string `json:"date"`    // YYYY-MM-DD, local
	Subject string `json:"subject"` // one of the Subject constants
	// Start is the local midnight that begins the day (Unix ms); the day
	// ends at the next local midnight (23, 24 or 25 hours later).
	Start int64 `json:"start_ms"`
	End   int64 `json:"end_ms"`
	// Hours has one slot per hour since local midnight (23 to 25 slots).
	Hours []Slot `json:"hours"`
	// Outages that started this day (complete or, for the latest, open).
	Outages     []Outage `json:"outages,omitempty"`
	OutageCount int      `json:"outage_count,omitempty"`
	// Failovers (SubjectActive): switches of the active WAN this day.
	Failovers     []Failover `json:"failovers,omitempty"`
	FailoverCount int        `json:"failover_count,omitempty"`
	// IPChanges (SubjectIP) this day.
	IPChanges     []IPChange `json:"ip_changes,omitempty"`
	IPChangeCount int        `json:"ip_change_count,omitempty"`
	// Hist (SubjectPing) counts the rounds' average RTTs (alive rounds) in
	// logarithmic buckets, see HistBucket.
	Hist []uint32 `json:"hist,omitempty"`
}

// Slot is one hour of a Day. Milliseconds of each status; Standby is the
// part of Up spent on the standby WAN (SubjectActive).
type Slot struct {
	Up      int64 `json:"up_ms,omitempty"`
	Down    int64 `json:"down_ms,omitempty"`
	Unknown int64 `json:"unknown_ms,omitempty"`
	Standby int64 `json:"standby_ms,omitempty"`
	// Ping rounds (SubjectPing): count, rounds with a reply, sums of
	// loss fraction, average RTT (alive rounds) and jitter (alive rounds).
	Rounds   int     `json:"rounds,omitempty"`
	Alive    int     `json:"alive,omitempty"`
	LossSum  float64 `json:"loss_sum,omitempty"`
	RTTSum   float64 `json:"rtt_sum_ms,omitempty"`
	JitSum   float64 `json:"jitter_sum_ms,omitempty"`
	RTTMaxMs float64 `json:"rtt_max_ms,omitempty"`
}

// Add adds o to s.
func (s *Slot) Add(o Slot) {
	s.Up += o.Up
	s.Down += o.Down
	s.Unknown += o.Unknown
	s.Standby += o.Standby
	s.Rounds += o.Rounds
	s.Alive += o.Alive
	s.LossSum += o.LossSum
	s.RTTSum += o.RTTSum
	s.JitSum += o.JitSum
	s.RTTMaxMs = max(s.RTTMaxMs, o.RTTMaxMs)
}

// Outage is one down period of a subject.
type Outage struct {
	Start int64 `json:"start_ms"`
	// End is 0 while the outage lasts.
	End int64 `json:"end_ms,omitempty"`
	// Addping is what the addping hosts answered when the internet went
	// down (updown with addping configured): where the path broke.
	Addping []Addping `json:"addping,omitempty"`
	// Reason is why a WAN went down (failover).
	Reason string `json:"reason,omitempty"`
}

// Addping is one addping host's answer.
type Addping struct {
	IP    string  `json:"ip"`
	Alive bool    `json:"alive"`
	RTTms float64 `json:"rtt_ms,omitempty"`
}

// Failover is one switch of the active WAN.
type Failover struct {
	At     int64  `json:"at_ms"`
	From   string `json:"from"` // primary, standby or none
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
	// StandbyMS is, for a switch to the standby, how long the standby
	// stayed active (set when it stops being active; 0 while it is).
	StandbyMS int64 `json:"standby_ms,omitempty"`
}

// IPChange is one change of the external address.
type IPChange struct {
	At  int64  `json:"at_ms"`
	New string `json:"new"`
	Old string `json:"old"`
	V6  bool   `json:"v6,omitempty"`
}

// Histogram: HistBuckets logarithmic buckets of RTT; bucket i holds
// [histBase·histRatio^(i-1), histBase·histRatio^i) ms, bucket 0 everything
// below histBase, the last everything above.
const (
	HistBuckets = 64
	histBase    = 0.1 // ms
	histRatio   = 1.2
)

var logRatio = math.Log(histRatio)

// HistBucket is the bucket of an RTT in ms.
func HistBucket(ms float64) int {
	if ms < histBase {
		return 0
	}
	i := int(math.Log(ms/histBase)/logRatio) + 1
	return min(i, HistBuckets-1)
}

// HistValue is the representative RTT of bucket i (its geometric middle).
func HistValue(i int) float64 {
	if i <= 0 {
		return histBase / 2
	}
	return histBase * math.Pow(histRatio, float64(i)-0.5)
}

// Quantile returns the q-quantile (0..1) of the histogram h, 0 when empty.
func Quantile(h []uint32, q float64) float64 {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var acc uint64
	for i, c := range h {
		acc += uint64(c)
		if acc >= rank {
			return HistValue(i)
		}
	}
	return HistValue(len(h) - 1)
}

// Total sums the day's slots.
func (d *Day) Total() Slot {
	var t Slot
	for _, s := range d.Hours {
		t.Add(s)
	}
	return t
}

// dayOf returns the local day containing t (Unix ms): its date, its start
// and its end (Unix ms).
func dayOf(ms int64, loc *time.Location) (date string, start, end int64) {
	t := time.UnixMilli(ms).In(loc)
	y, m, d := t.Date()
	s := time.Date(y, m, d, 0, 0, 0, 0, loc)
	e := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	return s.Format("2006-01-02"), s.UnixMilli(), e.UnixMilli()
}

// Availability is up/(up+down), or -1 when nothing was up or down.
func (s Slot) Availability() float64 {
	if s.Up+s.Down == 0 {
		return -1
	}
	return float64(s.Up) / float64(s.Up+s.Down)
}
