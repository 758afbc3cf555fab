package recipes

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	exprfile "github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/sous-run/sous/engine/connector"
)

// Expr is one compiled expression with the place it was written.
type Expr struct {
	Source string
	Pos    Pos
	prog   *vm.Program
}

// Eval runs the expression against an environment.
func (e *Expr) Eval(env map[string]any) (any, error) {
	m := vms.Get().(*vm.VM)
	out, err := m.Run(e.prog, env)
	vms.Put(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Pos, flatten(err))
	}
	return out, nil
}

// vms reuses expr's virtual machines: a run allocates less, which matters
// on the hot path (every event's filter) once many recipes make the heap
// large enough for garbage collection to dominate.
var vms = sync.Pool{New: func() any { return new(vm.VM) }}

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

	// natures holds the parts of the environment types whose expr nature
	// is computed once (see types). Copies of the scope share it.
	natures map[string]types.Type
	// cache holds the expr configuration of the scope; see config.
	cache *scopeCache
}

// baseConfig is expr's default configuration, shared read-only by every
// compile (a copy of it gets the environment).
var baseConfig = conf.CreateNew()

type scopeCache struct {
	owner       *scope
	vars, steps int // how many of the scope's vars and steps env holds
	onError     bool
	cfg         [2]*conf.Config // [0]: any result, [1]: boolean
	// the natures of vars and steps inside the configurations' env:
	// their field maps are shared, so adding a field adds it for both
	varsNt, stepsNt nature.Nature
	// progs are the programs compiled in this scope, by source: the same
	// expression ({{ run.id }} in every step) compiles once. A program
	// stays right as the scope grows, since names are only added.
	progs [2]map[string]*vm.Program
}

// config returns the expr configuration of the scope as it is now.
//
// Building a configuration (the environment converted to expr's natures)
// costs more than most compiles, and the scope changes at every var and
// step. So one configuration is built per scope and grown in place: vars
// and steps only ever get new names, and a configuration of an earlier
// state is never used again (compiled programs keep no reference to it
// that matters when they run).
func (s *scope) config(asBool bool) *conf.Config {
	c := s.cache
	if c == nil || c.owner != s || c.onError != s.onError || c.vars > len(s.vars) || c.steps > len(s.steps) {
		// what expr.Compile does with its options, from a copy of a base
		// configuration whose tables of builtins are only read
		cfg := new(conf.Config)
		*cfg = *baseConfig
		expr.Env(s.types())(cfg)
		cfg.Check()
		c = &scopeCache{owner: s, vars: len(s.vars), steps: len(s.steps), onError: s.onError}
		c.cfg[0] = cfg
		c.varsNt, c.stepsNt = cfg.Env.Fields["vars"], cfg.Env.Fields["steps"]
		s.cache = c
	}
	if c.vars < len(s.vars) || c.steps < len(s.steps) {
		if c.varsNt.TypeData == nil || c.stepsNt.TypeData == nil {
			// not the maps expected (scope.only): build anew
			s.cache = nil
			return s.config(asBool)
		}
		for _, v := range s.vars[c.vars:] {
			c.varsNt.Fields[v] = types.Any.Nature()
		}
		for _, st := range s.steps[c.steps:] {
			c.stepsNt.Fields[st.id] = stepType(st).Nature()
		}
		c.vars, c.steps = len(s.vars), len(s.steps)
	}
	i := 0
	if asBool {
		i = 1
	}
	if c.cfg[i] == nil {
		// the boolean configuration is a copy of the other one, sharing
		// its environment
		cfg := new(conf.Config)
		*cfg = *c.cfg[1-i]
		cfg.Expect, cfg.ExpectAny = reflect.Invalid, false
		if asBool {
			expr.AsBool()(cfg)
		}
		c.cfg[i] = cfg
	}
	return c.cfg[i]
}

// shapeTypes caches the expr type of each connector shape: shapes are
// declared once, at init, and the types built from them are only read.
var shapeTypes sync.Map // *connector.Shape -> types.Type

func shapeType(s *connector.Shape) types.Type {
	if s == nil {
		return types.Any
	}
	if t, ok := shapeTypes.Load(s); ok {
		return t.(types.Type)
	}
	t, _ := shapeTypes.LoadOrStore(s, s.ExprType())
	return t.(types.Type)
}

// natures returns the file's cache of expr natures that never change
// (see scope.types), shared by the scopes of the trigger and the steps,
// which see the same event.
func (f *file) natures() map[string]types.Type {
	if f.natureCache == nil {
		f.natureCache = map[string]types.Type{}
	}
	return f.natureCache
}

func stepType(st stepScope) types.Type {
	return types.Map{"output": st.output, "status": types.String}
}

type stepScope struct {
	id     string
	output types.Type
}

// envNames are every top-level name of the expression environment.
var envNames = []string{"event", "trigger", "vars", "steps", "run", "error", "secrets"}

// types is the environment of the scope as expr types: for the compiler,
// and for the suggestions of a diagnostic.
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
	if s.natures == nil {
		s.natures = map[string]types.Type{}
	}
	// the parts that do not change as the scope grows are wrapped so that
	// expr converts them to its own representation once
	fixed := func(key string, t types.Type) types.Type {
		c, ok := s.natures[key]
		if !ok {
			c = &cachedType{t: t}
			s.natures[key] = c
		}
		return c
	}
	vars := types.Map{}
	for _, v := range s.vars {
		vars[v] = types.Any
	}
	steps := types.Map{}
	for _, st := range s.steps {
		steps[st.id] = fixed("steps."+st.id, stepType(st))
	}
	event := s.event
	if event == nil {
		event = types.Any
	}
	m := types.Map{
		"event":   fixed("event", event),
		"trigger": fixed("trigger", types.Map{"type": types.String, "id": types.String, "received_at": types.String}),
		"vars":    vars,
		"steps":   steps,
		"run":     fixed("run", types.Map{"id": types.String, "recipe": types.String, "attempt": types.Int}),
		"secrets": fixed("secrets", secrets),
	}
	if s.onError {
		m["error"] = fixed("error", types.Map{"step": types.String, "message": types.String})
	}
	return m
}

// cachedType is a type whose expr nature is computed once.
type cachedType struct {
	t  types.Type
	nt *nature.Nature
}

func (c *cachedType) Nature() nature.Nature {
	if c.nt == nil {
		nt := c.t.Nature()
		c.nt = &nt
	}
	return *c.nt
}

func (c *cachedType) Equal(t types.Type) bool { return c.t.Equal(unwrapType(t)) }
func (c *cachedType) String() string          { return c.t.String() }

func unwrapType(t types.Type) types.Type {
	if c, ok := t.(*cachedType); ok {
		return c.t
	}
	return t
}

// compile compiles src against the scope. at maps a rune offset in src to
// a file position. It returns a diagnostic rather than an error. what names
// a boolean expression (filter, step x.if) in the message when it gives
// another type.
func (f *file) compile(src string, sc *scope, asBool bool, what string, at func(off int) Pos) *Expr {
	if strings.TrimSpace(src) == "" {
		f.errorAt(at(0), "empty expression")
		return nil
	}
	prog, err := sc.compile(src, asBool)
	if err != nil {
		if got, ok := strings.CutPrefix(err.Error(), "expected bool, but got "); ok && asBool {
			// expr's own message names neither the place nor the rule
			f.errorAt(at(0), "%s must be a boolean expression (true or false), but this one gives %s", what, exprTypeName(got))
			return nil
		}
		f.exprError(src, err, sc, sc.types(), at)
		return nil
	}
	return &Expr{Source: src, Pos: at(0), prog: prog}
}

// exprTypeName names an expr-lang type for a user.
func exprTypeName(t string) string {
	switch t {
	case "int", "float":
		return "a number"
	case "string":
		return "a string"
	case "array":
		return "a list"
	case "map":
		return "a mapping"
	case "nil":
		return "nil"
	}
	return "a value of type " + t
}

// compile compiles src in the scope, once per source.
func (s *scope) compile(src string, asBool bool) (*vm.Program, error) {
	cfg := s.config(asBool)
	i := 0
	if asBool {
		i = 1
	}
	c := s.cache
	if prog, ok := c.progs[i][src]; ok {
		return prog, nil
	}
	prog, err := compileExpr(src, cfg)
	if err != nil {
		return nil, err
	}
	if c.progs[i] == nil {
		c.progs[i] = map[string]*vm.Program{}
	}
	c.progs[i][src] = prog
	return prog, nil
}

// compileExpr is expr.Compile with a configuration built beforehand: the
// same steps (parse and type-check, optimize, compile), without building a
// new configuration and environment for every expression. cfg is only
// read, but for the type cache of the checker: a scope, and so its
// configuration, belongs to one Parse and one goroutine.
func compileExpr(src string, cfg *conf.Config) (*vm.Program, error) {
	tree, err := checker.ParseCheck(src, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Optimize {
		if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
			var fe *exprfile.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, cfg)
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
		// sorted, so that a tie between candidates always gives the same
		// suggestion
		cands := append(sortedKeys(env), builtin.Names...)
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
		m, ok := unwrapType(cur).(types.Map)
		if !ok {
			return path, nil
		}
		cur = m[p]
	}
	m, ok := unwrapType(cur).(types.Map)
	if !ok {
		return path, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != types.Extra {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // a tie always gives the same suggestion
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
	case []byte:
		return string(x)
	case fmt.Stringer:
		return x.String()
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
		// every map and list as JSON ([]string from split() as well as
		// []any), without escaping <, > and & for HTML
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Sprint(v)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	return fmt.Sprint(v)
}
