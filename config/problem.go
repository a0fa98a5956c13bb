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
	// More, when > 0, makes this entry stand for that many further
	// problems that are not listed (see [Problems.Capped]).
	More int
}

// Error formats the problem as "FILE:LINE: section.key: why" ("FILE:" alone
// when the key is not in the file, e.g. a required key missing), or
// "FILE:LINE:COL: why" for a problem that belongs to no key (a syntax
// error). An entry with More > 0 reads "FILE: … and N more problems".
func (p Problem) Error() string {
	var b strings.Builder
	where := p.Section
	if p.Key != "" {
		where += "." + p.Key
	}
	switch {
	case p.More > 0:
		if p.File != "" {
			b.WriteString(p.File + ": ")
		}
		fmt.Fprintf(&b, "… and %d more problems", p.More)
		return b.String()
	case where != "":
		switch {
		case p.File != "" && p.Line > 0:
			fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
		case p.File != "":
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

// MaxProblems is how many problems are listed at most; the rest are counted
// in one last entry ("… and N more problems"), so that a huge broken file
// does not print millions of lines.
const MaxProblems = 100

// Count returns the number of problems, those only counted included.
func (ps Problems) Count() int {
	n := 0
	for _, p := range ps {
		if p.More > 0 {
			n += p.More
		} else {
			n++
		}
	}
	return n
}

// Capped returns ps with at most [MaxProblems] problems listed and the rest
// counted in a last entry with More set (earlier such entries merged into
// it).
func (ps Problems) Capped() Problems {
	if ps.Count() <= MaxProblems {
		return ps
	}
	var file string
	out := make(Problems, 0, MaxProblems+1)
	more := 0
	for _, p := range ps {
		if file == "" {
			file = p.File
		}
		switch {
		case p.More > 0:
			more += p.More
		case len(out) < MaxProblems:
			out = append(out, p)
		default:
			more++
		}
	}
	return append(out, Problem{File: file, More: more})
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
