package backoff_test

import (
	"testing"
	"time"

	"imon/internal/backoff"
)

func TestDelay(t *testing.T) {
	p := backoff.Policy{Min: time.Second, Max: 10 * time.Second}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := p.Delay(n); got != w {
			t.Errorf("Delay(%d) = %v, want %v", n, got, w)
		}
	}
	// A huge n neither overflows nor loops long.
	if got := p.Delay(1 << 30); got != 10*time.Second {
		t.Errorf("Delay(2^30) = %v", got)
	}
	// Max below Min means Min.
	if got := (backoff.Policy{Min: 5 * time.Second, Max: time.Second}).Delay(3); got != 5*time.Second {
		t.Errorf("Max < Min: %v", got)
	}
}

func TestJitter(t *testing.T) {
	p := backoff.Policy{Min: time.Second, Max: 8 * time.Second, Jitter: 0.2}
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := p.Delay(2) // 2 s ± 20 %
		if d < 1600*time.Millisecond || d > 2400*time.Millisecond {
			t.Fatalf("Delay(2) = %v, outside 2 s ± 20 %%", d)
		}
		seen[d] = true
		if d := p.Delay(10); d > 8*time.Second || d < 6400*time.Millisecond {
			t.Fatalf("Delay(10) = %v, outside [6.4 s, 8 s]", d)
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct delays: no jitter", len(seen))
	}
}
