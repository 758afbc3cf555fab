package recipes

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// compileForTest compiles src as a recipe's vars do, against an event
// with a number n, a string s and an untyped body.
func compileForTest(t *testing.T, src string) *Expr {
	t.Helper()
	shape := connector.Obj(
		connector.P("n", connector.Leaf(connector.Int, "")),
		connector.P("s", connector.Leaf(connector.String, "")),
		connector.P("body", connector.Leaf(connector.Any, "")),
	)
	f := newFile("t.yaml", nil)
	sc := &scope{event: shapeType(shape), natures: f.natures()}
	c, err := sc.compile(src, false)
	require.NoError(t, err, src)
	return &Expr{Source: src, prog: c.prog, reads: c.reads, loops: c.loops}
}

// Every expression an outsider's event can blow up ends with ErrBudget,
// having allocated a bounded amount: the reproductions of issue 19 first
// (the one webhook that took the process down, and a loop that ran 21 s).
func TestExpressionBudget(t *testing.T) {
	big := strings.Repeat("x", 1<<20) // a 1 MiB field of an event body
	for _, c := range []struct {
		name, src string
		n         int
		want      string // in the error
	}{
		{"nested repeat (issue 19)", `event.n > 0 ? len(repeat(repeat("a", 999999), int(event.n))) : 0`, 999999, "repeat of 976.6 KiB 999999 times would make"},
		{"nested repeat, n = 2000 (issue 19)", `event.n > 0 ? len(repeat(repeat("a", 999999), int(event.n))) : 0`, 2000, "repeat of"},
		{"quadratic concatenation (issue 19)", `reduce(1..100000, #acc + "xxxxxxxxxx", "")`, 0, "budget"},
		{"doubling", `len(reduce(1..64, #acc + #acc, "a"))`, 0, "budget"},
		{"replace grows", `len(replace(repeat("a", 1000000), "a", repeat("b", 1000)))`, 0, "replace would make"},
		{"replace of empty", `len(replace(repeat("a", 1000000), "", repeat("b", 100)))`, 0, "replace would make"},
		{"join of one value many times", `len(join(map(1..100000, event.body.big), ","))`, 0, "join would make"},
		{"toJSON of one value many times", `len(toJSON(map(1..100000, event.body.big)))`, 0, "toJSON would make"},
		{"string of one value many times", `len(string(map(1..100000, event.body.big)))`, 0, "string would make"},
		{"a result larger than it was to make", `map(1..100000, event.body.big)`, 0, "written out"},
		{"nested loops", `count(1..1000, count(1..1000, count(1..1000, true) > 0) > 0)`, 0, "budget"},
		{"a long range", `len(1..100000000)`, 0, "budget"},
		{"upper of a large string many times", `len(map(1..1000, upper(event.body.big)))`, 0, "budget"},
		{"scans that take long", `all(1..900000, {not (event.body.big contains "zz")})`, 0, "expression ran longer than 2s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := compileForTest(t, c.src)
			env := map[string]any{"event": map[string]any{"n": c.n, "s": "", "body": map[string]any{"big": big}}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			out, err := e.Eval(env)
			runtime.ReadMemStats(&after)
			require.Error(t, err, "gave %.100v", out)
			require.ErrorIs(t, err, ErrBudget)
			require.Contains(t, err.Error(), c.want)
			// bounded before allocating: a few times the budget at most
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8*MaxExprValue), "allocated")
			_, left := env[budgetKey]
			require.False(t, left, "the budget stays in the environment")
		})
	}
}

// What stays within the budget gives what expr gives, loops and + included.
func TestExpressionBudgetAllowsOrdinaryWork(t *testing.T) {
	for _, c := range []struct {
		src  string
		want any
	}{
		{`event.s + "-" + string(event.n)`, "ab-3"},
		{`repeat("ab", 3)`, "ababab"},
		{`replace("a-b-c", "-", "--")`, "a--b--c"},
		{`join(map(1..3, string(#)), ",")`, "1,2,3"},
		{`reduce(1..1000, #acc + 1, 0)`, 1000},
		{`len(reduce(1..1000, #acc + "x", ""))`, 1000},
		{`sum(map(filter(1..10000, # % 2 == 0), # * 2))`, 50010000},
		{`upper(event.s) + lower("X")`, "ABx"},
		{`toJSON({"i": [1, 2]})`, "{\n  \"i\": [\n    1,\n    2\n  ]\n}"},
		{`event.n + 1`, 4},
		{`event.body.total + 0.5`, 2.5},
	} {
		t.Run(c.src, func(t *testing.T) {
			e := compileForTest(t, c.src)
			env := map[string]any{"event": map[string]any{"n": 3, "s": "ab", "body": map[string]any{"total": 2}}}
			out, err := e.Eval(env)
			require.NoError(t, err)
			require.Equal(t, c.want, out)
		})
	}
}

func TestValueSize(t *testing.T) {
	s := strings.Repeat("a", 100)
	shared := []any{s, s, s}
	n, ok := ValueSize(map[string]any{"a": shared, "b": shared}, 1<<20)
	require.True(t, ok)
	require.Greater(t, n, 600)
	many := make([]any, 1000)
	for i := range many {
		many[i] = shared
	}
	n, ok = ValueSize(many, 10000)
	require.False(t, ok)
	require.Less(t, n, 20000, "it stops at the limit")
	_, ok = ValueSize([]string{"a", "b"}, 4)
	require.False(t, ok)
}

func TestBudgetErrorsAreErrBudget(t *testing.T) {
	require.True(t, errors.Is(tooLarge("x", 1), ErrBudget))
	require.Equal(t, "x would make 32.0 MiB, over the 32.0 MiB an expression may make", tooLarge("x", MaxExprValue).Error())
}
