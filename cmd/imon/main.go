// Command imon watches an internet connection and acts on it: updown, ddns,
// failover and ping monitors, an event journal, an action script, MQTT and
// Home Assistant. See the README for the commands.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped by the build (-ldflags "-X main.version=... -X main.commit=...").
var (
	version = "dev"
	commit  = ""
)

// Exit codes (docs/commands.md).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a command-line mistake: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func main() { os.Exit(realMain(os.Args)) }

const usage = `usage: imon [run] [--instance NAME] [--config PATH] [--nosyslog]
       imon configure [--instance NAME] [--config PATH]
       imon check [--instance NAME | --config PATH]
       imon journal [--instance NAME] [--config PATH] [--since DUR|TIME] [--monitor M] [--kind K] [--follow] [--json]
       imon status [--instance NAME] [--config PATH] [--json]
       imon failover [--instance NAME] [--config PATH] primary|standby|auto
       imon report [--instance NAME] [--config PATH] [--since 24h|7d|30d|DATE] [--monitor M] [--json] [--html FILE]
       imon version
`

var commands = map[string]func(args []string) error{
	"run":       cmdRun,
	"configure": cmdConfigure,
	"check":     cmdCheck,
	"journal":   cmdJournal,
	"status":    cmdStatus,
	"failover":  cmdFailover,
	"version":   cmdVersion,
	"report":    cmdReport,
	"help":      func([]string) error { fmt.Print(usage); return nil },
}

// flagsWithValue are the flags whose value is the next argument, so that the
// subcommand can be found anywhere on the line ("imon --instance demo run").
var flagsWithValue = map[string]bool{"instance": true, "config": true, "since": true, "monitor": true, "kind": true, "html": true}

func realMain(argv []string) int {
	name := "run"
	args := argv[1:]
	if filepath.Base(argv[0]) == "imon-configure" {
		name = "configure"
	} else if i := findCommand(args); i >= 0 {
		name = args[i]
		args = append(append([]string{}, args[:i]...), args[i+1:]...)
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "imon: unknown command %q\n%s", name, usage)
		return exitUsage
	}
	if err := cmd(args); err != nil {
		if errors.Is(err, errHelp) {
			fmt.Print(usage)
			return exitOK
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "imon %s: %v\n%s", name, err, usage)
			return exitUsage
		}
		fmt.Fprintf(os.Stderr, "imon %s: %v\n", name, err)
		return exitFailure
	}
	return exitOK
}

// findCommand returns the index of the first argument that is a subcommand
// name and not a flag's value, or -1.
func findCommand(args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return -1
		}
		if strings.HasPrefix(a, "-") {
			flag := strings.TrimLeft(a, "-")
			if !strings.Contains(flag, "=") && flagsWithValue[flag] {
				i++
			}
			continue
		}
		if _, ok := commands[a]; ok {
			return i
		}
		return -1
	}
	return -1
}

func versionString() string {
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					c = s.Value[:12]
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("imon %s (commit %s, %s %s/%s)", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdVersion(args []string) error {
	// --instance and --config are accepted, as by every command, and
	// change nothing.
	var c commonFlags
	fs := newFlagSet("version", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Println(versionString())
	return nil
}
