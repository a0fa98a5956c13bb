package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"imon/agent"
	"imon/config"
)

func cmdCheck(args []string) error {
	var c commonFlags
	fs := newFlagSet("check", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	path := c.path()
	cfg, err := c.load()
	var problems config.Problems
	if err != nil && !errors.As(err, &problems) {
		return err
	}
	if cfg != nil {
		problems = append(problems, config.CheckHost(cfg)...)
		problems = append(problems, config.CheckInstances(cfg)...)
	}
	if len(problems) > 0 {
		for _, p := range problems.Capped() {
			fmt.Fprintln(os.Stderr, p.Error())
		}
		return fmt.Errorf("%s: %d problem(s)", path, problems.Count())
	}
	fmt.Printf("%s: OK (instance %s; monitors: %v)\n", path, cfg.Global.Instance, enabledMonitors(cfg))
	return nil
}

func cmdFailover(args []string) error {
	var c commonFlags
	fs := newFlagSet("failover", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("failover takes one of primary, standby, auto")
	}
	mode := fs.Arg(0)
	if mode != agent.ModePrimary && mode != agent.ModeStandby && mode != agent.ModeAuto {
		return usagef("failover mode %q: want primary, standby or auto", mode)
	}
	cfg, err := c.loadForClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := agent.Call(ctx, cfg.Journal.Socket, agent.Request{Cmd: "failover", Mode: mode})
	if err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("agent refused: %s (journaled as #%d)", r.Error, r.Seq)
	}
	fmt.Printf("failover %s: journaled as #%d\n", mode, r.Seq)
	return nil
}
