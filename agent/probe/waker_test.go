package probe

import (
	"testing"
	"time"
)

// TestWaker: an arming fires once, a reset replaces the previous arming
// (its expiry is not delivered), and close ends the reader.
func TestWaker(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		w := newWaker()
		if fallback {
			w.fallback(time.Hour) // as after a timerfd error
		} else if w.t != nil {
			t.Fatal("no timerfd on Linux")
		}
		start := time.Now()
		w.reset(20 * time.Millisecond)
		select {
		case <-w.c:
			if el := time.Since(start); el < 20*time.Millisecond {
				t.Errorf("fallback %v: fired after %v, armed for 20ms", fallback, el)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fallback %v: an arming of 20ms did not fire", fallback)
		}
		// A reset replaces the arming: the first one never fires.
		w.reset(50 * time.Millisecond)
		w.reset(time.Hour)
		time.Sleep(100 * time.Millisecond) // lets the replaced arming's time pass
		select {
		case <-w.c:
			t.Errorf("fallback %v: a replaced arming fired", fallback)
		default:
		}
		w.close()
		if w.done != nil {
			select {
			case <-w.done:
			default:
				t.Errorf("fallback %v: the reader goroutine runs after close", fallback)
			}
		}
	}
}
