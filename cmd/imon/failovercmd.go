package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"imon/agent"
	"imon/agent/command"
	"imon/agent/monitor/failover"
	"imon/event"
)

// failoverWait bounds how long `imon failover` waits for the failover
// monitor's answer to the command (docs/failover.md).
const failoverWait = 5 * time.Second

func cmdFailover(args []string) error {
	var c commonFlags
	fs := newFlagSet("failover", &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("failover takes one of primary, standby, auto")
	}
	mode, err := command.ParseMode(fs.Arg(0))
	if err != nil {
		return usagef("failover mode %q: want primary, standby or auto", fs.Arg(0))
	}
	cfg, err := c.loadForClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := agent.Call(ctx, cfg.Journal.Socket, agent.Request{Cmd: "failover", Mode: string(mode)})
	if err != nil {
		return err
	}
	if !r.OK {
		if r.Seq == 0 {
			return fmt.Errorf("agent refused: %s", r.Error)
		}
		return fmt.Errorf("agent refused: %s (journaled as #%d)", r.Error, r.Seq)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), failoverWait)
	defer wcancel()
	msg, err := waitFailover(wctx, cfg.Journal.Socket, r.Seq, mode)
	if err != nil {
		return fmt.Errorf("command #%d: %w", r.Seq, err)
	}
	fmt.Printf("failover %s (command #%d): %s\n", mode, r.Seq, msg)
	return nil
}

// waitFailover follows the journal after the failover-command event seq
// until the failover monitor's answer says what became of it.
func waitFailover(ctx context.Context, socket string, seq uint64, mode command.Mode) (string, error) {
	conn, err := agent.Dial(ctx, socket, agent.Request{Cmd: "journal", From: seq + 1, Follow: true})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	dec := json.NewDecoder(conn)
	j := failoverJudge{seq: seq, mode: mode}
	for {
		var ev event.Event
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("no answer from the failover monitor within %s: %s", failoverWait, j.waiting())
			}
			if errors.Is(err, io.EOF) {
				return "", errors.New("the agent stopped before the failover monitor answered")
			}
			return "", fmt.Errorf("reading the journal: %w", err)
		}
		if done, msg, err := j.add(ev); done {
			return msg, err
		}
	}
}

// failoverJudge reads the failover monitor's events after a command and
// decides its outcome: done with a message, or done with the reason the
// route did not go where the command asked.
type failoverJudge struct {
	seq     uint64
	mode    command.Mode
	applied bool // the failover-mode event of the command was seen
}

func (j *failoverJudge) waiting() string {
	if j.applied {
		return fmt.Sprintf("the mode is %s but the default route has not moved to the %s network", j.mode, j.mode)
	}
	return "the command was not applied (is the failover monitor running?)"
}

// add judges one event; done reports whether the outcome is known.
func (j *failoverJudge) add(ev event.Event) (done bool, msg string, err error) {
	if ev.Monitor != event.MonitorFailover {
		return false, "", nil
	}
	var snap failover.Snapshot
	_ = json.Unmarshal(ev.State, &snap)
	if !j.applied {
		if ev.Kind != failover.KindMode {
			return false, "", nil
		}
		var d struct {
			Command uint64 `json:"command"`
		}
		if ev.DecodeData(&d) != nil || d.Command != j.seq {
			return false, "", nil
		}
		j.applied = true
		if j.mode == command.ModeAuto {
			return true, fmt.Sprintf("mode auto; default route via %s", activeName(snap.Active)), nil
		}
		if snap.Active == string(j.mode) {
			return true, fmt.Sprintf("mode %s; default route via %s", j.mode, snap.Active), nil
		}
		for _, w := range snap.WANs {
			if w.Role == string(j.mode) && w.Status != failover.StatusUp {
				why := ""
				switch {
				case w.Problem != "":
					why = ": " + w.Problem
				case w.Reason != "":
					why = ": " + w.Reason
				}
				return true, "", fmt.Errorf("mode set to %s, but the %s network is %s%s: the default route stays via %s",
					j.mode, j.mode, w.Status, why, activeName(snap.Active))
			}
		}
		return false, "", nil // up: the switch is under way
	}
	switch {
	case ev.Kind == failover.KindMode:
		return true, "", fmt.Errorf("another failover command (#%d) came before the switch", ev.Seq)
	case ev.Kind == failover.KindError:
		return true, "", fmt.Errorf("switching to the %s network failed: %s", j.mode, ev.Msg)
	case snap.Active == string(j.mode):
		return true, fmt.Sprintf("mode %s; default route via %s", j.mode, snap.Active), nil
	}
	return false, "", nil
}

func activeName(a string) string {
	if a == "" {
		return "no network (none is up)"
	}
	return a
}
