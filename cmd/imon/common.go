package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"imon/agent"
	"imon/config"
)

// commonFlags are taken by every command (docs/commands.md).
type commonFlags struct {
	instance string
	config   string
}

func newFlagSet(name string, c *commonFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("imon "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("instance", "instance `NAME` (default main; config /etc/default/imon-NAME)", func(s string) error {
		// The name makes paths (/etc/default/imon-NAME, the journal, the
		// socket): the same rule as global.instance, so that it cannot
		// escape their folders.
		if err := config.CheckInstance(s); err != nil {
			return err
		}
		c.instance = s
		return nil
	})
	fs.Func("config", "config file `PATH` (default /etc/default/imon-INSTANCE)", func(s string) error {
		if s == "" {
			return errors.New("empty path")
		}
		c.config = s
		return nil
	})
	return fs
}

// errHelp is -h/--help: the usage on stdout, exit 0.
var errHelp = errors.New("help requested")

// parse parses args and turns flag errors into usage errors. Flags may
// come after the positional arguments too (imon failover standby
// --instance wan), as users write them; "--" ends the flags.
func parse(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelp
			}
			return usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...) // all after "--" is positional
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments in fs.Args().
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
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
	if cfg == nil && errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("reading config %s: %w", c.path(), agent.ErrPermission)
	}
	if cfg != nil && c.instance != "" && cfg.Global.Instance != c.instance {
		cfg.SetInstance(c.instance)
	}
	return cfg, err
}

// loadForClient loads the config to find the journal and the control socket
// (journal, status, failover). Unlike the agent it does not refuse a file
// with problems when the file still decodes: a deleted action script or a
// typo made while the agent runs must not hide the journal and the status,
// which are what one reads to find out what went wrong. The problems are
// printed to stderr as a warning, with the hint to run imon check.
func (c *commonFlags) loadForClient() (*config.Config, error) {
	cfg, err := c.load()
	var ps config.Problems
	if cfg == nil || err == nil || !errors.As(err, &ps) {
		return cfg, err
	}
	for _, p := range ps {
		fmt.Fprintf(os.Stderr, "imon: warning: %s\n", p.Error())
	}
	fmt.Fprintf(os.Stderr, "imon: warning: %s has %d problem(s) (the agent would refuse it; see imon check); going on with its journal and socket\n",
		c.path(), ps.Count())
	return cfg, nil
}

// permissionHint turns a permission error on path (the journal, which is
// root's, mode 0600) into "PATH: permission denied (run as root)".
func permissionHint(err error, path string) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s: %w", path, agent.ErrPermission)
	}
	return err
}
