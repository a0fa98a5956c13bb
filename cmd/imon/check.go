package main

import (
	"errors"
	"fmt"
	"os"

	"imon/config"
	"imon/journal"
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
		// Another program's file at journal.path is refused at start, never
		// taken over: say so now.
		if err := journal.CheckFile(cfg.Journal.Path); errors.Is(err, journal.ErrNotJournal) {
			problems = append(problems, config.Problem{File: cfg.Path, Section: config.SectionJournal, Key: "path", Msg: err.Error()})
		}
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
