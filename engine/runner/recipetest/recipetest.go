// Package recipetest runs recipe tests (*.test.yaml) offline: each case
// feeds an event through the recipe with mocked actions and checks the
// filter, the run status, vars and the rendered inputs of steps (a subset
// match). No network is used.
package recipetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
)

// Failure is one expectation that did not hold.
type Failure struct {
	Pos      recipes.Pos
	What     string
	Expected string
	Got      string
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	File     string
	Recipe   string
	Case     string
	Pos      recipes.Pos
	Failures []Failure
	Duration time.Duration
	Run      *runner.Result
}

// Passed reports whether every expectation held.
func (c *CaseResult) Passed() bool { return len(c.Failures) == 0 }

// Clock is the fixed trigger time of test runs, so that output is
// deterministic.
var Clock = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// Options select and shape a test run.
type Options struct {
	// Match selects cases by "recipe/case" (a regular expression); nil runs all.
	Match *regexp.Regexp
}

// Run runs every case of a test file.
func Run(ctx context.Context, t *recipes.TestFile, opts Options) []*CaseResult {
	var out []*CaseResult
	for _, c := range t.Cases {
		if opts.Match != nil && !opts.Match.MatchString(t.RecipeName+"/"+c.Name) {
			continue
		}
		out = append(out, runCase(ctx, t, c))
	}
	return out
}

func runCase(ctx context.Context, t *recipes.TestFile, c *recipes.TestCase) *CaseResult {
	start := time.Now()
	cr := &CaseResult{File: t.File, Recipe: t.RecipeName, Case: c.Name, Pos: c.Pos}
	defer func() { cr.Duration = time.Since(start) }()
	rec := t.Recipe
	r := &runner.Runner{
		Secrets: c.Secrets,
		Invoke: func(_ context.Context, step *recipes.Step, _ *connector.Request) (map[string]any, error) {
			m, ok := c.Mocks[step.ID]
			if !ok {
				// an unmocked step returns the zero value of its output shape
				if z, ok := step.Spec.Shape.Zero().(map[string]any); ok {
					return z, nil
				}
				return map[string]any{}, nil
			}
			if m.Error != "" {
				if m.Retryable {
					return m.Output, connector.Retryable("mock", 0, errors.New(m.Error))
				}
				return m.Output, connector.Permanent("mock", errors.New(m.Error))
			}
			return m.Output, nil
		},
		Connection: func(name string) (*connector.Connection, error) {
			return &connector.Connection{Name: name, Values: connector.Values{}}, nil
		},
		Sleep: func(context.Context, time.Duration) error { return nil },
		Now:   func() time.Time { return Clock },
	}
	ev := runner.Event{ID: "test", Type: rec.Trigger.Type, ReceivedAt: Clock, Payload: c.Event}
	if id, ok := c.Trigger["id"]; ok {
		ev.ID = fmt.Sprint(id)
	}
	res := r.Run(ctx, rec, ev, "test-run")
	cr.Run = res
	fail := func(p recipes.Pos, what string, want, got any) {
		cr.Failures = append(cr.Failures, Failure{Pos: p, What: what, Expected: show(want), Got: show(got)})
	}
	e := c.Expect
	if e.Filter != nil {
		passed := res.Status != runner.StatusFiltered
		if passed != *e.Filter {
			fail(e.FilterPos, "filter", *e.Filter, passed)
		}
	}
	if e.Status != "" && string(res.Status) != e.Status {
		got := string(res.Status)
		if res.Error != nil {
			got += fmt.Sprintf(" (step %q: %s)", res.Error.Step, res.Error.Message)
		}
		fail(e.StatusPos, "status", e.Status, note(got))
	}
	if e.Vars != nil {
		for _, d := range subset("vars", e.Vars, res.Vars) {
			fail(e.VarsPos, d.path, d.want, d.got)
		}
	}
	for _, se := range e.Steps {
		got := res.Step(se.ID)
		if got == nil {
			why := "it did not run"
			if res.Status == runner.StatusFiltered {
				why = "it did not run: the filter was false"
			} else if res.Error != nil {
				why = fmt.Sprintf("it did not run: the run failed earlier (%s)", res.Error.Message)
			}
			fail(se.Pos, "step "+se.ID, note("a run"), note(why))
			continue
		}
		if se.Skipped != nil && (got.Status == runner.StatusSkipped) != *se.Skipped {
			fail(se.Pos, "step "+se.ID+".skipped", *se.Skipped, got.Status == runner.StatusSkipped)
		}
		if se.With != nil {
			if got.Status == runner.StatusSkipped {
				fail(se.WithPos, "step "+se.ID+".with", se.With, note("(skipped: its if was false)"))
				continue
			}
			if got.Input == nil && got.Error != "" {
				fail(se.WithPos, "step "+se.ID+".with", se.With, note("(failed before rendering: "+got.Error+")"))
				continue
			}
			for _, d := range subset("with", se.With, got.Input) {
				fail(se.WithPos, "step "+se.ID+"."+d.path, d.want, d.got)
			}
		}
		if se.Output != nil {
			for _, d := range subset("output", se.Output, got.Output) {
				fail(se.Pos, "step "+se.ID+"."+d.path, d.want, d.got)
			}
		}
	}
	return cr
}

type diff struct {
	path      string
	want, got any
}

// missing marks a key that is absent.
type missing struct{}

// note is an explanation rather than a value: it is shown unquoted.
type note string

// subset reports where want is not contained in got: maps by key (extra
// keys in got are fine), lists element by element with equal length,
// numbers by value whatever their Go type, everything else exactly.
func subset(path string, want, got any) []diff {
	got = generic(got)
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []diff{{path, want, got}}
		}
		var out []diff
		for _, k := range sortedKeys(w) {
			gv, ok := g[k]
			if !ok {
				out = append(out, diff{path + "." + k, w[k], missing{}})
				continue
			}
			out = append(out, subset(path+"."+k, w[k], gv)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []diff{{path, want, got}}
		}
		var out []diff
		for i := range w {
			out = append(out, subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if wn, ok := number(want); ok {
		if gn, ok := number(got); ok && wn == gn {
			return nil
		}
		return []diff{{path, want, got}}
	}
	if want == got {
		return nil
	}
	return []diff{{path, want, got}}
}

func number(v any) (float64, bool) {
	if v == nil {
		return 0, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		return f, !math.IsNaN(f)
	}
	return 0, false
}

// generic turns typed slices and string-keyed maps (such as the []string
// of split() or a map[string]string of headers) into []any and
// map[string]any, so that they compare with the values of a test file.
func generic(v any) any {
	switch v.(type) {
	case nil, map[string]any, []any, string, bool, []byte:
		return v
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = iter.Value().Interface()
		}
		return out
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func show(v any) string {
	switch x := v.(type) {
	case missing:
		return "(missing)"
	case note:
		return string(x)
	case string:
		return fmt.Sprintf("%q", x)
	case nil:
		return "null"
	default:
		return recipes.Text(x)
	}
}

// Report prints results like `go test -v`: a RUN/PASS/FAIL line per case,
// each failure with its place, expected and got. It returns the counts.
func Report(w io.Writer, results []*CaseResult, verbose bool) (passed, failed int) {
	for _, r := range results {
		name := r.Recipe + "/" + r.Case
		if verbose {
			fmt.Fprintf(w, "=== RUN   %s\n", name)
		}
		if r.Passed() {
			passed++
			if verbose {
				fmt.Fprintf(w, "--- PASS: %s (%.2fs)\n", name, r.Duration.Seconds())
			}
			continue
		}
		failed++
		fmt.Fprintf(w, "--- FAIL: %s (%.2fs)\n", name, r.Duration.Seconds())
		for _, f := range r.Failures {
			fmt.Fprintf(w, "    %s: %s\n", f.Pos, f.What)
			fmt.Fprintf(w, "        expected: %s\n", indent(f.Expected))
			fmt.Fprintf(w, "        got:      %s\n", indent(f.Got))
		}
	}
	return passed, failed
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n                  ") }
