package main

import (
	"runtime"
	"testing"

	"imon/config"
	"imon/event"
)

type emptyJournal struct{}

func (emptyJournal) FirstSeq() uint64                  { return 0 }
func (emptyJournal) LastSeq() uint64                   { return 0 }
func (emptyJournal) Latest(string) (event.Event, bool) { return event.Event{}, false }

// A running agent's status carries the figures leak checks read; a
// stopped one carries none of them.
func TestStatusLeakFigures(t *testing.T) {
	cfg := &config.Config{}
	runtime.GC()
	st := buildStatus(cfg, emptyJournal{}, nil, true)
	if st.Goroutines == 0 || st.RSSBytes == 0 || st.HeapLiveBytes == 0 {
		t.Errorf("running: goroutines %d, rss_bytes %d, heap_live_bytes %d; want all > 0", st.Goroutines, st.RSSBytes, st.HeapLiveBytes)
	}
	st = buildStatus(cfg, emptyJournal{}, nil, false)
	if st.Goroutines != 0 || st.RSSBytes != 0 || st.HeapLiveBytes != 0 {
		t.Errorf("not running: %+v, want no figures", st)
	}
}
