package recipes

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Severity of a diagnostic.
type Severity string

// The severities.
const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Pos is a place in a file; Line and Col are 1-based, zero when unknown.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"column"`
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Diagnostic is one problem found in a recipe, a test or a config file.
type Diagnostic struct {
	Pos
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Message)
}

// Diagnostics is a list of problems.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SevError {
			return true
		}
	}
	return false
}

// Errors counts the errors.
func (ds Diagnostics) Errors() int {
	n := 0
	for _, d := range ds {
		if d.Severity == SevError {
			n++
		}
	}
	return n
}

// Err returns the diagnostics as one error, or nil when there is no error.
func (ds Diagnostics) Err() error {
	if !ds.HasErrors() {
		return nil
	}
	return ds
}

// Error joins the diagnostics, one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the diagnostics by file, line and column, keeping the order
// of equal positions.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Format names an output format of diagnostics.
type Format string

// The output formats of `sous validate`.
const (
	FormatText   Format = "text"
	FormatJSON   Format = "json"
	FormatGitHub Format = "github"
)

// Write prints the diagnostics in a format. Text is `path:line:col:
// severity: message`; github is workflow commands that annotate a pull
// request; json is one object with the diagnostics and the counts.
func (ds Diagnostics) Write(w io.Writer, f Format, files int) error {
	switch f {
	case FormatJSON:
		out := struct {
			Files       int          `json:"files"`
			Errors      int          `json:"errors"`
			Warnings    int          `json:"warnings"`
			Diagnostics []Diagnostic `json:"diagnostics"`
		}{files, ds.Errors(), len(ds) - ds.Errors(), ds}
		if out.Diagnostics == nil {
			out.Diagnostics = []Diagnostic{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case FormatGitHub:
		for _, d := range ds {
			// https://docs.github.com/actions/reference/workflow-commands-for-github-actions
			if _, err := fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=sous validate::%s\n",
				d.Severity, ghProp(d.File), d.Line, d.Col, ghData(d.Message)); err != nil {
				return err
			}
		}
		return nil
	default:
		for _, d := range ds {
			if _, err := fmt.Fprintln(w, d.String()); err != nil {
				return err
			}
		}
		return nil
	}
}

var ghDataEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
var ghPropEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")

func ghData(s string) string { return ghDataEscaper.Replace(s) }
func ghProp(s string) string { return ghPropEscaper.Replace(s) }

// suggest returns ` (did you mean "x"?)` for the closest candidate to got,
// or "" when none is close.
func suggest(got string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if c == got {
			continue
		}
		d := levenshtein(strings.ToLower(got), strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(len(got), len(best))/3)
	if strings.Contains(got, ".") { // connector IDs: allow a little more
		limit++
	}
	if best == "" || bestD > limit {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// levenshtein is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each count one.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// Suggest returns ` (did you mean "x"?)` for the candidate closest to got,
// or "" when none is close.
func Suggest(got string, candidates []string) string { return suggest(got, candidates) }
