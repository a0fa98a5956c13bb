package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"imon/event"
)

// Request is one control-socket request: a single JSON line sent by the
// imon CLI to the running agent.
type Request struct {
	Cmd    string `json:"cmd"`              // "status", "journal", "failover" or "history"
	From   uint64 `json:"from,omitempty"`   // journal: first seq (0 = the oldest kept)
	Follow bool   `json:"follow,omitempty"` // journal: keep streaming new events
	Since  string `json:"since,omitempty"`  // journal: RFC 3339 time; events at or after it; history: first day
	Mode   string `json:"mode,omitempty"`   // failover: primary|standby|auto
}

// DamageMsg is a line of the journal stream, {"damaged": DamageMsg},
// sent in place of events the agent cannot read (damaged journal pages):
// the stream goes on after LastSeq.
type DamageMsg struct {
	Path     string `json:"path"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Error    string `json:"error"`
}

// Reply is the control socket's answer to status and failover requests.
type Reply struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Seq    uint64          `json:"seq,omitempty"`
	Status json.RawMessage `json:"status,omitempty"`
	// History is the answer to history: the rollups (history.Snapshot).
	History json.RawMessage `json:"history,omitempty"`
}

// Control serves the agent's control socket, a unix socket through which
// `imon status`, `imon journal` and `imon failover` reach the running agent
// (the journal file itself is locked by the agent).
type Control struct {
	Path   string
	J      Journal
	Status func() any
	// Failover is the agent's command entry point (Agent.FailoverCommand):
	// the request's mode is its payload, "cli" its source.
	Failover func(ctx context.Context, payload []byte, source string) (event.Event, error)
	// History returns the rollups from since on (imon report); nil when
	// the agent keeps none.
	History func(ctx context.Context, since time.Time) (any, error)
}

// Listen creates the socket (removing a stale one) with mode 0600.
func (c *Control) Listen() (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if conn, err := net.DialTimeout("unix", c.Path, 200*time.Millisecond); err == nil {
		conn.Close()
		return nil, fmt.Errorf("control socket %s: another imon agent is running on it", c.Path)
	}
	// Only a stale socket is removed: anything else at the path (the
	// journal, the config, a user's file named by mistake) is kept and the
	// start refused.
	if fi, err := os.Lstat(c.Path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control socket %s (journal.socket): the path is %s, not a socket: refusing to replace it; choose another path, or remove the file", c.Path, describeFile(fi))
		}
		if err := os.Remove(c.Path); err != nil {
			return nil, fmt.Errorf("control socket: removing the stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", c.Path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(c.Path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx ends, then closes ln and removes
// the socket file.
func (c *Control) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer os.Remove(c.Path)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.handle(ctx, conn)
		}()
	}
}

func (c *Control) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReaderSize(conn, 4096).ReadSlice('\n')
	if err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var req Request
	w := bufio.NewWriter(conn)
	enc := json.NewEncoder(w)
	reply := func(r Reply) {
		_ = enc.Encode(r)
		_ = w.Flush()
	}
	if err := json.Unmarshal(line, &req); err != nil {
		reply(Reply{Error: fmt.Sprintf("bad request: %v", err)})
		return
	}
	switch req.Cmd {
	case "status":
		b, err := json.Marshal(c.Status())
		if err != nil {
			reply(Reply{Error: err.Error()})
			return
		}
		reply(Reply{OK: true, Status: b})
	case "failover":
		ev, err := c.Failover(ctx, []byte(req.Mode), "cli")
		if err != nil {
			reply(Reply{Error: err.Error(), Seq: ev.Seq})
			return
		}
		reply(Reply{OK: true, Seq: ev.Seq})
	case "history":
		if c.History == nil {
			reply(Reply{Error: "this agent keeps no history"})
			return
		}
		since, err := time.Parse(time.RFC3339Nano, req.Since)
		if err != nil {
			reply(Reply{Error: fmt.Sprintf("bad since %q: %v", req.Since, err)})
			return
		}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		h, err := c.History(hctx, since)
		if err != nil {
			reply(Reply{Error: err.Error()})
			return
		}
		b, err := json.Marshal(h)
		if err != nil {
			reply(Reply{Error: err.Error()})
			return
		}
		reply(Reply{OK: true, History: b})
	case "journal":
		// A watcher goroutine notices the client hanging up (EOF on read).
		go func() {
			var b [1]byte
			_, _ = conn.Read(b[:])
			cancel()
		}()
		end := c.J.LastSeq()
		from := max(req.From, 1)
		if req.Since != "" {
			t, err := time.Parse(time.RFC3339Nano, req.Since)
			if err != nil {
				reply(Reply{Error: fmt.Sprintf("bad since %q: %v", req.Since, err)})
				return
			}
			seq, err := c.J.SeqAt(t)
			if err != nil {
				reply(Reply{Error: err.Error()})
				return
			}
			from = max(from, seq)
		}
		if !req.Follow && from > end { // nothing to replay: do not wait for new events
			return
		}
		// Whole lines only: a line that does not fit the buffer goes out
		// alone, so that a stream that stops (the client hangs up, the
		// agent stops) never leaves the client half a JSON line.
		writeLine := func(v any) bool {
			b, err := json.Marshal(v)
			if err != nil {
				return false
			}
			b = append(b, '\n')
			if w.Available() < len(b) && w.Buffered() > 0 {
				if err := w.Flush(); err != nil {
					return false
				}
			}
			_, err = w.Write(b)
			return err == nil
		}
		follow(ctx, c.J, from, func(ev event.Event) bool {
			if !req.Follow && ev.Seq > end {
				return false
			}
			if !writeLine(ev) {
				return false
			}
			if !req.Follow && ev.Seq == end {
				return false
			}
			// Caught up: flush for followers. ">=": Read can return an
			// event a moment before LastSeq counts it (the journal
			// updates it after the commit).
			if ev.Seq >= c.J.LastSeq() {
				if err := w.Flush(); err != nil {
					return false
				}
			}
			return true
		}, func(d event.Gap) bool {
			// Tell the client which events it will not get, then go on.
			if !writeLine(struct {
				Damaged DamageMsg `json:"damaged"`
			}{DamageMsg{Path: d.Path, FirstSeq: d.First, LastSeq: d.Last, Error: d.Err.Error()}}) || w.Flush() != nil {
				return false
			}
			return req.Follow || d.Last < end
		})
		_ = w.Flush()
	default:
		reply(Reply{Error: fmt.Sprintf("unknown command %q", req.Cmd)})
	}
}

// ErrNoAgent means no agent answers on the control socket.
var ErrNoAgent = errors.New("no running imon agent")

// ErrPermission means the caller may not use the control socket (or read
// the journal): both are root's, mode 0600.
var ErrPermission = errors.New("permission denied (run as root)")

// Dial connects to the control socket of a running agent and sends req.
// A socket the caller may not connect to is [ErrPermission], not
// [ErrNoAgent]: an agent may well be running.
func Dial(ctx context.Context, path string, req Request) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("control socket %s: %w", path, ErrPermission)
	}
	if err != nil {
		return nil, fmt.Errorf("%w on %s: %v", ErrNoAgent, path, err)
	}
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		// The agent closed its socket between accept and our request
		// (it is stopping).
		return nil, fmt.Errorf("%w on %s: %v", ErrNoAgent, path, err)
	}
	return conn, nil
}

// Call sends a status or failover request and reads the reply.
func Call(ctx context.Context, path string, req Request) (Reply, error) {
	conn, err := Dial(ctx, path, req)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var r Reply
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		return Reply{}, fmt.Errorf("control socket %s: read reply: %w", path, err)
	}
	return r, nil
}

// describeFile names what kind of file fi is, for messages.
func describeFile(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "a special file (" + t.String() + ")"
	}
}
