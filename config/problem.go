package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File    string // the config file ("" when the config was not read from a file)
	Section string // "global", "ddns", ...; "" for a problem of the whole file
	Key     string // key within Section; "" for a problem of the whole section
	Line    int    // 1-based position in the file, 0 when unknown
	Col     int
	Msg     string // why, lower case
}

// Error formats the problem as "FILE: section.key: why", or
// "FILE:LINE:COL: why" for a problem that belongs to no key (a syntax error).
func (p Problem) Error() string {
	var b strings.Builder
	where := p.Section
	if p.Key != "" {
		where += "." + p.Key
	}
	switch {
	case where != "":
		if p.File != "" {
			b.WriteString(p.File + ": ")
		}
		b.WriteString(where + ": ")
	case p.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", p.File, p.Line, p.Col)
	case p.File != "":
		b.WriteString(p.File + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a configuration; [Load] and [Parse]
// return it as their error (find it with errors.As). It is never empty when
// returned as an error.
type Problems []Problem

// Error lists the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns ps as an error, or nil when there is no problem.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Unwrap returns the problems as single errors, for errors.Is/As.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}
