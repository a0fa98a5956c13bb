package monitor_test

import (
	"context"
	"strings"
	"testing"

	"imon/agent/monitor"
)

type pinger interface{ Ping() }

type fake struct{}

func (fake) Ping() {}

// TestCheckDeps: every nil seam is named; a complete Deps passes, and
// non-seam fields (strings, numbers) are not checked.
func TestCheckDeps(t *testing.T) {
	type deps struct {
		Pinger pinger
		Open   func(context.Context) error
		Ptr    *int
		Name   string
	}
	err := monitor.CheckDeps(deps{})
	if err == nil || !strings.Contains(err.Error(), "Pinger, Open, Ptr") || strings.Contains(err.Error(), "Name") {
		t.Errorf("CheckDeps(zero) = %v, want Pinger, Open, Ptr named", err)
	}
	n := 1
	if err := monitor.CheckDeps(deps{Pinger: fake{}, Open: func(context.Context) error { return nil }, Ptr: &n}); err != nil {
		t.Errorf("CheckDeps(complete) = %v", err)
	}
	if err := monitor.CheckDeps(&n); err == nil {
		t.Error("CheckDeps(not a struct) succeeded")
	}
}
