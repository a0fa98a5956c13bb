// Command cpufloor is a calibration load for BenchmarkCPUFloor: it does one
// thing that imon's probes also do, with no imon code around it, until it
// is killed, so that the benchmark can measure what that thing alone costs
// on the machine.
//
//	cpufloor -mode pro-bing -addr 127.0.0.1   one bare pro-bing pinger, 4 requests/s
//	cpufloor -mode ticker                     a Go ticker firing 25 times a second
//
// It exists to tell imon's own CPU use apart from the floor set by
// pro-bing's receive loop (a read deadline that grows to ~100 ms and is
// renewed on every timeout: about 20 wakeups a second per live pinger) and
// by the cost of a wakeup on the machine.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

func main() {
	mode := flag.String("mode", "pro-bing", "pro-bing or ticker")
	addr := flag.String("addr", "127.0.0.1", "address the pro-bing pinger pings")
	rate := flag.Int("rate", 0, "requests (pro-bing) or ticks (ticker) per second; default 4 and 25")
	flag.Parse()
	if err := run(*mode, *addr, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "cpufloor:", err)
		os.Exit(1)
	}
}

func run(mode, addr string, rate int) error {
	switch mode {
	case "pro-bing":
		if rate <= 0 {
			rate = 4
		}
		p := probing.New(addr)
		if err := p.Resolve(); err != nil {
			return fmt.Errorf("resolving %s: %w", addr, err)
		}
		p.SetPrivileged(true)
		p.RecordRtts = false
		p.RecordTTLs = false
		p.Interval = time.Second / time.Duration(rate)
		p.Count = -1
		return p.Run()
	case "ticker":
		if rate <= 0 {
			rate = 25
		}
		t := time.NewTicker(time.Second / time.Duration(rate))
		for range t.C {
		}
		return nil
	default:
		return fmt.Errorf("unknown mode %q: want pro-bing or ticker", mode)
	}
}
