package recipes

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/sous-run/sous/engine/connector"
)

// Expr is one compiled expression with the place it was written.
type Expr struct {
	Source string
	Pos    Pos
	prog   *vm.Program
	reads  reads // the environment it may read
	loops  bool  // it has loops, which count their time (see budget.go)
}

// Reads reports whether the expression may read a top-level name of its
// environment ("event", "trigger", "vars", "steps", "run", "error",
// "secrets"), or one field of it written as a path
// ("trigger.received_at"). The answer errs on the side of true: false
// means the name is certainly not read, so an environment built for the
// expression alone can leave it out.
func (e *Expr) Reads(name string) bool {
	bit, known := readBit(name)
	switch name {
	case "trigger":
		bit = readTrigger | readReceivedAt
	case "trigger.received_at":
		bit = readReceivedAt
	default:
		if known {
			break
		}
		root, _, found := strings.Cut(name, ".")
		if !found {
			return true // not a name of the environment: do not know
		}
		return e.Reads(root)
	}
	return e.reads&bit != 0
}

// readBit is the bit of a top-level name of the environment read as a
// whole (trigger, read field by field, is the caller's).
func readBit(name string) (reads, bool) {
	switch name {
	case "event":
		return readEvent, true
	case "vars":
		return readVars, true
	case "steps":
		return readSteps, true
	case "run":
		return readRun, true
	case "error":
		return readError, true
	case "secrets":
		return readSecrets, true
	}
	return 0, false
}

// Eval runs the expression against an environment.
// An evaluation is bounded in memory and work (see ErrBudget).
func (e *Expr) Eval(env map[string]any) (any, error) {
	m := vms.Get().(*vm.VM)
	m.MemoryBudget = ExprBudget
	var b *evalBudget
	if e.loops && env != nil {
		b = evalBudgets.Get().(*evalBudget)
		b.start, b.ticks = time.Now(), 0
		env[budgetKey] = b
	}
	out, err := m.Run(e.prog, env)
	vms.Put(m)
	if b != nil {
		delete(env, budgetKey)
		evalBudgets.Put(b)
	}
	if err == nil {
		err = checkResult(out)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Pos, budgetOrFlat(err))
	}
	return out, nil
}

// budgetOrFlat is flatten(err), keeping ErrBudget for an evaluation that
// went over budget (the machine's own check panics with a string).
func budgetOrFlat(err error) error {
	if errors.Is(err, ErrBudget) {
		var be *budgetError
		if errors.As(err, &be) {
			return be
		}
		return err
	}
	flat := flatten(err)
	if strings.Contains(flat.Error(), "memory budget exceeded") {
		return overBudget("expression went over its budget of %d units (a unit is an element, an iteration or %d bytes of string)", ExprBudget, bytesPerUnit)
	}
	return flat
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
	// programs, when set, shares programs beyond the scope.
	programs programs
}

// baseConfig is expr's default configuration, shared read-only by every
// compile (a copy of it gets the environment).
var baseConfig = func() *conf.Config {
	guardBuiltins()
	return conf.CreateNew()
}()

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
	progs [2]map[string]compiled
}

// compiled is a program and what it reads of the environment.
type compiled struct {
	prog  *vm.Program
	reads reads
	loops bool
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
	c, err := sc.compile(src, asBool)
	if err != nil {
		if got, ok := strings.CutPrefix(err.Error(), "expected bool, but got "); ok && asBool {
			// expr's own message names neither the place nor the rule
			f.errorAt(at(0), "%s must be a boolean expression (true or false), but this one gives %s", what, exprTypeName(got))
			return nil
		}
		f.exprError(src, err, sc, sc.types(), at)
		return nil
	}
	return &Expr{Source: src, Pos: at(0), prog: c.prog, reads: c.reads, loops: c.loops}
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
func (s *scope) compile(src string, asBool bool) (compiled, error) {
	cfg := s.config(asBool)
	i := 0
	if asBool {
		i = 1
	}
	c := s.cache
	if prog, ok := c.progs[i][src]; ok {
		return prog, nil
	}
	prog, err := compileExpr(src, cfg, s.programs)
	if err != nil {
		return compiled{}, err
	}
	if c.progs[i] == nil {
		c.progs[i] = map[string]compiled{}
	}
	c.progs[i][src] = prog
	return prog, nil
}

// compileExpr is expr.Compile with a configuration built beforehand: the
// same steps (parse and type-check, optimize, compile), without building a
// new configuration and environment for every expression. cfg is only
// read, but for the type cache of the checker: a scope, and so its
// configuration, belongs to one Parse and one goroutine.
func compileExpr(src string, cfg *conf.Config, shared programs) (compiled, error) {
	tree, err := checker.ParseCheck(src, cfg)
	if err != nil {
		return compiled{}, err
	}
	// before the optimizer, which folds parts of the tree into places
	// that ast.Walk does not visit
	rd := readsOf(&tree.Node)
	// then guarded, and checked again for the nodes the guards add
	changed, loops := guard(&tree.Node)
	if changed {
		if _, err := checker.Check(tree, cfg); err != nil {
			return compiled{}, fmt.Errorf("guard expression: %w", err)
		}
	}
	if cfg.Optimize {
		if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
			var fe *exprfile.Error
			if errors.As(err, &fe) {
				return compiled{}, fe.Bind(tree.Source)
			}
			return compiled{}, err
		}
	}
	prog, err := compiler.Compile(tree, cfg)
	if err != nil {
		return compiled{}, err
	}
	var buf [256]byte
	var key []byte
	share := false
	if shared != nil {
		if key, share = programKey(buf[:0], prog); share {
			if p, ok := shared[string(key)]; ok {
				return compiled{prog: p, reads: rd, loops: loops}, nil
			}
		}
	}
	fastFetches(prog)
	prog = slim(prog)
	if share {
		shared[string(key)] = prog
	}
	return compiled{prog: prog, reads: rd, loops: loops}, nil
}

// programs are the compiled programs of a load, by programKey: the
// recipes of a folder repeat expressions ({{ event.body.id }},
// {{ run.id }}), and a loaded program is kept for as long as its recipe
// serves.
type programs map[string]*vm.Program

// programKey appends to b what a program does: its instructions, and its
// constants when they are plain values. Two programs with the same key run
// alike, whatever their source or environment was (the types expr checked
// are in the instructions). It reports false for a program that cannot be
// compared so: one calling functions, or with other constants.
func programKey(b []byte, prog *vm.Program) ([]byte, bool) {
	for i, op := range prog.Bytecode {
		switch op {
		case vm.OpLoadFunc, vm.OpCall0, vm.OpCall1, vm.OpCall2, vm.OpCall3:
			return nil, false
		}
		b = append(b, byte(op))
		b = binary.AppendVarint(b, int64(prog.Arguments[i]))
	}
	b = binary.AppendUvarint(b, uint64(len(prog.Constants)))
	for _, c := range prog.Constants {
		switch x := c.(type) {
		case nil:
			b = append(b, 'n')
		case string:
			b = append(b, 's')
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		case int:
			b = append(b, 'i')
			b = binary.AppendVarint(b, int64(x))
		case int64:
			b = append(b, 'I')
			b = binary.AppendVarint(b, x)
		case float64:
			b = append(b, 'f')
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		case bool:
			b = append(b, 'b')
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		default:
			return nil, false
		}
	}
	return b, true
}

// fastFetches rewrites the reads of a constant key (event.body, x["id"])
// to skip reflection when the value read from is a map[string]any, as
// JSON payloads and the environment's parts are: expr's generic fetch
// goes through reflect, which allocates for every field read, and
// expressions run for every event and step. The instructions "push the
// key, fetch" become "push a function reading that key, call it" (a call
// expr knows the type of, so that it allocates no arguments): as many
// instructions, so no jump moves. Any other value is read by expr's own
// fetch, as before.
func fastFetches(prog *vm.Program) {
	if fetchCallKind < 0 {
		return
	}
	code, args := prog.Bytecode, prog.Arguments
	var targetsBuf [16]int
	targets := targetsBuf[:0] // where jumps land: the fetch must not be one
	for i, op := range code {
		switch op {
		case vm.OpJump, vm.OpJumpIfTrue, vm.OpJumpIfFalse, vm.OpJumpIfNil, vm.OpJumpIfNotNil, vm.OpJumpIfEnd:
			targets = append(targets, i+1+args[i])
		case vm.OpJumpBackward:
			targets = append(targets, i+1-args[i])
		}
	}
	var keysBuf [8]string
	keys := keysBuf[:0] // of the fetches to rewrite, by constant
	for i := 1; i < len(code); i++ {
		if code[i] != vm.OpFetch || code[i-1] != vm.OpPush || slices.Contains(targets, i) {
			continue
		}
		if key, ok := prog.Constants[args[i-1]].(string); ok && !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return
	}
	n := len(prog.Constants)
	consts := make([]any, n, n+len(keys))
	copy(consts, prog.Constants)
	for _, key := range keys {
		consts = append(consts, fetcher(key))
	}
	for i := 1; i < len(code); i++ {
		if code[i] != vm.OpFetch || code[i-1] != vm.OpPush || slices.Contains(targets, i) {
			continue
		}
		if key, ok := consts[args[i-1]].(string); ok {
			args[i-1] = n + slices.Index(keys, key)
			code[i], args[i] = vm.OpCallTyped, fetchCallKind
		}
	}
	prog.Constants = consts
}

// fetchCallKind is the number expr's OpCallTyped knows a func(any) any
// by; -1 if it knows none (then fastFetches does nothing).
var fetchCallKind = func() int {
	want := reflect.TypeFor[*func(any) any]()
	for i, t := range vm.FuncTypes {
		if t != nil && reflect.TypeOf(t) == want {
			return i
		}
	}
	return -1
}()

// fetchers are the functions of fastFetches by key, shared by every
// program, for up to maxFetchers keys (a bound, as reloads may bring new
// keys for as long as the process lives).
var (
	fetchers  sync.Map // string -> func(any) any
	nFetchers atomic.Int32
)

const maxFetchers = 10000

// fetcher returns a function that reads key from a value as expr's fetch
// does, without reflection for a map[string]any.
func fetcher(key string) func(any) any {
	if f, ok := fetchers.Load(key); ok {
		return f.(func(any) any)
	}
	f := func(from any) any {
		if m, ok := from.(map[string]any); ok {
			return m[key] // nil when absent, as expr's fetch gives
		}
		return runtime.Fetch(from, key)
	}
	if nFetchers.Load() < maxFetchers {
		if g, loaded := fetchers.LoadOrStore(key, f); loaded {
			return g.(func(any) any)
		}
		nFetchers.Add(1)
	}
	return f
}

// slim returns a program that runs as prog does but keeps only what
// running needs. A compiled program holds on to its checked syntax tree
// (with the type information of every node, the environment's included),
// its source, a position for every instruction and names for
// disassembling: several times the size of the instructions, for every
// expression of every loaded recipe, all of it marked by every garbage
// collection. Errors lose nothing: Eval keeps only their message, which
// does not come from the positions.
func slim(prog *vm.Program) *vm.Program {
	variables := 0
	for i, op := range prog.Bytecode {
		switch op {
		case vm.OpLoadFunc, vm.OpCall0, vm.OpCall1, vm.OpCall2, vm.OpCall3:
			// the program's functions cannot be read back to build a new
			// one: keep it, without its syntax tree
			dropTree(prog)
			return prog
		case vm.OpStore, vm.OpLoadVar:
			variables = max(variables, prog.Arguments[i]+1)
		}
	}
	return vm.NewProgram(exprfile.Source{}, nil, nil, variables,
		slices.Clip(prog.Constants), slices.Clip(prog.Bytecode), slices.Clip(prog.Arguments), nil, nil, nil)
}

// dropTree empties the root of a program's syntax tree in place, so that
// the rest of the tree is garbage: running a program does not read it.
func dropTree(prog *vm.Program) {
	if v := reflect.ValueOf(prog.Node()); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
}

// reads is a set of the top-level names of the environment (and of the
// fields of trigger that cost something to build) an expression reads.
type reads uint16

const (
	readEvent reads = 1 << iota
	readTrigger
	readReceivedAt // trigger.received_at, formatted for each event
	readVars
	readSteps
	readRun
	readError
	readSecrets

	readAll = readEvent | readTrigger | readReceivedAt | readVars | readSteps | readRun | readError | readSecrets
)

// readsOf finds what a checked syntax tree reads of the environment: the
// identifiers that name a part of it ($env is all of it), and for trigger,
// which fields. Any other use of trigger counts as reading all of it.
func readsOf(root *ast.Node) reads {
	v := readsVisitors.Get().(*readsVisitor)
	defer func() {
		clear(v.trigger)
		clear(v.byField)
		clear(v.receivedAt)
		*v = readsVisitor{trigger: v.trigger[:0], byField: v.byField[:0], receivedAt: v.receivedAt[:0]}
		readsVisitors.Put(v)
	}()
	ast.Walk(root, v)
	rd := v.reads
	for _, id := range v.trigger {
		switch {
		case slices.Contains(v.receivedAt, id):
			rd |= readReceivedAt
		case slices.Contains(v.byField, id):
			rd |= readTrigger
		default:
			rd |= readTrigger | readReceivedAt
		}
	}
	return rd
}

var readsVisitors = sync.Pool{New: func() any { return new(readsVisitor) }}

type readsVisitor struct {
	reads reads // but for trigger
	// trigger are the identifiers naming it; byField those read for one
	// field (type or id), receivedAt those read for received_at
	trigger, byField, receivedAt []*ast.IdentifierNode
}

func (v *readsVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		switch x.Value {
		case "$env":
			v.reads |= readAll
		case "trigger":
			v.trigger = append(v.trigger, x)
		default:
			if bit, ok := readBit(x.Value); ok {
				v.reads |= bit
			}
		}
	case *ast.MemberNode:
		id, ok := x.Node.(*ast.IdentifierNode)
		prop, isStr := x.Property.(*ast.StringNode)
		if !ok || !isStr || id.Value != "trigger" {
			break
		}
		switch prop.Value {
		case "type", "id":
			v.byField = append(v.byField, id)
		case "received_at":
			v.receivedAt = append(v.receivedAt, id)
		}
	case *ast.BuiltinNode:
		// set by the optimizer, and not visited by ast.Walk
		if x.Map != nil {
			ast.Walk(&x.Map, v)
		}
	}
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
		// an element of a list reads lines[].sku
		where := strings.ReplaceAll(strings.Join(path, "."), ".[]", "[]")
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
	if slices.Contains(path, "[]") {
		return path, natureKeys(env.Nature(), path)
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

// natureKeys walks path ("[]" for an element of a list or a value of a
// map) through expr natures, which know the elements of lists, and returns
// the sorted keys of the object at its end.
func natureKeys(nt nature.Nature, path []string) []string {
	for _, p := range path {
		switch {
		case p == "[]" && nt.Ref != nil:
			nt = *nt.Ref
		case p == "[]" && nt.TypeData != nil && nt.DefaultMapValue != nil:
			nt = *nt.DefaultMapValue
		case p != "[]" && nt.TypeData != nil && nt.Fields != nil:
			f, ok := nt.Fields[p]
			if !ok {
				return nil
			}
			nt = f
		default:
			return nil
		}
	}
	if nt.TypeData == nil {
		return nil
	}
	keys := make([]string, 0, len(nt.Fields))
	for k := range nt.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a tie always gives the same suggestion
	return keys
}

func memberPath(n ast.Node) ([]string, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return []string{x.Value}, true
	case *ast.MemberNode:
		p, ok := memberPath(x.Node)
		if !ok {
			return nil, false
		}
		s, ok := x.Property.(*ast.StringNode)
		if !ok {
			// an index, lines[0]: the element
			return append(p, "[]"), true
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
