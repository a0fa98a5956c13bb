package nettest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"imon/event"
)

// TestBuffer: concurrent writers and a reader (run with -race).
func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "%d\n", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 || b.Len() != 1600 {
		t.Fatalf("lines %d (want 800), len %d (want 1600)", n, b.Len())
	}
}

// TestEnterUnknown: entering a namespace that does not exist fails without
// running fn (nothing may run in the machine's own namespace instead).
func TestEnterUnknown(t *testing.T) {
	ran := false
	err := Enter("imon-nettest-no-such-ns", func() error { ran = true; return nil })
	if err == nil || ran {
		t.Fatalf("Enter: err %v, fn ran %v; want an error and fn not run", err, ran)
	}
	if !strings.Contains(err.Error(), "imon-nettest-no-such-ns") {
		t.Errorf("error %q does not name the namespace", err)
	}
}

// TestRecorder: seqs from 1, the instance set, Err refusing an event
// without recording it, C receiving what is recorded.
func TestRecorder(t *testing.T) {
	boom := errors.New("boom")
	r := &Recorder{Instance: "t", C: make(chan event.Event, 4),
		Err: func(ev event.Event) error {
			if ev.Kind == "bad" {
				return boom
			}
			return nil
		}}
	ctx := t.Context()
	if _, ok := r.Last(); ok {
		t.Fatal("Last on an empty recorder")
	}
	a, _ := r.Emit(ctx, event.New("m", "a", "", nil))
	if _, err := r.Emit(ctx, event.New("m", "bad", "", nil)); !errors.Is(err, boom) {
		t.Fatalf("Emit bad: %v, want boom", err)
	}
	b, _ := r.Emit(ctx, event.New("m", "b", "", nil))
	if a.Seq != 1 || b.Seq != 2 || b.Instance != "t" || b.Time.IsZero() {
		t.Fatalf("recorded %+v, %+v", a, b)
	}
	if got := r.Kinds(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Kinds %v", got)
	}
	if last, _ := r.Last(); last.Kind != "b" || len(r.C) != 2 {
		t.Fatalf("Last %v, C holds %d", last.Kind, len(r.C))
	}
}
