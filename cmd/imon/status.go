package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"time"

	"imon/agent"
	"imon/config"
	"imon/event"
	"imon/journal"
)

// Status is what `imon status` prints: the agent and each enabled monitor's
// state as journaled (the latest event that carries a State).
type Status struct {
	Instance string `json:"instance"`
	Agent    string `json:"agent"` // "running" or "not running"
	// Health is "ok" or "degraded" (a running agent only): degraded while
	// its journal cannot be written, it runs on the fallback journal, or a
	// monitor is being restarted; Problems says why. Routing and monitoring
	// go on.
	Health   string          `json:"health,omitempty"`
	Problems []agent.Problem `json:"problems,omitempty"`
	Version  string          `json:"version,omitempty"`
	PID      int             `json:"pid,omitempty"`
	// Goroutines, RSSBytes and HeapLiveBytes are the running agent's
	// goroutine count, resident memory (VmRSS) and live heap as of the last
	// garbage collection, for leak checks; absent when no agent runs. The
	// live heap is the leak signal: RSS also holds the heap's headroom until
	// the next collection and pages the runtime has not yet returned.
	Goroutines    int                      `json:"goroutines,omitempty"`
	RSSBytes      int64                    `json:"rss_bytes,omitempty"`
	HeapLiveBytes int64                    `json:"heap_live_bytes,omitempty"`
	Journal       journalStatus            `json:"journal"`
	Monitors      map[string]MonitorStatus `json:"monitors"`
	MQTT          json.RawMessage          `json:"mqtt,omitempty"`
}

type journalStatus struct {
	Path string `json:"path"`
	// Configured is the configured journal when the agent runs on a
	// fallback journal (Path).
	Configured string `json:"configured,omitempty"`
	FirstSeq   uint64 `json:"first_seq"`
	LastSeq    uint64 `json:"last_seq"`
}

// MonitorStatus is one monitor's latest journaled state.
type MonitorStatus struct {
	Seq   uint64          `json:"seq,omitempty"`
	Time  string          `json:"time,omitempty"`
	Kind  string          `json:"kind,omitempty"`
	Msg   string          `json:"msg,omitempty"`
	State json.RawMessage `json:"state"`
}

// statusJournal is what buildStatus reads.
type statusJournal interface {
	FirstSeq() uint64
	LastSeq() uint64
	Latest(monitor string) (event.Event, bool)
}

func buildStatus(cfg *config.Config, j statusJournal, names []string, running bool) Status {
	st := Status{
		Instance: cfg.Global.Instance,
		Agent:    "not running",
		Journal:  journalStatus{Path: cfg.Journal.Path, FirstSeq: j.FirstSeq(), LastSeq: j.LastSeq()},
		Monitors: map[string]MonitorStatus{},
	}
	if running {
		st.Agent, st.Version, st.PID = "running", versionString(), os.Getpid()
		st.Goroutines, st.RSSBytes, st.HeapLiveBytes = runtime.NumGoroutine(), selfRSS(), heapLive()
	}
	for _, n := range names {
		ms := MonitorStatus{State: json.RawMessage("null")}
		if ev, ok := j.Latest(n); ok {
			ms = MonitorStatus{Seq: ev.Seq, Time: ev.Time.UTC().Format(event.TimeFormat), Kind: ev.Kind, Msg: ev.Msg, State: ev.State}
		}
		st.Monitors[n] = ms
	}
	if ev, ok := j.Latest(event.MonitorMQTT); ok && cfg.MQTT.Enable {
		st.MQTT = ev.State
	}
	return st
}

// setHealth fills the running agent's health; path is the journal in use.
func (st *Status) setHealth(cfg *config.Config, path string, h agent.Health) {
	st.Health = "ok"
	if h.Degraded {
		st.Health = "degraded"
	}
	st.Problems = h.Problems
	if path != cfg.Journal.Path {
		st.Journal.Path, st.Journal.Configured = path, cfg.Journal.Path
	}
}

// selfRSS returns this process's resident set size (VmRSS of
// /proc/self/status) in bytes, 0 when it cannot be read.
func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "1234 kB"
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

func cmdStatus(args []string) error {
	var c commonFlags
	fs := newFlagSet("status", &c)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := c.loadForClient()
	if err != nil {
		return err
	}
	st, err := fetchStatus(cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Println(string(b))
		return nil
	}
	fmt.Print(formatStatus(st))
	return nil
}

// fetchStatus asks the running agent, or reads the journal when none runs.
func fetchStatus(cfg *config.Config) (Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := agent.Call(ctx, cfg.Journal.Socket, agent.Request{Cmd: "status"})
	if err == nil {
		if !r.OK {
			return Status{}, fmt.Errorf("agent: %s", r.Error)
		}
		var st Status
		if err := json.Unmarshal(r.Status, &st); err != nil {
			return Status{}, fmt.Errorf("agent status: %w", err)
		}
		return st, nil
	}
	if !errors.Is(err, agent.ErrNoAgent) {
		return Status{}, err
	}
	j, err := journal.Open(cfg.Journal.Path, journal.Options{ReadOnly: true})
	if err != nil {
		return Status{}, fmt.Errorf("no agent answers on %s, and reading the journal failed: %w", cfg.Journal.Socket, permissionHint(err, cfg.Journal.Path))
	}
	defer j.Close()
	return buildStatus(cfg, j, enabledMonitors(cfg), false), nil
}

func formatStatus(st Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "instance %s: agent %s", st.Instance, st.Agent)
	if st.PID != 0 {
		fmt.Fprintf(&b, " (pid %d, %s)", st.PID, st.Version)
	}
	if st.Health != "" {
		fmt.Fprintf(&b, ", %s", st.Health)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(&b, "\n  problem: %s: %s (since %s", p.What, p.Msg, p.Since.UTC().Format(event.TimeFormat))
		if p.What == "journal" {
			fmt.Fprintf(&b, ", %d events queued in memory, %d dropped", p.Queued, p.Dropped)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, "\njournal %s: events %d..%d", st.Journal.Path, st.Journal.FirstSeq, st.Journal.LastSeq)
	if st.Journal.Configured != "" {
		fmt.Fprintf(&b, " (FALLBACK: the configured journal %s could not be opened)", st.Journal.Configured)
	}
	b.WriteString("\n")
	names := make([]string, 0, len(st.Monitors))
	for n := range st.Monitors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := st.Monitors[n]
		if m.Seq == 0 && m.Time == "" {
			fmt.Fprintf(&b, "%s: no state yet\n", n)
			continue
		}
		seq := fmt.Sprintf("#%d", m.Seq)
		if m.Seq == 0 {
			seq = "not journaled yet"
		}
		fmt.Fprintf(&b, "%s: %s (%s %s %s)\n", n, m.Msg, seq, m.Time, m.Kind)
		b.WriteString(formatState(m.State, "  "))
	}
	if len(st.MQTT) > 0 {
		b.WriteString("mqtt:\n")
		b.WriteString(formatState(st.MQTT, "  "))
	}
	return b.String()
}

// formatState prints a state object's fields as "key: value" lines.
func formatState(raw json.RawMessage, indent string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return indent + string(raw) + "\n"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s%s: %s\n", indent, k, m[k])
	}
	return b.String()
}

// heapLive is the heap marked live by the last garbage collection, in
// bytes; 0 before the first collection.
func heapLive() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
