package main

import (
	"flag"
	"io"

	"imon/config"
)

// commonFlags are taken by every command (INTERFACE.md §1).
type commonFlags struct {
	instance string
	config   string
}

func newFlagSet(name string, c *commonFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("imon "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.instance, "instance", "", "instance `NAME` (default main; config /etc/default/imon-NAME)")
	fs.StringVar(&c.config, "config", "", "config file `PATH` (default /etc/default/imon-INSTANCE)")
	return fs
}

// parse parses args and turns flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// path is the config file the flags select.
func (c *commonFlags) path() string {
	if c.config != "" {
		return c.config
	}
	inst := c.instance
	if inst == "" {
		inst = "main"
	}
	return config.DefaultPath(inst)
}

// load loads and validates the selected config; --instance overrides the
// file's instance name. Like config.Load it returns the config along with
// its problems when the file is valid JSON (imon check runs the host
// checks on it too).
func (c *commonFlags) load() (*config.Config, error) {
	cfg, err := config.Load(c.path())
	if cfg != nil && c.instance != "" && cfg.Global.Instance != c.instance {
		cfg.SetInstance(c.instance)
	}
	return cfg, err
}

// loadForClient loads the config to find the journal and the control socket
// (journal, status, failover).
func (c *commonFlags) loadForClient() (*config.Config, error) {
	return c.load()
}
