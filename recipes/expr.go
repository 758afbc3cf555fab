package recipes

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	exprfile "github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// Expr is one compiled expression with the place it was written.
type Expr struct {
	Source string
	Pos    Pos
	prog   *vm.Program
}

// Eval runs the expression against an environment.
func (e *Expr) Eval(env map[string]any) (any, error) {
	out, err := expr.Run(e.prog, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Pos, flatten(err))
	}
	return out, nil
}

// Bool runs a boolean expression.
func (e *Expr) Bool(env map[string]any) (bool, error) {
	out, err := e.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("%s: expression gave %T, want a boolean", e.Pos, out)
	}
	return b, nil
}

// flatten turns expr's multi-line error (with a snippet) into one line.
func flatten(err error) error {
	var fe *exprfile.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}

// scope is what an expression can see at one place in a recipe.
type scope struct {
	event   types.Type
	vars    []string // defined so far
	steps   []stepScope
	onError bool
	// only lists the names allowed at all (trigger options see secrets only).
	only []string
	// later holds names that exist but are defined after this point, by
	// top-level name ("vars", "steps"), for a clearer message.
	later map[string][]string
	// hint explains why a name is missing here.
	hint string
}

type stepScope struct {
	id     string
	output types.Type
}

// envNames are every top-level name of the expression environment.
var envNames = []string{"event", "trigger", "vars", "steps", "run", "error", "secrets"}

func (s *scope) types() types.Map {
	secrets := types.Map{types.Extra: types.String}
	if s.only != nil {
		m := types.Map{}
		for _, n := range s.only {
			if n == "secrets" {
				m["secrets"] = secrets
			}
		}
		return m
	}
	vars := types.Map{}
	for _, v := range s.vars {
		vars[v] = types.Any
	}
	steps := types.Map{}
	for _, st := range s.steps {
		steps[st.id] = types.Map{"output": st.output, "status": types.String}
	}
	event := s.event
	if event == nil {
		event = types.Any
	}
	m := types.Map{
		"event":   event,
		"trigger": types.Map{"type": types.String, "id": types.String, "received_at": types.String},
		"vars":    vars,
		"steps":   steps,
		"run":     types.Map{"id": types.String, "recipe": types.String, "attempt": types.Int},
		"secrets": secrets,
	}
	if s.onError {
		m["error"] = types.Map{"step": types.String, "message": types.String}
	}
	return m
}

// compile compiles src against the scope. at maps a rune offset in src to
// a file position. It returns a diagnostic rather than an error.
func (f *file) compile(src string, sc *scope, asBool bool, at func(off int) Pos) *Expr {
	env := sc.types()
	opts := []expr.Option{expr.Env(env)}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	if strings.TrimSpace(src) == "" {
		f.errorAt(at(0), "empty expression")
		return nil
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		f.exprError(src, err, sc, env, at)
		return nil
	}
	return &Expr{Source: src, Pos: at(0), prog: prog}
}

const (
	unknownFieldRE = "unknown field "
	unknownNameRE  = "unknown name "
)

func (f *file) exprError(src string, err error, sc *scope, env types.Map, at func(off int) Pos) {
	var fe *exprfile.Error
	if !errors.As(err, &fe) {
		f.errorAt(at(0), "expression: %v", err)
		return
	}
	msg := fe.Message
	off := fe.From
	switch {
	case strings.HasPrefix(msg, unknownNameRE):
		name := strings.TrimPrefix(msg, unknownNameRE)
		if sc.only != nil && contains(envNames, name) {
			msg = fmt.Sprintf("%s is not available here: %s", name, sc.hint)
			break
		}
		if name == "error" {
			msg = "error is only available in on_error steps"
			break
		}
		cands := append([]string{}, builtin.Names...)
		for k := range env {
			cands = append(cands, k)
		}
		msg += suggest(name, cands)
	case strings.HasPrefix(msg, unknownFieldRE):
		name := strings.TrimPrefix(msg, unknownFieldRE)
		path, siblings := fieldContext(src, off, name, env)
		if len(path) == 1 {
			if later := sc.later[path[0]]; contains(later, name) {
				what := "step"
				if path[0] == "vars" {
					what = "var"
				}
				msg = fmt.Sprintf("%s %s is defined later; only earlier %ss can be used here", what, name, what)
				break
			}
		}
		where := strings.Join(path, ".")
		if where != "" {
			msg = fmt.Sprintf("unknown field %s in %s", name, where)
		}
		msg += suggest(name, siblings)
	}
	f.errorAt(at(off), "expression: %s", msg)
}

// fieldContext finds the member access named name at offset off in src and
// returns the path of the object it is read from and that object's keys.
func fieldContext(src string, off int, name string, env types.Map) ([]string, []string) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, nil
	}
	var found *ast.MemberNode
	ast.Find(tree.Node, func(n ast.Node) bool {
		m, ok := n.(*ast.MemberNode)
		if !ok || found != nil {
			return false
		}
		if s, ok := m.Property.(*ast.StringNode); ok && s.Value == name {
			loc := m.Property.Location()
			if loc.From <= off && off <= loc.To+1 || m.Location().From <= off && off <= m.Location().To {
				found = m
				return true
			}
		}
		return false
	})
	if found == nil {
		return nil, nil
	}
	path, ok := memberPath(found.Node)
	if !ok {
		return nil, nil
	}
	var cur types.Type = env
	for _, p := range path {
		m, ok := cur.(types.Map)
		if !ok {
			return path, nil
		}
		cur = m[p]
	}
	m, ok := cur.(types.Map)
	if !ok {
		return path, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != types.Extra {
			keys = append(keys, k)
		}
	}
	return path, keys
}

func memberPath(n ast.Node) ([]string, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return []string{x.Value}, true
	case *ast.MemberNode:
		s, ok := x.Property.(*ast.StringNode)
		if !ok {
			return nil, false
		}
		p, ok := memberPath(x.Node)
		if !ok {
			return nil, false
		}
		return append(p, s.Value), true
	}
	return nil, false
}

// Text renders a value as template text: strings as they are, whole
// numbers without a decimal point, nil as empty, maps and lists as JSON.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return Text(float64(x))
	case fmt.Stringer:
		return x.String()
	case map[string]any, []any, map[string]string:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}
