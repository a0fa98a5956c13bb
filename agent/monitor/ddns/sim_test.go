package ddns_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"imon/agent/monitor/ddns"
	"imon/agent/probe/extip"
	"imon/event"
)

// simRounds is the length of the false-change simulations.
const simRounds = 10000

// realChangeEvery is how often the simulated line really gets a new
// address, so that the simulation also proves real changes get through.
const realChangeEvery = 500

// badAnswer is what the random bad provider does in one round: the true
// address, a lie (a random public address, or the previous address), a
// rejected answer, a timeout or a refusal.
func badAnswer(rng *rand.Rand, truth, previous netip.Addr) behaviour {
	switch rng.IntN(7) {
	case 0:
		return answer(truth.String())
	case 1:
		return answer(randomPublic(rng).String())
	case 2:
		return answer(previous.String())
	case 3:
		return answer([]string{"1.2.3.4; reboot", "<html>login</html>", "10.0.0.1", "\x00garbage", "1.2.3.4 5.6.7.8"}[rng.IntN(5)])
	case 4:
		return blackhole
	case 5:
		return refused
	default:
		return answer(truth.String() + "\n")
	}
}

func randomPublic(rng *rand.Rand) netip.Addr {
	for {
		a := netip.AddrFrom4([4]byte{byte(rng.IntN(223) + 1), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(254) + 1)})
		if reason, _ := extip.Special(a); reason == "" {
			return a
		}
	}
}

// simResult counts what a simulation reported.
type simResult struct {
	falseChanges int // ddns-ip-update to an address the line did not have
	realChanges  int // real address changes in the simulation
	detected     int // ddns-ip-update to the true address
	late         int // real changes not reported within 3 rounds
}

func (r simResult) String() string {
	return fmt.Sprintf("false changes %d, real changes %d detected %d (late %d)", r.falseChanges, r.realChanges, r.detected, r.late)
}

// TestSimulatedRoundsNoFalseChange runs the real Monitor for 10,000 rounds
// with three providers, one of which lies or fails at random every round;
// in the harder variant the two honest ones also fail 20% of the time. No
// change event may name an address the line does not have, and every real
// change must be reported. Under -race or -short it runs 1,000 rounds (the
// pure simulation below always runs 10,000).
func TestSimulatedRoundsNoFalseChange(t *testing.T) {
	rounds := simRounds
	if raceEnabled || testing.Short() {
		rounds = 1000
	}
	for _, honestFail := range []float64{0, 0.2} {
		t.Run(fmt.Sprintf("honest-failure-%.0f%%", honestFail*100), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, uint64(honestFail*100)))
				n := newFakeNet()
				h := newHarness(t, three, n)
				truth := randomPublic(rng)
				previous := truth
				var res simResult
				var changedAt int
				setRound := func(i int) {
					if i > 0 && i%realChangeEvery == 0 {
						previous, truth = truth, randomPublic(rng)
						res.realChanges++
						changedAt = i
					}
					for _, p := range []string{pA, pB} {
						if rng.Float64() < honestFail {
							n.set(p, []behaviour{refused, blackhole}[rng.IntN(2)])
						} else {
							n.set(p, answer(truth.String()))
						}
					}
					n.set(pC, badAnswer(rng, truth, previous))
				}
				setRound(0)
				h.start(event.Event{})
				seen := 0
				for i := 1; i <= rounds; i++ {
					evs := h.j.Events()
					for _, ev := range evs[seen:] {
						if ev.Kind != event.KindDDNSIPUpdate {
							continue
						}
						if ev.Args[0] != truth.String() {
							res.falseChanges++
							t.Errorf("round %d: false change %v (truth %v)", i, ev.Args, truth)
						} else {
							res.detected++
							if i-changedAt > 3 && changedAt > 0 {
								res.late++
							}
						}
					}
					seen = len(evs)
					if i == rounds {
						break
					}
					setRound(i)
					h.next()
				}
				h.stop()
				t.Logf("%d rounds: %v", rounds, res)
				if res.falseChanges != 0 {
					t.Errorf("%d false change events", res.falseChanges)
				}
				if res.detected != res.realChanges+1 { // +1: the first detection
					t.Errorf("%d changes detected, want %d", res.detected, res.realChanges+1)
				}
				if honestFail == 0 && res.late != 0 {
					t.Errorf("%d real changes reported late", res.late)
				}
			})
		})
	}
}

// simulatePure runs rounds through the pure path (validation, Decide,
// Observe) without goroutines or clocks: the benchmark's workload.
func simulatePure(rng *rand.Rand, rounds int, honestFail float64) simResult {
	var res simResult
	truth := randomPublic(rng)
	previous := truth
	var tr ddns.Track
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	type p struct{ name, op string }
	honest := []p{{pA, "a.test"}, {pB, "b.test"}}
	for i := range rounds {
		if i > 0 && i%realChangeEvery == 0 {
			previous, truth = truth, randomPublic(rng)
			res.realChanges++
		}
		var votes []ddns.Vote
		for _, h := range honest {
			if rng.Float64() >= honestFail {
				votes = append(votes, ddns.Vote{Provider: h.name, Operator: h.op, Addr: truth})
			}
		}
		raw, err := badAnswer(rng, truth, previous)(canceled(ctx))
		if err == nil {
			if a, err := extip.ParseAnswer(raw, extip.IPv4, false); err == nil {
				votes = append(votes, ddns.Vote{Provider: pC, Operator: "c.test", Addr: a})
			}
		}
		var d ddns.Decision
		tr, d = tr.Observe(ddns.Decide(votes, nil, 2), 2, now)
		if d.Change {
			if d.New != truth {
				res.falseChanges++
			} else {
				res.detected++
			}
		}
		now = now.Add(10 * time.Second)
	}
	return res
}

// canceled returns an already cancelled context, so a blackhole behaviour
// returns at once.
func canceled(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	cancel(errors.New("simulated timeout"))
	return ctx
}

func TestSimulatePure(t *testing.T) {
	t.Parallel()
	for _, hf := range []float64{0, 0.2} {
		res := simulatePure(rand.New(rand.NewPCG(2, 3)), simRounds, hf)
		if res.falseChanges != 0 || res.detected != res.realChanges+1 {
			t.Errorf("honest failure %.0f%%: %v", hf*100, res)
		}
	}
}

// BenchmarkSimulatedRounds runs 10,000 rounds of three providers, one lying
// or failing at random, through validation, consensus and confirmation,
// and reports the false change events (target 0) alongside real changes.
func BenchmarkSimulatedRounds(b *testing.B) {
	for _, hf := range []float64{0, 0.2} {
		b.Run(fmt.Sprintf("honest-failure-%.0f%%", hf*100), func(b *testing.B) {
			var total simResult
			seed := uint64(0)
			for b.Loop() {
				seed++
				r := simulatePure(rand.New(rand.NewPCG(seed, 7)), simRounds, hf)
				total.falseChanges += r.falseChanges
				total.realChanges += r.realChanges
				total.detected += r.detected
			}
			runs := float64(seed)
			b.ReportMetric(float64(total.falseChanges)/runs, "false-changes/10k-rounds")
			b.ReportMetric(float64(total.detected)/runs, "changes-reported/10k-rounds")
			b.ReportMetric(float64(total.realChanges+int(seed))/runs, "changes-real/10k-rounds")
			if total.falseChanges != 0 {
				b.Errorf("%d false change events", total.falseChanges)
			}
		})
	}
}
