package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"imon/config"
	"imon/config/configure"
)

func cmdConfigure(args []string) error {
	var c commonFlags
	fs := newFlagSet("configure", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	// The default instance name: --instance, else the file's imon-NAME
	// (as the agent derives it), else main.
	inst := c.instance
	if name, ok := config.InstanceFromPath(c.config); inst == "" && ok {
		inst = name
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := configure.Run(ctx, os.Stdin, os.Stdout, configure.Options{
		Path:         c.config,
		Instance:     inst,
		OfferService: offerService,
	})
	if errors.Is(err, configure.ErrAborted) || errors.Is(err, context.Canceled) {
		fmt.Println()
		return fmt.Errorf("configuration not written: %w", err)
	}
	return err
}

// offerService enables and starts imon@NAME with systemctl.
func offerService(instance string) error {
	unit := "imon@" + instance
	cmd := exec.Command("systemctl", "enable", "--now", unit)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl enable --now %s: %w", unit, err)
	}
	return nil
}
