package nettest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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

// TestRecorderLastStateAndEmitter: LastState is the latest event with a
// State; Emitter sets the instance and appends, and returns what was
// appended.
func TestRecorderLastStateAndEmitter(t *testing.T) {
	r := &Recorder{}
	ctx := t.Context()
	if ev := r.LastState(); ev.Kind != "" {
		t.Fatalf("LastState on an empty recorder: %v", ev.Kind)
	}
	_, _ = r.Emit(ctx, event.New("m", "s1", "", nil).WithState(map[string]any{"x": 1}))
	_, _ = r.Emit(ctx, event.New("m", "plain", "", nil))
	if ev := r.LastState(); ev.Kind != "s1" {
		t.Fatalf("LastState %q, want s1", ev.Kind)
	}
	j := &appendRecorder{}
	out, err := Emitter{J: j, Instance: "main"}.Emit(ctx, event.New("m", "k", "", nil))
	if err != nil || out.Seq != 1 || out.Instance != "main" || len(j.evs) != 1 || j.evs[0].Instance != "main" {
		t.Fatalf("Emitter: %+v, %v; appended %+v", out, err, j.evs)
	}
}

type appendRecorder struct{ evs []event.Event }

func (a *appendRecorder) Append(_ context.Context, evs ...event.Event) ([]event.Event, error) {
	for i := range evs {
		evs[i].Seq = uint64(len(a.evs) + 1)
		a.evs = append(a.evs, evs[i])
	}
	return evs, nil
}

// fakeTB records how a helper ended the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}

// Skipf and Fatalf end the goroutine, as testing's do.
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// in runs fn in its own goroutine (which Skipf or Fatalf may end).
func in(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// TestUnavailable: a missing prerequisite skips the test, naming it, or
// fails it under CI=true; NeedCmd names every missing program.
func TestUnavailable(t *testing.T) {
	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	in(func() { NeedCmd(f, "sh", "imon-no-such-program", "imon-nor-this") })
	if f.failed != "" || f.skipped != "imon-no-such-program, imon-nor-this not installed" {
		t.Errorf("without CI: skipped %q, failed %q", f.skipped, f.failed)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	in(func() { Unavailable(f, "no %s", "tmpfs") })
	if f.skipped != "" || f.failed != "no tmpfs; CI=true forbids skipping" {
		t.Errorf("with CI=true: skipped %q, failed %q", f.skipped, f.failed)
	}
	f = &fakeTB{TB: t}
	in(func() { NeedCmd(f, "sh") })
	if f.skipped != "" || f.failed != "" {
		t.Errorf("sh is installed: skipped %q, failed %q", f.skipped, f.failed)
	}
}
