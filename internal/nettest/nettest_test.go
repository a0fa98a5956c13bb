package nettest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
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
