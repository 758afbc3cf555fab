package recipes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	exprfile "github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/vm"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// exprEnv is a run's environment with an event of every kind of value.
func exprEnv() map[string]any {
	type named struct{ Name string }
	return map[string]any{
		"event": map[string]any{
			"n": 3,
			"s": "hello",
			"body": map[string]any{
				"order":  map[string]any{"id": 7, "total": 250.5},
				"items":  []any{map[string]any{"name": "a", "price": 1}, map[string]any{"name": "b", "price": 2}},
				"tags":   []any{"vip"},
				"sm":     map[string]string{"k": "v"},
				"struct": named{Name: "n"},
				"nil":    nil,
				"text":   "abcdef",
			},
		},
		"trigger": map[string]any{"type": "webhook.received", "id": "ev", "received_at": "2026-11-22T07:30:00Z"},
		"vars":    map[string]any{"v": "x"},
		"steps":   map[string]any{},
		"run":     map[string]any{"id": "run-1", "recipe": "r", "attempt": 1},
		"secrets": map[string]any{"TOKEN": "t"},
	}
}

// Loaded programs are rewritten (fast field reads) and stripped of what
// running does not need: each must give what expr's own program gives,
// value or error message, and say truly what it reads.
func TestCompiledProgramsRunAsExprDoes(t *testing.T) {
	shape := connector.Obj(
		connector.P("n", connector.Leaf(connector.Int, "")),
		connector.P("s", connector.Leaf(connector.String, "")),
		connector.P("body", connector.Leaf(connector.Any, "")),
	)
	f := newFile("t.yaml", nil)
	sc := &scope{event: shapeType(shape), vars: []string{"v"}, natures: f.natures()}
	for _, c := range []struct {
		src   string
		reads []string // what Reads says yes to, of event, trigger, trigger.received_at, vars, run, secrets
	}{
		{`event.body.order.total >= 100`, []string{"event"}},
		{`event.n > 2 && event.s == "hello"`, []string{"event"}},
		{`event.body.missing`, []string{"event"}},
		{`event.body.missing.deeper`, []string{"event"}},
		{`event.body.nil.deeper`, []string{"event"}},
		{`event.body?.missing?.deeper`, []string{"event"}},
		{`event.body["order"]["id"] + event.body.order["id"]`, []string{"event"}},
		{`event.body.order[event.s]`, []string{"event"}},
		{`let o = event.body.order; o.id + o.total`, []string{"event"}},
		{`all(event.body.items, {.price > 0})`, []string{"event"}},
		{`map(event.body.items, .name)`, []string{"event"}},
		{`filter(event.body.items, .price > 1) | map(.name)`, []string{"event"}},
		{`map(filter(event.body.items, .price > 1), trigger.received_at)`, []string{"event", "trigger", "trigger.received_at"}},
		{`count(event.body.items, .price > 1) > 0`, []string{"event"}},
		{`sum(map(event.body.items, .price))`, []string{"event"}},
		{`upper(event.body.customer?.name ?? 'unknown')`, []string{"event"}},
		{`len(split(trigger.received_at, 'T'))`, []string{"trigger", "trigger.received_at"}},
		{`trigger.type + trigger.id`, []string{"trigger"}},
		{`trigger`, []string{"trigger", "trigger.received_at"}},
		{`event.body.items[0].name + event.body.items[-1].name`, []string{"event"}},
		{`event.body.text[1:3]`, []string{"event"}},
		{`event.body.text.x`, []string{"event"}},
		{`event.n in [1, 2, 3]`, []string{"event"}},
		{`'vip' in event.body.tags`, []string{"event"}},
		{`event.body.order.id == 7 ? "a" : "b"`, []string{"event"}},
		{`{'a': event.body.order.id}.a`, []string{"event"}},
		{`event.body.struct.Name`, []string{"event"}},
		{`event.body.struct.Missing`, []string{"event"}},
		{`event.body.sm.k`, []string{"event"}},
		{`$env.trigger.received_at`, []string{"event", "trigger", "trigger.received_at", "vars", "run", "secrets"}},
		{`toJSON(event.body.order)`, []string{"event"}},
		{`vars.v + run.id + secrets.TOKEN`, []string{"vars", "run", "secrets"}},
		{`event.body.items[5]`, []string{"event"}},
		{`1 / 0`, nil},
	} {
		cfg := sc.config(false)
		got, err := sc.compile(c.src, false)
		require.NoError(t, err, c.src)
		// expr's own program, compiled alike but not rewritten
		tree, err := checker.ParseCheck(c.src, cfg)
		require.NoError(t, err, c.src)
		require.NoError(t, optimizer.Optimize(&tree.Node, cfg), c.src)
		want, err := compiler.Compile(tree, cfg)
		require.NoError(t, err, c.src)

		for range 2 { // a reused machine gives the same
			wantOut, wantErr := vm.Run(want, exprEnv())
			m := vms.Get().(*vm.VM)
			out, err := m.Run(got.prog, exprEnv())
			vms.Put(m)
			require.Equal(t, wantOut, out, c.src)
			if wantErr != nil {
				require.Error(t, err, c.src)
				require.Equal(t, message(wantErr), message(err), c.src)
			} else {
				require.NoError(t, err, c.src)
			}
		}

		e := &Expr{prog: got.prog, reads: got.reads}
		for _, name := range []string{"event", "trigger", "trigger.received_at", "vars", "run", "secrets"} {
			require.Equal(t, contains(c.reads, name), e.Reads(name), "%s reads %s", c.src, name)
		}
		require.True(t, e.Reads("trigger.type") == e.Reads("trigger"), c.src)
		require.True(t, e.Reads("nothing"), "an unknown name may be read")
	}
}

func message(err error) string {
	var fe *exprfile.Error
	if errors.As(err, &fe) {
		return fe.Message
	}
	return err.Error()
}

// A loaded program keeps no syntax tree.
func TestCompiledProgramsDropTheirTree(t *testing.T) {
	f := newFile("t.yaml", nil)
	sc := &scope{event: shapeType(nil), natures: f.natures()}
	kept := 0
	for _, src := range []string{`event.a.b > 1`, `upper(event.a)`, `toJSON(event.a)`, `now()`} {
		c, err := sc.compile(src, false)
		require.NoError(t, err)
		if n := c.prog.Node(); n != nil {
			kept++
			require.True(t, reflect.ValueOf(n).Elem().IsZero(), "%s keeps its tree", src)
		}
	}
	require.NotZero(t, kept, "no program kept a node: the test checks nothing")
}

// TestFastFetchesApply fails when expr changes so that the rewrite of
// constant-key fetches (fastFetches) no longer applies: the programs would
// still give the same results (TestCompiledProgramsRunAsExprDoes) but
// allocate for every field read, on every event.
func TestFastFetchesApply(t *testing.T) {
	require.GreaterOrEqual(t, fetchCallKind, 0, "expr's OpCallTyped knows no func(any) any")
	f := newFile("t.yaml", nil)
	sc := &scope{event: shapeType(nil), natures: f.natures()}
	c, err := sc.compile(`event.body.order.total > 1`, false)
	require.NoError(t, err)
	require.Contains(t, c.prog.Bytecode, vm.OpCallTyped)
	require.NotContains(t, c.prog.Bytecode, vm.OpFetch, "a constant-key fetch was left as it was")
}

// The recipes of one load share the programs of their common expressions.
func TestLoadSharesPrograms(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		src := fmt.Sprintf(`version: 1
name: r%d
trigger: {type: test.hook}
filter: event.n > %d
steps:
  - id: call
    action: test.call
    with: {text: "{{ event.s }}"}
`, i, i)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d.yaml", i)), []byte(src), 0o644))
	}
	reg := connector.NewRegistry()
	require.NoError(t, reg.Add(&connector.Spec{ID: "test.hook", Kind: connector.KindTrigger, Summary: "A hook",
		Shape: connector.Obj(connector.P("n", connector.Leaf(connector.Int, "")), connector.P("s", connector.Leaf(connector.String, "")))}))
	require.NoError(t, reg.Add(&connector.Spec{ID: "test.call", Kind: connector.KindAction, Summary: "A call",
		Fields: []connector.Field{{Name: "text", Type: connector.String, Description: "Text"}},
		Action: connector.ActionFunc(func(context.Context, *connector.Request) (map[string]any, error) { return nil, nil })}))
	set, diags := (&Loader{Registry: reg}).LoadPaths([]string{dir})
	require.False(t, diags.HasErrors(), "%v", diags)
	require.Len(t, set.Recipes, 2)
	text := func(r *Recipe) *Expr {
		v, ok := r.Steps[0].with.(mapValue).get("text")
		require.True(t, ok)
		return v.(single).e
	}
	a, b := set.Recipes[0], set.Recipes[1]
	require.Same(t, text(a).prog, text(b).prog, "the same template, one program")
	require.NotSame(t, a.Filter.prog, b.Filter.prog, "other constants, other programs")
	env := map[string]any{"event": map[string]any{"n": 1, "s": "x"}}
	for i, r := range set.Recipes {
		ok, err := r.Filter.Bool(env)
		require.NoError(t, err)
		require.Equal(t, i == 0, ok, r.Name)
		out, err := r.Steps[0].RenderRaw(env)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"text": "x"}, out)
	}
}
