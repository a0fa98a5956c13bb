package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// sysmonSlack is the timer slack imon gives the Go runtime's sysmon thread.
//
// Sysmon sleeps while the process is idle; the first ordinary system call
// (a journal commit, a DNS query, an MQTT write) or runtime timer wakes
// it, and it then naps in 20 µs steps, each lengthened by the thread's
// timer slack (50 µs by default), for as long as a goroutine runs. On a
// daemon that sleeps between short bursts, those naps were about half of
// all its wakeups. With 1 ms of slack a burst costs one or two naps
// instead of ten to twenty; what sysmon does in its naps (take the
// processor back from a goroutine blocked in a system call, preempt one
// that runs for 10 ms) is at most a millisecond later. Measured on the
// failover testbed, same agent, 60 s before and after setting it
// (docs/bench.md): default intervals 8.1 → 4.3 context switches/s, all
// four monitors at interval 1 with MQTT 20.8 → 11.1.
const sysmonSlack = time.Millisecond

// relaxSysmon sets the timer slack of the runtime's sysmon thread to
// sysmonSlack, unless it is already at least that (the systemd unit sets
// TimerSlackNSec for every thread), and returns the thread's id.
//
// Sysmon is the first thread the runtime starts after the main one
// (runtime.main starts it before any package initialisation), so it is
// the thread whose id follows the process id most closely, thread ids
// being handed out in increasing order modulo pid_max. Reading or setting
// another thread's slack through /proc/TID/timerslack_ns needs
// CAP_SYS_NICE; the error says so.
func relaxSysmon() (int, error) {
	tid, err := sysmonThread()
	if err != nil {
		return 0, err
	}
	path := fmt.Sprintf("/proc/%d/timerslack_ns", tid)
	b, err := os.ReadFile(path)
	if err != nil {
		return tid, slackErr(err)
	}
	if ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && ns >= sysmonSlack.Nanoseconds() {
		return tid, nil
	}
	if err := os.WriteFile(path, []byte(strconv.FormatInt(sysmonSlack.Nanoseconds(), 10)), 0); err != nil {
		return tid, slackErr(err)
	}
	return tid, nil
}

// slackErr wraps an error reading or writing another thread's timer slack
// (both need CAP_SYS_NICE).
func slackErr(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("sysmon timer slack: %w (CAP_SYS_NICE needed; the systemd unit sets TimerSlackNSec instead)", err)
	}
	return fmt.Errorf("sysmon timer slack: %w", err)
}

// sysmonThread returns the id of the runtime's sysmon thread: of the
// process's threads other than the main one, the first started after it.
func sysmonThread() (int, error) {
	pid := os.Getpid()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("threads: %w", err)
	}
	pidMax := 1 << 22 // the kernel's largest pid_max
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			pidMax = n
		}
	}
	best, bestDist := 0, 0
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || tid == pid {
			continue
		}
		dist := ((tid-pid)%pidMax + pidMax) % pidMax
		if best == 0 || dist < bestDist {
			best, bestDist = tid, dist
		}
	}
	if best == 0 {
		return 0, errors.New("threads: only the main thread")
	}
	return best, nil
}
