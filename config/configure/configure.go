// Package configure is `imon configure`: the interactive builder of an
// instance configuration file.
//
// It asks the original imon-configure's questions, prompt for prompt, in
// the same order, with the same defaults and [y/N]/[Y/n] answers, then the
// questions of the imon sections (journal, MQTT, Home Assistant). Unlike the
// original it keeps the case of answers (the original lower-cased them all,
// a bug), checks every answer at once with the validators [config.Load] and
// [config.CheckHost] use and asks again with the reason, and writes the file
// atomically. It reads answers one a line, so a session can be piped.
package configure

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"imon/config"
)

// Version is written as global.imon-configure-version (the original wrote
// V1.0).
const Version = "V2.0"

// ErrAborted is returned when the input ends (Ctrl-D) before the session is
// complete: nothing was written.
var ErrAborted = errors.New("input ended: nothing written")

// Options parameterise [Run]; the zero value asks about and writes to the
// real machine, without offering to start the service.
type Options struct {
	// Path is the file to write; "" = config.DefaultPath(the instance
	// answered).
	Path string
	// Instance is the default answer of "Instance name"; "" = main.
	Instance string
	// Now gives the creation time written into the file; nil = time.Now.
	Now func() time.Time
	// LookupIface returns nil when the named network interface exists. nil
	// = the machine's interfaces.
	LookupIface func(name string) error
	// IfaceAddrs returns an interface's addresses, to check that a gateway
	// is on the interface's subnet. nil = the machine's when LookupIface is
	// nil too; otherwise (a fake LookupIface) the subnet check is skipped.
	IfaceAddrs config.IfaceAddrs
	// OfferService, when set, is offered after the file is written
	// ("Enable and start imon@NAME now? [y/N]") and called on yes.
	OfferService func(instance string) error
}

// Run holds one configure session: it reads answers from in, one a line,
// writes prompts (without a newline, as the original) and messages to out,
// and writes the configuration file when the user confirms. It returns
// ErrAborted when in ends early and ctx's error when ctx ends; in both
// cases nothing is written. Answering "n" to the write question returns nil
// without writing; input that ends at the service question, after the
// file was written, is a no.
//
// Run reads in from a goroutine so that ctx can interrupt a read; when Run
// returns early that goroutine ends at the next line or end of in.
func Run(ctx context.Context, in io.Reader, out io.Writer, opt Options) error {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &session{ctx: ctx, out: out, opt: opt, done: make(chan struct{})}
	defer close(s.done)
	s.lines = readLines(in, s.done)
	return s.run()
}

// line is one line of input, or the error that ended the input.
type line struct {
	text string
	err  error
}

// readLines reads in line by line on a goroutine until in ends or done is
// closed.
func readLines(in io.Reader, done <-chan struct{}) <-chan line {
	ch := make(chan line)
	go func() {
		defer close(ch)
		r := bufio.NewReader(in)
		for {
			text, err := r.ReadString('\n')
			if err != nil && (text == "" || err != io.EOF) {
				select {
				case ch <- line{err: err}:
				case <-done:
				}
				return
			}
			select {
			case ch <- line{text: text}:
			case <-done:
				return
			}
		}
	}()
	return ch
}

// session is one run of the dialogue.
type session struct {
	ctx   context.Context
	out   io.Writer
	opt   Options
	lines <-chan line
	done  chan struct{}
}

// flusher is implemented by buffered writers.
type flusher interface{ Flush() error }

func (s *session) printf(format string, args ...any) {
	fmt.Fprintf(s.out, format, args...)
	if f, ok := s.out.(flusher); ok {
		f.Flush() //nolint:errcheck // a broken terminal shows up on the next read
	}
}

// ask writes prompt and returns the answer, trimmed of surrounding space.
func (s *session) ask(prompt string) (string, error) {
	s.printf("%s", prompt)
	select {
	case <-s.ctx.Done():
		s.printf("\n")
		return "", fmt.Errorf("configure interrupted, nothing written: %w", context.Cause(s.ctx))
	case l, ok := <-s.lines:
		if !ok || l.err != nil {
			s.printf("\n")
			if ok && l.err != io.EOF {
				return "", fmt.Errorf("reading answers: %w", l.err)
			}
			return "", ErrAborted
		}
		return strings.TrimSpace(l.text), nil
	}
}

// input asks "QUESTION: " or "QUESTION [DEFAULT]: " and returns the answer
// or, for an empty answer, the default (the original's askinput).
func (s *session) input(question, dflt string) (string, error) {
	prompt := question + ": "
	if dflt != "" {
		prompt = question + " [" + dflt + "]: "
	}
	a, err := s.ask(prompt)
	if a == "" {
		a = dflt
	}
	return a, err
}

// yesNo asks a question whose prompt already shows the default and
// returns the answer: a prefix of "yes" or "no", in any case; empty takes
// dflt; anything else is asked again.
func (s *session) yesNo(prompt string, dflt bool) (bool, error) {
	for {
		a, err := s.ask(prompt)
		if err != nil {
			return false, err
		}
		switch la := strings.ToLower(a); {
		case la == "":
			return dflt, nil
		case strings.HasPrefix("yes", la):
			return true, nil
		case strings.HasPrefix("no", la):
			return false, nil
		}
		s.printf("%% Answer y or n\n")
	}
}

// hostProblem marks a rejection that depends on the machine's current
// state (a missing interface, a gateway off the interface's subnet): the
// same answer given twice is accepted.
type hostProblem struct{ error }

// valid asks until check accepts the answer, printing "% REASON" for each
// rejection; check gets the answer (the default when empty) and returns
// the value to keep.
func (s *session) valid(question, dflt string, check func(string) (string, error)) (string, error) {
	lastHost := "\x00"
	for {
		a, err := s.input(question, dflt)
		if err != nil {
			return "", err
		}
		v, err := check(a)
		if err == nil {
			return v, nil
		}
		var hp hostProblem
		if errors.As(err, &hp) {
			if a == lastHost {
				s.printf("%% Using '%s' anyway\n", a)
				return a, nil
			}
			lastHost = a
			s.printf("%% %s (enter it again to use it anyway)\n", capitalize(hp.error))
			continue
		}
		s.printf("%% %s\n", capitalize(err))
	}
}

// capitalize returns err's message with a capital first letter, as the
// original's "% Value required".
func capitalize(err error) string {
	msg := err.Error()
	if msg == "" || msg[0] < 'a' || msg[0] > 'z' {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}
