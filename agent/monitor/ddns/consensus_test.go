package ddns_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"imon/agent/monitor/ddns"
)

var (
	ipX = netip.MustParseAddr("93.184.216.34")
	ipY = netip.MustParseAddr("1.2.3.4")
	ipZ = netip.MustParseAddr("104.18.0.0") // a valid, public lie
)

// v builds a vote: provider p of operator op answering a.
func v(p, op string, a netip.Addr) ddns.Vote { return ddns.Vote{Provider: p, Operator: op, Addr: a} }

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		votes    []ddns.Vote
		pending  []string
		quorum   int
		outcome  ddns.Outcome
		addr     netip.Addr
		agreed   []string
		final    bool
		hopeless bool
	}{
		{name: "nothing", quorum: 2, outcome: ddns.NoAnswer, final: true, hopeless: true},
		{name: "nothing yet", pending: []string{"a", "b"}, quorum: 2, outcome: ddns.NoAnswer},
		{name: "nothing yet, too few pending", pending: []string{"a"}, quorum: 2, outcome: ddns.NoAnswer, hopeless: true},
		{name: "three agree", quorum: 2,
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX), v("p3", "c", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1", "p2", "p3"}, final: true},
		{name: "two agree, third pending", quorum: 2, pending: []string{"c"},
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1", "p2"}, final: true},
		{name: "two agree, two pending could tie", quorum: 2, pending: []string{"c", "d"},
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1", "p2"}, final: false},
		{name: "two pending of one operator count once", quorum: 2, pending: []string{"c", "c"},
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1", "p2"}, final: true},
		{name: "lying provider outvoted", quorum: 2,
			votes:   []ddns.Vote{v("p1", "a", ipX), v("liar", "l", ipZ), v("p2", "b", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1", "p2"}, final: true},
		{name: "lying provider with one honest: split", quorum: 2,
			votes:   []ddns.Vote{v("p1", "a", ipX), v("liar", "l", ipZ)},
			outcome: ddns.Split, final: true, hopeless: true},
		{name: "split two against two", quorum: 2,
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX), v("p3", "c", ipY), v("p4", "d", ipY)},
			outcome: ddns.Split, final: true, hopeless: true},
		{name: "three-way split", quorum: 1,
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipY), v("p3", "c", ipZ)},
			outcome: ddns.Split, final: true, hopeless: true},
		{name: "one answer short of quorum", quorum: 2,
			votes:   []ddns.Vote{v("p1", "a", ipX)},
			outcome: ddns.NoQuorum, final: true, hopeless: true},
		{name: "one answer, one pending: still possible", quorum: 2, pending: []string{"b"},
			votes:   []ddns.Vote{v("p1", "a", ipX)},
			outcome: ddns.NoQuorum},
		{name: "two providers of one operator are one vote", quorum: 2,
			votes:   []ddns.Vote{v("dns", "cloudflare", ipX), v("http", "cloudflare", ipX)},
			outcome: ddns.NoQuorum, final: true, hopeless: true},
		{name: "operator with conflicting providers votes for each, once", quorum: 2,
			votes:   []ddns.Vote{v("dns", "cloudflare", ipX), v("http", "cloudflare", ipY), v("g", "google", ipY)},
			outcome: ddns.Accepted, addr: ipY, agreed: []string{"http", "g"}, final: true},
		{name: "majority beyond quorum", quorum: 2,
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX), v("p3", "c", ipY), v("p4", "d", ipY), v("p5", "e", ipY)},
			outcome: ddns.Accepted, addr: ipY, agreed: []string{"p3", "p4", "p5"}, final: true},
		{name: "quorum 1, one answer", quorum: 1,
			votes:   []ddns.Vote{v("p1", "a", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1"}, final: true},
		{name: "quorum 1, one answer, one pending", quorum: 1, pending: []string{"b"},
			votes:   []ddns.Vote{v("p1", "a", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1"}, final: false},
		{name: "quorum 0 counts as 1", quorum: 0,
			votes:   []ddns.Vote{v("p1", "a", ipX)},
			outcome: ddns.Accepted, addr: ipX, agreed: []string{"p1"}, final: true},
		{name: "quorum 3, two agree, one pending", quorum: 3, pending: []string{"c"},
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX)},
			outcome: ddns.NoQuorum},
		{name: "quorum 3, two agree, nothing pending", quorum: 3,
			votes:   []ddns.Vote{v("p1", "a", ipX), v("p2", "b", ipX)},
			outcome: ddns.NoQuorum, final: true, hopeless: true},
	}
	for _, tc := range tests {
		c := ddns.Decide(tc.votes, tc.pending, tc.quorum)
		if c.Outcome != tc.outcome || c.Addr != tc.addr || !slices.Equal(c.Agreed, tc.agreed) || c.Final != tc.final || c.Hopeless != tc.hopeless {
			t.Errorf("%s: Decide = %+v; want outcome %s addr %v agreed %v final %v hopeless %v",
				tc.name, c, tc.outcome, tc.addr, tc.agreed, tc.final, tc.hopeless)
		}
	}
}

// round is one simulated round: the votes, or nil for "no provider answered".
type round []ddns.Vote

func TestObserve(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	honest := func(a netip.Addr) round { return round{v("p1", "a", a), v("p2", "b", a), v("p3", "c", a)} }
	type want struct {
		change   string // "NEW OLD" or ""
		noUpdate bool
	}
	tests := []struct {
		name   string
		start  ddns.Track
		quorum int
		rounds []round
		want   []want
		addr   netip.Addr // confirmed address at the end
	}{
		{name: "first detection ever", quorum: 2,
			rounds: []round{honest(ipX), honest(ipX)},
			want:   []want{{change: ipX.String() + " unknown"}, {}}, addr: ipX},
		{name: "restart restore: unchanged address fires nothing", quorum: 2,
			start:  ddns.Track{Addr: ipX, ChangedAt: t0.Add(-time.Hour)},
			rounds: []round{honest(ipX)}, want: []want{{}}, addr: ipX},
		{name: "restart restore: changed address fires NEW OLD", quorum: 2,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{honest(ipY)}, want: []want{{change: ipY.String() + " " + ipX.String()}}, addr: ipY},
		{name: "change confirmed by consensus in one round", quorum: 2,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{{v("p1", "a", ipY), v("p2", "b", ipY), v("p3", "c", ipX)}},
			want:   []want{{change: ipY.String() + " " + ipX.String()}}, addr: ipY},
		{name: "lying provider never changes", quorum: 2,
			start: ddns.Track{Addr: ipX},
			rounds: []round{
				{v("p1", "a", ipX), v("liar", "l", ipZ), v("p2", "b", ipX)},
				{v("liar", "l", ipZ)},
				{v("liar", "l", ipZ), v("p1", "a", ipX)},
				{v("liar", "l", ipZ)},
			},
			want: []want{{}, {}, {}, {}}, addr: ipX},
		{name: "flip-flopping provider never changes", quorum: 2,
			start: ddns.Track{Addr: ipX},
			rounds: []round{
				{v("p1", "a", ipX), v("flip", "f", ipY)},
				{v("p1", "a", ipX), v("flip", "f", ipX)},
				{v("flip", "f", ipY)},
				{v("flip", "f", ipX)},
				{v("flip", "f", ipY)},
			},
			want: []want{{}, {}, {}, {}, {}}, addr: ipX},
		{name: "split votes change nothing", quorum: 2,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{{v("p1", "a", ipY), v("p2", "b", ipZ)}, {v("p1", "a", ipY), v("p2", "b", ipY), v("p3", "c", ipZ), v("p4", "d", ipZ)}},
			want:   []want{{}, {}}, addr: ipX},
		{name: "all time out: one no-update per streak, from its second round", quorum: 2,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{nil, nil, nil, nil, honest(ipX), nil, nil, nil},
			want:   []want{{}, {noUpdate: true}, {}, {}, {}, {}, {noUpdate: true}, {}}, addr: ipX},
		{name: "one failed round is a blip, not a streak", quorum: 2,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{nil, honest(ipX), nil, {v("p1", "a", ipX)}, nil, {v("p1", "a", ipY)}, nil},
			want:   []want{{}, {}, {}, {}, {}, {}, {}}, addr: ipX},
		{name: "partial answers neither end nor restart a streak", quorum: 2,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{nil, nil, {v("p1", "a", ipX)}, nil, nil, {v("p1", "a", ipY)}, nil, nil},
			want:   []want{{}, {noUpdate: true}, {}, {}, {}, {}, {}, {}}, addr: ipX},
		{name: "outage spanning a restart: no second report", quorum: 2,
			start:  ddns.Track{Addr: ipX, NoAnswer: true, NoAnswerSince: t0.Add(-time.Hour)},
			rounds: []round{nil, nil}, want: []want{{}, {}}, addr: ipX},
		{name: "new address after an outage", quorum: 2,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{nil, nil, honest(ipY)},
			want:   []want{{}, {noUpdate: true}, {change: ipY.String() + " " + ipX.String()}}, addr: ipY},
		{name: "single operator: change needs two consecutive rounds", quorum: 1,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{{v("p1", "a", ipY)}, {v("p1", "a", ipY)}, {v("p1", "a", ipY)}},
			want:   []want{{}, {change: ipY.String() + " " + ipX.String()}, {}}, addr: ipY},
		{name: "single operator: first detection needs two rounds", quorum: 1,
			rounds: []round{{v("p1", "a", ipX)}, {v("p1", "a", ipX)}},
			want:   []want{{}, {change: ipX.String() + " unknown"}}, addr: ipX},
		{name: "single operator flip-flopping never changes", quorum: 1,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{{v("p1", "a", ipY)}, {v("p1", "a", ipZ)}, {v("p1", "a", ipY)}, {v("p1", "a", ipX)}, {v("p1", "a", ipY)}},
			want:   []want{{}, {}, {}, {}, {}}, addr: ipX},
		{name: "single operator: a failed round breaks the confirmation", quorum: 1,
			start:  ddns.Track{Addr: ipX},
			rounds: []round{{v("p1", "a", ipY)}, nil, {v("p1", "a", ipY)}, {v("p1", "a", ipY)}},
			want:   []want{{}, {}, {}, {change: ipY.String() + " " + ipX.String()}}, addr: ipY},
	}
	for _, tc := range tests {
		tr := tc.start
		now := t0
		for i, r := range tc.rounds {
			var d ddns.Decision
			tr, d = tr.Observe(ddns.Decide(r, nil, tc.quorum), tc.quorum, now)
			got := want{noUpdate: d.NoUpdate}
			if d.Change {
				old := "unknown"
				if d.Old.IsValid() {
					old = d.Old.String()
				}
				got.change = d.New.String() + " " + old
				if !tr.ChangedAt.Equal(now) {
					t.Errorf("%s: round %d: ChangedAt = %v, want %v", tc.name, i, tr.ChangedAt, now)
				}
			}
			if got != tc.want[i] {
				t.Errorf("%s: round %d: got %+v, want %+v", tc.name, i, got, tc.want[i])
			}
			now = now.Add(10 * time.Second)
		}
		if tr.Addr != tc.addr {
			t.Errorf("%s: address %v, want %v", tc.name, tr.Addr, tc.addr)
		}
	}
}

func TestEffectiveQuorum(t *testing.T) {
	t.Parallel()
	tests := []struct{ configured, operators, want int }{
		{2, 3, 2}, {0, 3, 2}, {2, 1, 1}, {3, 2, 2}, {1, 5, 1}, {2, 0, 1}, {-1, 5, 2},
	}
	for _, tc := range tests {
		if got := ddns.EffectiveQuorum(tc.configured, tc.operators); got != tc.want {
			t.Errorf("EffectiveQuorum(%d, %d) = %d, want %d", tc.configured, tc.operators, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	const iv = 10 * time.Second
	tests := []struct {
		n     int
		limit time.Duration
		want  time.Duration
	}{
		{0, 5 * time.Minute, 0},
		{1, 5 * time.Minute, 10 * time.Second},
		{2, 5 * time.Minute, 20 * time.Second},
		{3, 5 * time.Minute, 40 * time.Second},
		{5, 5 * time.Minute, 160 * time.Second},
		{6, 5 * time.Minute, 5 * time.Minute},
		{1000, 5 * time.Minute, 5 * time.Minute},
		{4, time.Minute, time.Minute},
	}
	for _, tc := range tests {
		if got := ddns.Backoff(tc.n, iv, tc.limit); got != tc.want {
			t.Errorf("Backoff(%d, %v, %v) = %v, want %v", tc.n, iv, tc.limit, got, tc.want)
		}
	}
	// An interval longer than the limit is never shortened.
	if got := ddns.Backoff(3, 10*time.Minute, time.Minute); got != 10*time.Minute {
		t.Errorf("Backoff with interval above the limit = %v", got)
	}
}

func TestCGNATAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addrs []string
		want  string
	}{
		{nil, ""},
		{[]string{"192.168.1.2", "fe80::1"}, ""},
		{[]string{"fe80::1", "100.64.3.4"}, "100.64.3.4"},
		{[]string{"100.127.255.1"}, "100.127.255.1"},
		{[]string{"100.128.0.1", "100.63.0.1"}, ""},
	}
	for _, tc := range tests {
		var as []netip.Addr
		for _, s := range tc.addrs {
			as = append(as, netip.MustParseAddr(s))
		}
		a, ok := ddns.CGNATAddress(as)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("CGNATAddress(%v) = %q, want %q", tc.addrs, got, tc.want)
		}
	}
}

// TestObservePrevious: the first address learnt has no previous one (it is
// not a change: Home Assistant's "External IP changed" stays unknown); a
// real change keeps the replaced address.
func TestObservePrevious(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	honest := func(a netip.Addr) round { return round{v("p1", "a", a), v("p2", "b", a), v("p3", "c", a)} }
	var tr ddns.Track
	tr, _ = tr.Observe(ddns.Decide(honest(ipX), nil, 2), 2, now)
	if tr.Addr != ipX || tr.Previous.IsValid() {
		t.Fatalf("first address: %v, previous %v", tr.Addr, tr.Previous)
	}
	tr, _ = tr.Observe(ddns.Decide(honest(ipY), nil, 2), 2, now.Add(time.Minute))
	if tr.Addr != ipY || tr.Previous != ipX {
		t.Errorf("after a change: %v, previous %v, want %v", tr.Addr, tr.Previous, ipX)
	}
	tr, _ = tr.Observe(ddns.Decide(honest(ipY), nil, 2), 2, now.Add(2*time.Minute))
	if tr.Previous != ipX {
		t.Errorf("unchanged round lost the previous address: %v", tr.Previous)
	}
}
