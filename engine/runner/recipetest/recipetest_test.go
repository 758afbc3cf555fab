package recipetest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

func TestSubset(t *testing.T) {
	tests := []struct {
		name      string
		want, got any
		diffs     []string // "path want got", shown
	}{
		{name: "equal strings", want: "a", got: "a"},
		{name: "different strings", want: "a", got: "b", diffs: []string{`x "a" "b"`}},
		{name: "a string is not a number", want: "3", got: 3, diffs: []string{`x "3" 3`}},
		{name: "a number is not a string", want: 3, got: "3", diffs: []string{`x 3 "3"`}},
		{name: "booleans", want: true, got: true},
		{name: "a boolean is not a string", want: true, got: "true", diffs: []string{`x true "true"`}},
		{name: "null", want: nil, got: nil},
		{name: "null is not empty", want: nil, got: "", diffs: []string{`x null ""`}},
		{name: "int and float64 of the same value", want: 3, got: 3.0},
		{name: "float64 and int", want: 3.0, got: 3},
		{name: "int and int64", want: 250, got: int64(250)},
		{name: "int and uint8", want: 7, got: uint8(7)},
		{name: "float and float32", want: 0.5, got: float32(0.5)},
		{name: "different numbers", want: 1.5, got: 1, diffs: []string{`x 1.5 1`}},
		{name: "NaN is never equal", want: math.NaN(), got: math.NaN(), diffs: []string{`x NaN NaN`}},
		{name: "maps: a subset", want: map[string]any{"a": 1}, got: map[string]any{"a": 1, "b": 2}},
		{name: "maps: a missing key", want: map[string]any{"a": 1, "c": 3}, got: map[string]any{"a": 1},
			diffs: []string{`x.c 3 (missing)`}},
		{name: "maps: nested", want: map[string]any{"a": map[string]any{"b": "x"}}, got: map[string]any{"a": map[string]any{"b": "y", "c": 1}},
			diffs: []string{`x.a.b "x" "y"`}},
		{name: "maps: every difference, sorted", want: map[string]any{"b": 1, "a": 1}, got: map[string]any{"a": 2, "b": 2},
			diffs: []string{`x.a 1 2`, `x.b 1 2`}},
		{name: "maps: not a map", want: map[string]any{"a": 1}, got: "a", diffs: []string{`x {"a":1} "a"`}},
		{name: "maps: the empty map matches any map", want: map[string]any{}, got: map[string]any{"a": 1}},
		{name: "maps: a typed map", want: map[string]any{"Accept": "json"}, got: map[string]string{"Accept": "json", "X": "y"}},
		{name: "lists: equal", want: []any{1, "a"}, got: []any{1.0, "a"}},
		{name: "lists: shorter", want: []any{1}, got: []any{1, 2}, diffs: []string{`x [1] [1,2]`}},
		{name: "lists: longer", want: []any{1, 2, 3}, got: []any{1, 2}, diffs: []string{`x [1,2,3] [1,2]`}},
		{name: "lists: an element differs", want: []any{1, 2}, got: []any{1, 3}, diffs: []string{`x[1] 2 3`}},
		{name: "lists: elements are subset-matched", want: []any{map[string]any{"a": 1}}, got: []any{map[string]any{"a": 1, "b": 2}}},
		{name: "lists: a typed slice", want: []any{"a", "b"}, got: []string{"a", "b"}},
		{name: "lists: an empty typed slice", want: []any{}, got: []string(nil)},
		{name: "lists: not a list", want: []any{"a"}, got: "a", diffs: []string{`x ["a"] "a"`}},
		{name: "a list is not a map", want: []any{}, got: map[string]any{}, diffs: []string{`x [] {}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, d := range subset("x", tt.want, tt.got) {
				got = append(got, d.path+" "+show(d.want)+" "+show(d.got))
			}
			require.Equal(t, tt.diffs, got)
		})
	}
}

func TestShow(t *testing.T) {
	require.Equal(t, "(missing)", show(missing{}))
	require.Equal(t, `"a b"`, show("a b"))
	require.Equal(t, `"say \"hi\""`, show(`say "hi"`))
	require.Equal(t, "null", show(nil))
	require.Equal(t, "3", show(3))
	require.Equal(t, "true", show(true))
	require.Equal(t, `{"a":[1,2]}`, show(map[string]any{"a": []any{1, 2}}))
}

// load writes a recipe and its test file and loads them as a set.
func load(t *testing.T, recipe, test string) *recipes.TestFile {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(recipe), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.test.yaml"), []byte(test), 0o644))
	l := &recipes.Loader{Registry: connector.Default}
	set, diags := l.LoadPaths([]string{dir})
	require.False(t, diags.HasErrors(), "%v", diags)
	require.Len(t, set.Tests, 1)
	require.NotNil(t, set.Tests[0].Recipe)
	return set.Tests[0]
}

// orders is the recipe most tests run: a filter, vars, a step whose if
// reads the first step's output, and an on_error step.
const orders = `version: 1
name: orders
trigger:
  type: webhook.received
  with: {path: /orders}
filter: event.body.total >= 100
vars:
  label: "Order {{ event.body.id }}"
  total: "{{ event.body.total }}"
  delivery: "{{ trigger.id }} at {{ trigger.received_at }}"
steps:
  - id: create
    action: http.request
    with:
      url: https://api.test/orders
      headers: {Authorization: "Bearer {{ secrets.TOKEN }}"}
      json: {label: "{{ vars.label }}", total: "{{ vars.total }}", tags: "{{ event.body.tags }}"}
  - id: notify
    action: http.request
    if: steps.create.output.status == 201
    with:
      url: https://chat.test/hook
      json: {text: "{{ vars.label }} is {{ steps.create.output.json.id }}"}
on_error:
  - id: alert
    action: http.request
    with:
      url: https://chat.test/ops
      json: {text: "{{ error.step }}: {{ error.message }}"}
`

// failures flattens a case's failures as "line:col what | expected | got".
func failures(cr *CaseResult) []string {
	var out []string
	for _, f := range cr.Failures {
		where := fmt.Sprintf("%s:%d:%d %s", filepath.Base(f.Pos.File), f.Pos.Line, f.Pos.Col, f.What)
		out = append(out, strings.Join([]string{where, f.Expected, f.Got}, " | "))
	}
	return out
}

func runOne(t *testing.T, test string) *CaseResult {
	t.Helper()
	tf := load(t, orders, test)
	res := Run(context.Background(), tf, Options{})
	require.Len(t, res, 1)
	return res[0]
}

func TestCases(t *testing.T) {
	tests := []struct {
		name  string
		cases string // the cases: list of the test file
		fails []string
		check func(t *testing.T, cr *CaseResult)
	}{
		{name: "everything as expected",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250, tags: [a, b]}}
    trigger: {id: delivery-1}
    secrets: {TOKEN: tok-secret-1}
    mocks:
      create: {output: {status: 201, json: {id: ord_7}}}
    expect:
      filter: true
      status: succeeded
      vars: {label: Order 7, total: 250.0, delivery: "delivery-1 at 2026-01-01T09:00:00Z"}
      steps:
        create:
          skipped: false
          with: {url: https://api.test/orders, headers: {Authorization: "Bearer [redacted]"}, json: {total: 250, tags: [a, b]}}
          output: {status: 201, json: {id: ord_7}}
        notify: {with: {json: {text: Order 7 is ord_7}}}
`,
			check: func(t *testing.T, cr *CaseResult) {
				require.Equal(t, runner.StatusSucceeded, cr.Run.Status)
				require.Equal(t, "orders", cr.Recipe)
				require.Equal(t, "c", cr.Case)
				require.Equal(t, "test-run", cr.Run.RunID)
				require.Equal(t, Clock, cr.Run.Started)
			}},
		{name: "filter: expected to pass",
			cases: `
  - name: c
    event: {body: {id: 7, total: 5}}
    expect: {filter: true}
`,
			fails: []string{"r.test.yaml:5:22 filter | true | false"}},
		{name: "filter: expected to be filtered",
			cases: `
  - name: c
    event: {body: {id: 7, total: 500}}
    expect: {filter: false}
`,
			fails: []string{"r.test.yaml:5:22 filter | false | true"}},
		{name: "status: the failure says where and why",
			cases: `
  - name: c
    event: {body: {id: 7, total: 500}}
    mocks: {create: {error: boom}}
    expect: {status: succeeded}
`,
			fails: []string{`r.test.yaml:6:22 status | "succeeded" | failed (step "create": boom (permanent, mock))`}},
		{name: "status: filtered",
			cases: `
  - name: c
    event: {body: {total: 1}}
    expect: {status: filtered}
`},
		{name: "vars: subset, with every difference",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    expect: {vars: {label: Order 8, total: 250, nope: 1}}
`,
			fails: []string{
				`r.test.yaml:5:20 vars.label | "Order 8" | "Order 7"`,
				`r.test.yaml:5:20 vars.nope | 1 | (missing)`,
			}},
		{name: "with: a wrong input",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    expect:
      steps:
        create: {with: {json: {label: Order 9, tags: [x]}}}
`,
			fails: []string{
				`r.test.yaml:7:24 step create.with.json.label | "Order 9" | "Order 7"`,
				`r.test.yaml:7:24 step create.with.json.tags | ["x"] | null`,
			}},
		{name: "unmocked steps return the zero value of their output",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    expect:
      status: succeeded
      steps:
        create: {output: {status: 0, body: "", json: null}}
        notify: {skipped: true}
`,
			check: func(t *testing.T, cr *CaseResult) {
				require.Equal(t, map[string]any{"status": 0, "headers": map[string]any{}, "body": "", "json": nil}, cr.Run.Step("create").Output)
			}},
		{name: "skipped: expected to run",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    mocks: {create: {output: {status: 200}}}
    expect:
      steps:
        notify: {skipped: false, with: {json: {text: x}}}
`,
			fails: []string{
				"r.test.yaml:8:9 step notify.skipped | false | true",
				`r.test.yaml:8:40 step notify.with | {"json":{"text":"x"}} | (skipped: its if was false)`,
			}},
		{name: "skipped: expected to be skipped",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    mocks: {create: {output: {status: 201}}}
    expect: {steps: {notify: {skipped: true}}}
`,
			fails: []string{"r.test.yaml:6:22 step notify.skipped | true | false"}},
		{name: "a step that did not run: filtered",
			cases: `
  - name: c
    event: {body: {total: 1}}
    expect: {steps: {create: {with: {url: x}}}}
`,
			fails: []string{`r.test.yaml:5:22 step create | a run | it did not run: the filter was false`}},
		{name: "a mock error fails the run and runs on_error",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    mocks: {create: {error: "http POST https://api.test/orders: 422 Unprocessable Entity"}}
    expect:
      status: failed
      steps:
        alert: {with: {url: https://chat.test/ops, json: {text: "create: http POST https://api.test/orders: 422 Unprocessable Entity (permanent, mock)"}}}
`,
			check: func(t *testing.T, cr *CaseResult) {
				require.Equal(t, runner.StatusFailed, cr.Run.Status)
				create := cr.Run.Step("create")
				require.Len(t, create.Attempts, 1, "a permanent error is not retried")
				require.Nil(t, cr.Run.Step("notify"), "the run stops at the failed step")
				alert := cr.Run.Step("alert")
				require.True(t, alert.OnError)
				require.Equal(t, runner.StatusSucceeded, alert.Status)
			}},
		{name: "a retryable mock error is retried without waiting",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    mocks: {create: {error: "503 Service Unavailable", retryable: true}}
    expect: {status: failed}
`,
			check: func(t *testing.T, cr *CaseResult) {
				require.Len(t, cr.Run.Step("create").Attempts, recipes.DefaultRetry.MaxAttempts)
				require.Less(t, cr.Duration.Seconds(), 1.0, "retries do not sleep in tests")
			}},
		{name: "a step that did not run: an earlier failure",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    mocks: {create: {error: boom}}
    expect: {steps: {notify: {skipped: true}}}
`,
			fails: []string{`r.test.yaml:6:22 step notify | a run | it did not run: the run failed earlier (boom (permanent, mock))`}},
		{name: "output: expected of a mock",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    mocks: {create: {output: {status: 200, json: {id: 1}}}}
    expect: {steps: {create: {output: {status: 201, json: {id: 1.0}}}}}
`,
			fails: []string{"r.test.yaml:6:22 step create.output.status | 201 | 200"}},
		{name: "secrets of a case are redacted",
			cases: `
  - name: c
    event: {body: {id: 7, total: 250}}
    secrets: {TOKEN: tok-secret-1}
    expect: {steps: {create: {with: {headers: {Authorization: Bearer tok-secret-1}}}}}
`,
			fails: []string{`r.test.yaml:6:37 step create.with.headers.Authorization | "Bearer tok-secret-1" | "Bearer [redacted]"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := runOne(t, "recipe: orders\ncases:"+tt.cases)
			require.Equal(t, tt.fails, failures(cr))
			require.Equal(t, len(tt.fails) == 0, cr.Passed())
			if tt.check != nil {
				tt.check(t, cr)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tf := load(t, orders, `recipe: orders
cases:
  - {name: big order, event: {body: {total: 500}}, expect: {filter: true}}
  - {name: small order, event: {body: {total: 5}}, expect: {filter: false}}
  - {name: another big order, event: {body: {total: 900}}, expect: {filter: true}}
`)
	names := func(res []*CaseResult) []string {
		var out []string
		for _, r := range res {
			require.True(t, r.Passed(), "%s: %v", r.Case, r.Failures)
			out = append(out, r.Case)
		}
		return out
	}
	require.Equal(t, []string{"big order", "small order", "another big order"}, names(Run(context.Background(), tf, Options{})))
	require.Equal(t, []string{"big order", "another big order"}, names(Run(context.Background(), tf, Options{Match: regexp.MustCompile(`big`)})))
	require.Equal(t, []string{"small order"}, names(Run(context.Background(), tf, Options{Match: regexp.MustCompile(`^orders/small`)})))
	require.Empty(t, names(Run(context.Background(), tf, Options{Match: regexp.MustCompile(`^other/`)})))
}

func TestReport(t *testing.T) {
	pos := recipes.Pos{File: "examples/orders.test.yaml", Line: 12, Col: 9}
	results := []*CaseResult{
		{Recipe: "orders", Case: "passes"},
		{Recipe: "orders", Case: "fails", Failures: []Failure{
			{Pos: pos, What: "step notify.with.json.text", Expected: `"Order 7"`, Got: `"Order 8"`},
			{Pos: recipes.Pos{File: "examples/orders.test.yaml", Line: 14, Col: 5}, What: "step notify.with.json.body", Expected: "\"line 1\nline 2\"", Got: "(missing)"},
		}},
	}
	var quiet bytes.Buffer
	p, f := Report(&quiet, results, false)
	require.Equal(t, 1, p)
	require.Equal(t, 1, f)
	require.Equal(t, `--- FAIL: orders/fails (0.00s)
    examples/orders.test.yaml:12:9: step notify.with.json.text
        expected: "Order 7"
        got:      "Order 8"
    examples/orders.test.yaml:14:5: step notify.with.json.body
        expected: "line 1
                  line 2"
        got:      (missing)
`, quiet.String())

	var verbose bytes.Buffer
	p, f = Report(&verbose, results, true)
	require.Equal(t, 1, p)
	require.Equal(t, 1, f)
	require.True(t, strings.HasPrefix(verbose.String(), `=== RUN   orders/passes
--- PASS: orders/passes (0.00s)
=== RUN   orders/fails
--- FAIL: orders/fails (0.00s)
    examples/orders.test.yaml:12:9: step notify.with.json.text
`), verbose.String())

	var none bytes.Buffer
	p, f = Report(&none, nil, true)
	require.Zero(t, p+f)
	require.Empty(t, none.String())
}

// TestReportOfARealFailure runs a failing case end to end.
func TestReportOfARealFailure(t *testing.T) {
	tf := load(t, orders, `recipe: orders
cases:
  - name: wrong label
    event: {body: {id: 7, total: 250}}
    expect:
      steps:
        create: {with: {json: {label: Order 8}}}
`)
	var out bytes.Buffer
	p, f := Report(&out, Run(context.Background(), tf, Options{}), false)
	require.Equal(t, 0, p)
	require.Equal(t, 1, f)
	require.Regexp(t, `^--- FAIL: orders/wrong label \(\d+\.\d\ds\)
    \S+r\.test\.yaml:7:24: step create\.with\.json\.label
        expected: "Order 8"
        got:      "Order 7"
$`, out.String())
}
