package recipes

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"
)

// Every evaluation of an expression is bounded, so that no input can make
// one take the process's memory or a core for long: an event's body is
// data an outsider chose, and the recipe's expressions run on it.
//
// expr's virtual machine counts what some instructions make (ranges,
// array and map literals, a few builtins) against a budget per
// evaluation, but only after making it, and it counts neither string
// growth nor loop iterations. So Sous:
//   - checks the size of what repeat, replace, join, toJSON and string
//     would make before they make it, and refuses more than MaxExprValue;
//   - counts every string, list and map a builtin or + makes against the
//     machine's budget (ExprBudget units: a byte of string is
//     1/bytesPerUnit of a unit, an element or an iteration one unit);
//   - counts every iteration of a loop (map, filter, reduce, all...), and
//     ends a loop running longer than MaxExprTime;
//   - refuses a result (a list or map) whose JSON would be larger than
//     MaxExprValue, since the run's record and the step's request encode
//     it after the machine is done.
//
// Going over any of these ends the evaluation with an error wrapping
// ErrBudget, which fails the run (permanently: the same event would fail
// the same way again) rather than the process.
const (
	// ExprBudget is the budget of one evaluation in units (see above).
	ExprBudget = 1 << 20
	// bytesPerUnit is how many bytes of string one unit of budget is.
	bytesPerUnit = 32
	// MaxExprValue bounds, in bytes, a string an expression makes and
	// the JSON of a list or map it gives: 32 MiB.
	MaxExprValue = ExprBudget * bytesPerUnit
	// MaxExprTime bounds the time one evaluation spends in loops.
	MaxExprTime = 2 * time.Second
)

// ErrBudget is wrapped by the error of an evaluation that went over its
// budget of memory or work.
var ErrBudget = errors.New("expression over budget")

// budgetError is what a guarded builtin returns: the virtual machine
// panics with it, recovers, and wraps it, so that errors.Is finds
// ErrBudget.
type budgetError struct{ msg string }

func (e *budgetError) Error() string { return e.msg }
func (e *budgetError) Unwrap() error { return ErrBudget }

func overBudget(format string, args ...any) error {
	return &budgetError{msg: fmt.Sprintf(format, args...)}
}

// tooLarge is the error of a builtin that would make a value over
// MaxExprValue.
func tooLarge(what string, n int) error {
	return overBudget("%s would make %s, over the %s an expression may make", what, byteSize(n), byteSize(MaxExprValue))
}

// byteSize writes a number of bytes for a person.
func byteSize(n int) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// strUnits is the budget a string of n bytes costs.
func strUnits(n int) uint { return uint(n/bytesPerUnit) + 1 }

// Names of the builtins Sous adds to expr's table for the instructions
// it inserts: they cannot be written in a recipe, since the parser never
// makes a builtin of a name with a space.
const (
	addBuiltin  = "sous add"
	tickBuiltin = "sous tick"
)

// budgetKey is the key of an evaluation's *evalBudget in its environment,
// set only while a program with loops runs. Not a name an expression can
// write.
const budgetKey = "sous budget"

// evalBudget is what the loops of one evaluation have spent.
type evalBudget struct {
	start time.Time
	ticks uint
}

var evalBudgets = sync.Pool{New: func() any { return new(evalBudget) }}

// guardBuiltins puts the guards above into expr's table of builtins, which
// its compiler reads: the table is global, and Sous is its only user in
// the process. Called once, before anything compiles.
var guardBuiltins = sync.OnceFunc(func() {
	for _, f := range builtin.Builtins {
		switch f.Name {
		case "repeat":
			f.Safe = guardedRepeat
		case "replace":
			f.Safe = guardedReplace(f.Func)
			f.Func = nil
		case "join":
			f.Safe = guardedJoin(f.Func)
			f.Func = nil
		case "toJSON":
			fn := f.Func
			f.Safe = guardedMaterialize("toJSON", func(args []any) (any, error) { return fn(args...) })
			f.Func = nil
		case "string":
			fast := f.Fast
			f.Safe = guardedMaterialize("string", func(args []any) (any, error) { return fast(args[0]), nil })
			f.Fast = nil
		case "upper", "lower":
			fast := f.Fast
			f.Safe = func(args ...any) (any, uint, error) {
				out := fast(args[0])
				return out, cost(out), nil
			}
			f.Fast = nil
		case "trim", "trimPrefix", "trimSuffix", "split", "splitAfter", "toBase64", "fromBase64", "fromJSON",
			"keys", "values", "toPairs", "fromPairs", "uniq", "take":
			// they make at most a few times what they are given: counted
			// after
			fn := f.Func
			f.Safe = func(args ...any) (any, uint, error) {
				out, err := fn(args...)
				return out, cost(out), err
			}
			f.Func = nil
		}
	}
	add := &builtin.Function{
		Name:     addBuiltin,
		Safe:     guardedAdd,
		Validate: validateAdd,
	}
	tick := &builtin.Function{
		Name: tickBuiltin,
		Safe: tickLoop,
		Validate: func([]reflect.Type) (reflect.Type, error) {
			return reflect.TypeFor[any](), nil
		},
		// the environment is passed as it is
		Deref: func(int, reflect.Type) bool { return false },
	}
	for _, f := range []*builtin.Function{add, tick} {
		builtin.Index[f.Name] = len(builtin.Builtins)
		builtin.Builtins = append(builtin.Builtins, f)
	}
})

// cost is the budget a builtin's result costs: its own size, not that of
// the values it refers to (counted when they were made).
func cost(v any) uint {
	switch x := v.(type) {
	case string:
		return strUnits(len(x))
	case []any:
		return uint(len(x)) + 1
	case []string:
		return uint(len(x)) + 1
	case map[string]any:
		return uint(len(x)) + 1
	}
	return 1
}

func guardedRepeat(args ...any) (any, uint, error) {
	s, ok := args[0].(string)
	if !ok {
		return nil, 0, fmt.Errorf("invalid argument for repeat (expected a string, got %T)", args[0])
	}
	n := runtime.ToInt(args[1])
	if n < 0 {
		return nil, 0, fmt.Errorf("invalid argument for repeat (expected positive integer, got %d)", n)
	}
	if n > 0 && len(s) > MaxExprValue/n {
		return nil, 0, tooLarge(fmt.Sprintf("repeat of %s %d times", byteSize(len(s)), n), satMul(len(s), n))
	}
	out := strings.Repeat(s, n)
	return out, strUnits(len(out)), nil
}

// satMul is a*b for non-negative numbers, or the largest int when that
// overflows.
func satMul(a, b int) int {
	if a != 0 && b > int(^uint(0)>>1)/a {
		return int(^uint(0) >> 1)
	}
	return a * b
}

func guardedReplace(fn func(args ...any) (any, error)) func(args ...any) (any, uint, error) {
	return func(args ...any) (any, uint, error) {
		if len(args) == 3 {
			s, ok1 := args[0].(string)
			old, ok2 := args[1].(string)
			repl, ok3 := args[2].(string)
			if ok1 && ok2 && ok3 && len(repl) > len(old) {
				n := strings.Count(s, old) // for "", one more than the runes of s
				if grow := satMul(n, len(repl)-len(old)); grow > MaxExprValue-len(s) {
					return nil, 0, tooLarge("replace", satAdd(len(s), grow))
				}
			}
		}
		out, err := fn(args...)
		return out, cost(out), err
	}
}

func satAdd(a, b int) int {
	if b > int(^uint(0)>>1)-a {
		return int(^uint(0) >> 1)
	}
	return a + b
}

func guardedJoin(fn func(args ...any) (any, error)) func(args ...any) (any, uint, error) {
	return func(args ...any) (any, uint, error) {
		glue := 0
		if len(args) == 2 {
			if g, ok := args[1].(string); ok {
				glue = len(g)
			}
		}
		n, size := 0, 0
		switch x := args[0].(type) {
		case []string:
			n = len(x)
			for _, s := range x {
				size = satAdd(size, len(s))
			}
		case []any:
			n = len(x)
			for _, v := range x {
				if s, ok := v.(string); ok {
					size = satAdd(size, len(s))
				}
			}
		}
		if n > 1 {
			size = satAdd(size, satMul(glue, n-1))
		}
		if size > MaxExprValue {
			return nil, 0, tooLarge("join", size)
		}
		out, err := fn(args...)
		return out, cost(out), err
	}
}

// guardedMaterialize guards a builtin that writes a whole value as text:
// a list can refer to one large value many times, so its text can be far
// larger than what was made to build it.
func guardedMaterialize(name string, fn func(args []any) (any, error)) func(args ...any) (any, uint, error) {
	return func(args ...any) (any, uint, error) {
		if n, ok := ValueSize(args[0], MaxExprValue); !ok {
			return nil, 0, tooLarge(name, n)
		}
		out, err := fn(args)
		return out, cost(out), err
	}
}

// guardedAdd is + of values that are not both numbers: for two strings, a
// string of both, whose size is checked before it is made.
func guardedAdd(args ...any) (any, uint, error) {
	a, aok := args[0].(string)
	b, bok := args[1].(string)
	if aok && bok {
		if len(a) > MaxExprValue-len(b) {
			return nil, 0, tooLarge("+", satAdd(len(a), len(b)))
		}
		s := a + b
		return s, strUnits(len(s)), nil
	}
	return runtime.Add(args[0], args[1]), 1, nil
}

func validateAdd(args []reflect.Type) (reflect.Type, error) {
	str := reflect.TypeFor[string]()
	if len(args) == 2 && args[0] == str && args[1] == str {
		return str, nil
	}
	return reflect.TypeFor[any](), nil
}

// tickLoop counts one iteration of a loop, and ends an evaluation whose
// loops have run longer than MaxExprTime.
func tickLoop(args ...any) (any, uint, error) {
	env, _ := args[0].(map[string]any)
	if b, ok := env[budgetKey].(*evalBudget); ok {
		b.ticks++
		if b.ticks&1023 == 0 && time.Since(b.start) > MaxExprTime {
			return nil, 0, overBudget("expression ran longer than %s (%d loop iterations)", MaxExprTime, b.ticks)
		}
	}
	return nil, 1, nil
}

// guard rewrites a checked syntax tree so that its evaluation stays in
// budget: + of values not known to be numbers becomes a guarded add, and
// every loop body counts its iterations first. It reports whether the
// tree has loops. The tree must be checked again before it compiles.
func guard(root *ast.Node) (changed, loops bool) {
	g := &guarder{}
	ast.Walk(root, g)
	return g.changed, g.loops
}

type guarder struct{ changed, loops bool }

func (g *guarder) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.BinaryNode:
		if x.Operator != "+" || isNumber(x.Left) && isNumber(x.Right) {
			return
		}
		call := &ast.BuiltinNode{Name: addBuiltin, Arguments: []ast.Node{x.Left, x.Right}}
		ast.Patch(n, call)
		g.changed = true
	case *ast.PredicateNode:
		g.loops, g.changed = true, true
		tick := &ast.BuiltinNode{Name: tickBuiltin, Arguments: []ast.Node{&ast.IdentifierNode{Value: "$env"}}}
		x.Node = &ast.SequenceNode{Nodes: []ast.Node{tick, x.Node}}
	}
}

// isNumber reports whether a checked node is known to give a number.
func isNumber(n ast.Node) bool {
	t := n.Type()
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// ValueSize is about the size of v written as JSON, counted up to limit:
// it reports false, with the size counted so far, once v is larger. It
// walks what v refers to as many times as it is referred to, as an
// encoder would, and stops at the limit, so it costs at most about limit
// steps.
func ValueSize(v any, limit int) (int, bool) {
	s := sizer{limit: limit}
	s.add(v, 0)
	return s.n, s.n <= limit
}

type sizer struct{ n, limit int }

// maxDepth bounds the depth ValueSize walks (a value nested deeper is
// counted as too large: no encoder would write it either).
const maxDepth = 10000

func (s *sizer) add(v any, depth int) {
	if s.n > s.limit {
		return
	}
	if depth > maxDepth {
		s.n = s.limit + 1
		return
	}
	switch x := v.(type) {
	case nil, bool:
		s.n += 5
	case string:
		s.n += len(x) + 2
	case int, int64, float64, int32, float32, uint, uint64:
		s.n += 8
	case []any:
		s.n += 2
		for _, e := range x {
			s.n++
			s.add(e, depth+1)
			if s.n > s.limit {
				return
			}
		}
	case map[string]any:
		s.n += 2
		for k, e := range x {
			s.n += len(k) + 4
			s.add(e, depth+1)
			if s.n > s.limit {
				return
			}
		}
	case []string:
		s.n += 2
		for _, e := range x {
			s.n += len(e) + 3
		}
	default:
		s.reflected(reflect.ValueOf(v), depth)
	}
}

func (s *sizer) reflected(rv reflect.Value, depth int) {
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		s.n += 2
		for i := 0; i < rv.Len() && s.n <= s.limit; i++ {
			s.n++
			s.add(rv.Index(i).Interface(), depth+1)
		}
	case reflect.Map:
		s.n += 2
		it := rv.MapRange()
		for it.Next() && s.n <= s.limit {
			s.n += 4
			s.add(it.Key().Interface(), depth+1)
			s.add(it.Value().Interface(), depth+1)
		}
	case reflect.String:
		s.n += rv.Len() + 2
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			s.n += 4
			return
		}
		s.add(rv.Elem().Interface(), depth+1)
	default:
		s.n += 8
	}
}

// checkResult refuses a result whose text would be over MaxExprValue; a
// string was counted when it was made (or came from the environment).
func checkResult(v any) error {
	switch v.(type) {
	case nil, bool, string, int, float64:
		return nil
	}
	if n, ok := ValueSize(v, MaxExprValue); !ok {
		return overBudget("the expression's value would be over %s written out (%s at least)", byteSize(MaxExprValue), byteSize(n))
	}
	return nil
}
