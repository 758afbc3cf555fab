package recipes

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/connector"
)

// IDPattern is what a step id and a connection name look like.
const IDPattern = `^[a-z][a-z0-9_]*$`

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	stepIDRE = regexp.MustCompile(IDPattern)
	varRE    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

var (
	recipeKeys  = []string{"version", "name", "description", "enabled", "trigger", "filter", "vars", "steps", "on_error"}
	triggerKeys = []string{"type", "connection", "with"}
	stepKeys    = []string{"id", "name", "action", "connection", "if", "with", "retry", "timeout", "continue_on_error"}
	retryKeys   = []string{"max_attempts", "backoff", "initial_interval", "max_interval"}
)

// MaxFileSize bounds a recipe or test file.
const MaxFileSize = 1 << 20

// Loader loads and checks recipes.
type Loader struct {
	// Registry holds the connectors; nil means connector.Default.
	Registry *connector.Registry
	// Config, when set, is used to check connection names and types.
	Config *Config
	// EventFilesAnywhere lets a test's event_file name a file outside the
	// folder being tested (the path given to LoadPaths, or a given file's
	// own folder), symlinks resolved. Without it such a file is an error
	// and is not read: a test in a pull request could otherwise print any
	// file a CI job can read.
	EventFilesAnywhere bool
}

func (l *Loader) registry() *connector.Registry {
	if l.Registry != nil {
		return l.Registry
	}
	return connector.Default
}

// Set is what a load of paths found.
type Set struct {
	Recipes []*Recipe
	Tests   []*TestFile
	Files   int

	// broken names the recipes that were found but did not load: their
	// tests are not reported again as naming no recipe
	broken map[string]bool
}

// Recipe returns the recipe with that name.
func (s *Set) Recipe(name string) *Recipe {
	for _, r := range s.Recipes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// IsTestFile reports whether a path names a recipe test.
func IsTestFile(path string) bool {
	return strings.HasSuffix(path, ".test.yaml") || strings.HasSuffix(path, ".test.yml")
}

func isYAML(path string) bool {
	return strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")
}

// skipDirs are not walked: they hold fixtures, not recipes.
var skipDirs = map[string]bool{"fixtures": true, "testdata": true, "node_modules": true}

// SkippedDir reports whether Files leaves out a directory of this name
// below the paths it is given: hidden ones, fixtures and testdata.
func SkippedDir(name string) bool { return strings.HasPrefix(name, ".") || skipDirs[name] }

// Files lists the recipe and test files under paths: files as given,
// directories walked recursively (skipping hidden, fixtures and testdata
// directories and the config file sous.yaml).
func Files(paths []string) ([]string, error) {
	out, _, err := files(paths)
	return out, err
}

// withoutConfig drops the config file (whatever its name: prod.yaml) from
// the files found by walking a folder: it is no recipe. A path given as
// a file is kept, as asked.
func withoutConfig(files, roots, given []string, config string) ([]string, []string) {
	ci, err := os.Stat(config)
	if err != nil {
		return files, roots
	}
	asked := map[string]bool{}
	for _, p := range given {
		asked[p] = true
	}
	var fs, rs []string
	for i, f := range files {
		if !asked[f] {
			if fi, err := os.Stat(f); err == nil && os.SameFile(ci, fi) {
				continue
			}
		}
		fs, rs = append(fs, f), append(rs, roots[i])
	}
	return fs, rs
}

// files is Files, with the folder each file was found under: the path it
// was given, or a given file's own folder.
func files(paths []string) (out, roots []string, err error) {
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", p, err)
		}
		if !info.IsDir() {
			out = append(out, p)
			roots = append(roots, filepath.Dir(p))
			continue
		}
		// WalkDir does not enter a link to a folder it is given; the same
		// path with a trailing separator is the folder itself
		walk := p
		if li, err := os.Lstat(p); err == nil && li.Mode()&fs.ModeSymlink != 0 {
			walk = p + string(filepath.Separator)
		}
		err = filepath.WalkDir(walk, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if path != walk && SkippedDir(name) {
					return filepath.SkipDir
				}
				return nil
			}
			if isYAML(name) && name != "sous.yaml" && name != "sous.yml" {
				out = append(out, path)
				roots = append(roots, p)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("walk %s: %w", p, err)
		}
	}
	return out, roots, nil
}

// LoadPaths loads every recipe and test under paths and checks them as a
// set: names are unique and tests name existing recipes and steps.
func (l *Loader) LoadPaths(paths []string) (*Set, Diagnostics) {
	files, roots, err := files(paths)
	if err != nil {
		return &Set{}, Diagnostics{{Pos: Pos{File: firstOr(paths)}, Severity: SevError, Message: err.Error()}}
	}
	if l.Config != nil && l.Config.File != "" {
		files, roots = withoutConfig(files, roots, paths, l.Config.File)
	}
	files, roots = withSiblingTests(files, roots, paths)
	set := &Set{Files: len(files)}
	var diags Diagnostics
	progs := programs{}
	for i, path := range files {
		src, err := readFile(path)
		if err != nil {
			diags = append(diags, Diagnostic{Pos: Pos{File: path}, Severity: SevError, Message: err.Error()})
			continue
		}
		if IsTestFile(path) {
			root := roots[i]
			if l.EventFilesAnywhere {
				root = ""
			}
			t, ds := parseTestFile(path, src, root)
			diags = append(diags, ds...)
			if t != nil {
				set.Tests = append(set.Tests, t)
			}
			continue
		}
		r, name, ds := l.parseNamed(path, src, progs)
		diags = append(diags, ds...)
		switch {
		case r != nil:
			set.Recipes = append(set.Recipes, r)
		case name != "":
			if set.broken == nil {
				set.broken = map[string]bool{}
			}
			set.broken[name] = true
		}
	}
	diags = append(diags, l.recipesBesideTests(set, files, progs)...)
	diags = append(diags, l.checkSet(set)...)
	diags.Sort()
	return set, diags
}

// withSiblingTests adds, for a recipe file given by name (sous test
// orders.yaml), its test file beside it (orders.test.yaml or .test.yml)
// when that was not given or found already.
func withSiblingTests(files, roots, given []string) ([]string, []string) {
	have := map[string]bool{}
	for _, f := range files {
		have[filepath.Clean(f)] = true
	}
	for _, p := range given {
		if IsTestFile(p) || !isYAML(p) {
			continue
		}
		if info, err := os.Stat(p); err != nil || info.IsDir() {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(p, ".yaml"), ".yml")
		for _, t := range []string{base + ".test.yaml", base + ".test.yml"} {
			if info, err := os.Stat(t); err == nil && !info.IsDir() && !have[filepath.Clean(t)] {
				files, roots = append(files, t), append(roots, filepath.Dir(t))
				have[filepath.Clean(t)] = true
			}
		}
	}
	return files, roots
}

// recipesBesideTests loads, for a test whose recipe is not among the files
// loaded (sous test orders.test.yaml, given alone), the recipe of that
// name in the test file's own folder, when there is one.
func (l *Loader) recipesBesideTests(set *Set, files []string, progs programs) Diagnostics {
	var diags Diagnostics
	loaded := map[string]bool{}
	for _, f := range files {
		loaded[filepath.Clean(f)] = true
	}
	names := map[string]bool{}
	for _, r := range set.Recipes {
		names[r.Name] = true
	}
	for _, t := range set.Tests {
		if t.RecipeName == "" || names[t.RecipeName] || set.broken[t.RecipeName] {
			continue
		}
		dir := filepath.Dir(t.File)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if e.IsDir() || !isYAML(path) || IsTestFile(path) || loaded[filepath.Clean(path)] ||
				e.Name() == "sous.yaml" || e.Name() == "sous.yml" {
				continue
			}
			src, err := readFile(path)
			if err != nil || !bytes.Contains(src, []byte(t.RecipeName)) {
				continue
			}
			r, name, ds := l.parseNamed(path, src, progs)
			if name != t.RecipeName {
				continue // another recipe: not asked for, not reported
			}
			loaded[filepath.Clean(path)] = true
			diags = append(diags, ds...)
			set.Files++
			if r != nil {
				set.Recipes = append(set.Recipes, r)
				names[name] = true
			} else {
				if set.broken == nil {
					set.broken = map[string]bool{}
				}
				set.broken[name] = true
			}
			break
		}
	}
	return diags
}

func firstOr(paths []string) string {
	if len(paths) > 0 {
		return paths[0]
	}
	return "."
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if info.Size() > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes, more than the limit of %d", info.Size(), MaxFileSize)
	}
	// io.ReadFull: one Read may return less than asked for
	buf := make([]byte, info.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return buf, nil
}

func (l *Loader) checkSet(set *Set) Diagnostics {
	var diags Diagnostics
	byName := map[string]*Recipe{}
	kept := set.Recipes[:0]
	for _, r := range set.Recipes {
		if prev, dup := byName[r.Name]; dup {
			diags = append(diags, Diagnostic{Pos: r.namePos(), Severity: SevError,
				Message: fmt.Sprintf("recipe name %q is already used by %s", r.Name, prev.namePos())})
			continue
		}
		byName[r.Name] = r
		kept = append(kept, r)
	}
	set.Recipes = kept
	names := sortedKeys(byName)
	for _, t := range set.Tests {
		if _, ok := byName[t.RecipeName]; !ok && set.broken[t.RecipeName] {
			continue // the recipe's own errors say why
		}
		diags = append(diags, t.bind(byName, names)...)
	}
	return diags
}

func (r *Recipe) namePos() Pos { return r.Pos }

// Parse reads one recipe from its source. It returns the recipe only when
// it has no errors.
func (l *Loader) Parse(path string, src []byte) (r *Recipe, diags Diagnostics) {
	r, _, diags = l.parseNamed(path, src, nil)
	return r, diags
}

// parseNamed is Parse, sharing programs with the other recipes of a load
// when progs is not nil. It also returns the recipe's name when it has
// one, whether it loaded or not.
func (l *Loader) parseNamed(path string, src []byte, progs programs) (r *Recipe, name string, diags Diagnostics) {
	f := newFile(path, src)
	f.programs = progs
	defer func() {
		// The loader must never panic on input; a panic here is a bug
		// reported as a diagnostic rather than a crash.
		if p := recover(); p != nil {
			f.errorAt(Pos{File: path, Line: 1, Col: 1}, "internal error while loading: %v", p)
			r, diags = nil, f.diags
		}
	}()
	root := f.parseDoc(src)
	if root == nil {
		return nil, "", f.diags
	}
	r = l.parseRecipe(f, root)
	if r != nil {
		name = r.Name
	}
	if f.diags.HasErrors() {
		return nil, name, f.diags
	}
	return r, name, f.diags
}

func (l *Loader) parseRecipe(f *file, root *yaml.Node) *Recipe {
	r := &Recipe{File: f.path, Enabled: true, Pos: f.pos(root)}
	fields, ok := f.fields(root, "recipe", recipeKeys...)
	if !ok {
		return nil
	}
	need := func(key string) (pair, bool) {
		p, ok := fields[key]
		if !ok {
			f.errorAt(Pos{File: f.path, Line: root.Line, Col: root.Column}, "recipe: missing required field %q", key)
		}
		return p, ok
	}
	if p, ok := need("version"); ok {
		if v, ok := f.integer(p.val, "version"); ok {
			if v != Version {
				f.errorf(p.val, "version: unsupported format version %d; this build reads version %d", v, Version)
			}
			r.Version = v
		}
	}
	if p, ok := need("name"); ok {
		r.Pos = f.pos(p.val)
		if v, ok := f.str(p.val, "name"); ok {
			if !nameRE.MatchString(v) {
				f.errorf(p.val, "name: %q must be lower case letters, digits, - and _, starting with a letter or digit, at most 63 characters", v)
			}
			r.Name = v
		}
	}
	if p, ok := fields["description"]; ok {
		r.Description, _ = f.str(p.val, "description")
	}
	if p, ok := fields["enabled"]; ok {
		r.Enabled, _ = f.boolean(p.val, "enabled")
	}
	var event types.Type = types.Any
	if p, ok := need("trigger"); ok {
		event = l.parseTrigger(f, r, p.val)
	}
	sc := &scope{event: event, later: map[string][]string{}, natures: f.natures(), programs: f.programs}
	// read once: reading again would report its problems twice
	var varPairs []pair
	if p, ok := fields["vars"]; ok {
		varPairs, _ = f.mapping(p.val, "vars")
		for _, vp := range varPairs {
			sc.later["vars"] = append(sc.later["vars"], vp.key.Value)
		}
	}
	stepsP, hasSteps := need("steps")
	var stepNodes, onErrorNodes []*yaml.Node
	if hasSteps {
		var isList bool
		stepNodes, isList = f.sequence(stepsP.val, "steps")
		if isList && len(stepNodes) == 0 {
			// at the empty list ([]), or at the key of an empty value
			at := stepsP.key
			if v := f.deref(stepsP.val); v.Kind == yaml.SequenceNode {
				at = v
			}
			f.errorf(at, "steps: a recipe needs at least one step")
		}
	}
	if p, ok := fields["on_error"]; ok {
		onErrorNodes, _ = f.sequence(p.val, "on_error")
	}
	for _, n := range append(append([]*yaml.Node{}, stepNodes...), onErrorNodes...) {
		if id := nodeID(f, n); id != "" {
			sc.later["steps"] = append(sc.later["steps"], id)
		}
	}
	if p, ok := fields["filter"]; ok {
		r.Filter = f.compileExprNode(p.val, "filter", sc)
	}
	if _, ok := fields["vars"]; ok {
		for _, vp := range varPairs {
			name := vp.key.Value
			if !varRE.MatchString(name) {
				f.errorf(vp.key, "vars: %q is not a valid name (letters, digits and _, not starting with a digit)", name)
			}
			v := f.compileValue(vp.val, sc)
			sc.vars = append(sc.vars, name)
			if v != nil {
				r.Vars = append(r.Vars, Var{Name: name, Pos: f.pos(vp.key), Value: v})
			}
		}
	}
	ids := map[string]*yaml.Node{}
	for i, n := range stepNodes {
		if s := l.parseStep(f, n, fmt.Sprintf("steps[%d]", i), sc, ids); s != nil {
			r.Steps = append(r.Steps, s)
			sc.steps = append(sc.steps, stepScope{id: s.ID, output: shapeType(s.Spec.Shape)})
		} else if id := nodeID(f, n); id != "" {
			// keep the id in scope so that later steps do not cascade errors
			sc.steps = append(sc.steps, stepScope{id: id, output: types.Any})
		}
	}
	errScope := *sc
	errScope.onError = true
	for i, n := range onErrorNodes {
		if s := l.parseStep(f, n, fmt.Sprintf("on_error[%d]", i), &errScope, ids); s != nil {
			r.OnError = append(r.OnError, s)
			errScope.steps = append(errScope.steps, stepScope{id: s.ID, output: shapeType(s.Spec.Shape)})
		} else if id := nodeID(f, n); id != "" {
			errScope.steps = append(errScope.steps, stepScope{id: id, output: types.Any})
		}
	}
	return r
}

// compileExprNode compiles a boolean expression written as a YAML scalar.
func (f *file) compileExprNode(n *yaml.Node, what string, sc *scope) *Expr {
	n = f.deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		f.errorf(n, "%s must be an expression, got %s", what, kindName(n))
		return nil
	}
	src := n.Value
	if strings.HasPrefix(strings.TrimSpace(src), "{{") && strings.HasSuffix(strings.TrimSpace(src), "}}") {
		f.errorf(n, "%s is an expression already: write it without {{ }}", what)
		return nil
	}
	return f.compile(src, sc, true, what, func(off int) Pos { return f.locate(n, off) })
}

// parseTrigger reads the trigger and returns the type of the events it
// emits for this recipe (any when the trigger is unknown).
func (l *Loader) parseTrigger(f *file, r *Recipe, n *yaml.Node) types.Type {
	fields, ok := f.fields(n, "trigger", triggerKeys...)
	if !ok {
		return types.Any
	}
	t := &r.Trigger
	t.Pos = f.pos(n)
	tp, ok := fields["type"]
	if !ok {
		f.errorf(n, "trigger: missing required field \"type\"")
		return types.Any
	}
	typ, ok := f.str(tp.val, "trigger.type")
	if !ok {
		return types.Any
	}
	t.Type = typ
	spec := l.lookup(f, tp.val, typ, connector.KindTrigger, "trigger.type")
	if spec == nil {
		return types.Any
	}
	t.Spec = spec
	t.Type = spec.ID // the same text, shared by every recipe
	t.Connection = l.parseConnection(f, fields, spec, n, "trigger")
	sc := &scope{only: []string{"secrets"}, hint: "trigger options are read once, when the recipe loads, and may use only secrets.NAME",
		programs: f.programs}
	var withNode *yaml.Node
	if p, ok := fields["with"]; ok {
		withNode = p.val
	}
	// a declared body is this recipe's own: its type is not cached with
	// the spec's shapes, which live as long as the program
	event := shapeType(spec.Shape)
	if t.Event = f.declareEvent(spec, withNode, "trigger.with"); t.Event != nil {
		event = t.Event.ExprType()
	}
	eventScope := &scope{event: event, natures: f.natures(), programs: f.programs}
	t.with, t.Exprs = l.parseWith(f, spec, withNode, n, "trigger.with", sc, eventScope)
	return event
}

// lookup finds a connector by ID, reporting unknown IDs and the wrong kind.
func (l *Loader) lookup(f *file, n *yaml.Node, id string, kind connector.Kind, what string) *connector.Spec {
	reg := l.registry()
	spec, ok := reg.Lookup(id)
	if !ok {
		f.errorf(n, "%s: unknown %s %q%s", what, kind, id, suggestID(id, reg.IDs(kind)))
		return nil
	}
	if spec.Kind != kind {
		f.errorf(n, "%s: %q is %s, not %s", what, id, article(string(spec.Kind)), article(string(kind)))
		return nil
	}
	return spec
}

// suggestID is suggest for connector IDs, which also completes a prefix:
// "webhook" suggests "webhook.received", "zoom" the zoom triggers.
func suggestID(got string, ids []string) string {
	if s := suggest(got, ids); s != "" {
		return s
	}
	prefix := strings.ToLower(got)
	if prefix == "" {
		return ""
	}
	var cands []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			cands = append(cands, strconv.Quote(id))
		}
	}
	switch {
	case len(cands) == 1:
		return fmt.Sprintf(" (did you mean %s?)", cands[0])
	case len(cands) > 1 && len(cands) <= 6:
		return fmt.Sprintf(" (did you mean one of %s?)", strings.Join(cands, ", "))
	}
	return ""
}

func article(s string) string {
	if strings.IndexAny(s[:1], "aeiou") == 0 {
		return "an " + s
	}
	return "a " + s
}

func (l *Loader) parseConnection(f *file, fields map[string]pair, spec *connector.Spec, owner *yaml.Node, what string) string {
	p, ok := fields["connection"]
	if !ok {
		if spec.ConnectionRequired {
			f.errorf(owner, "%s: %s needs a connection of type %q", what, spec.ID, spec.Connection)
		}
		return ""
	}
	name, ok := f.str(p.val, what+".connection")
	if !ok {
		return ""
	}
	if spec.Connection == "" {
		f.errorf(p.val, "%s.connection: %s takes no connection", what, spec.ID)
		return ""
	}
	if l.Config != nil {
		c, ok := l.Config.Connections[name]
		if !ok && l.Config.broken[name] {
			return name // the config's own error says what is wrong with it
		}
		if !ok {
			f.errorf(p.val, "%s.connection: no connection %q in %s%s", what, name, l.Config.File, suggest(name, sortedKeys(l.Config.Connections)))
			return name
		}
		if c.Type != spec.Connection {
			f.errorf(p.val, "%s.connection: %q is a %s connection; %s needs one of type %s", what, name, c.Type, spec.ID, spec.Connection)
		}
	}
	return name
}

// parseWith checks a `with` block against a spec and compiles it.
// Fields of type expression are compiled against exprScope.
func (l *Loader) parseWith(f *file, spec *connector.Spec, n *yaml.Node, owner *yaml.Node, what string, sc, exprScope *scope) (Value, map[string]*Expr) {
	var pairs []pair
	// a merge key (<<) was reported already; the fields it would have
	// brought are not reported missing as well
	reported := false
	if n != nil {
		var ok bool
		before := len(f.diags)
		if pairs, ok = f.mapping(n, what); !ok {
			return nil, nil
		}
		reported = len(f.diags) > before
	}
	with := make(mapValue, 0, len(pairs))
	var exprs map[string]*Expr // nil unless there are any: most recipes have none
	present := map[string]bool{}
	statics := connector.Values{}
	for _, p := range pairs {
		key := p.key.Value
		fd, ok := spec.Field(key)
		if !ok {
			f.errorf(p.key, "%s: unknown field %q for %s%s", what, key, spec.ID, suggestOr(key, spec.FieldNames()))
			continue
		}
		present[key] = true
		if fd.Type == connector.Expression {
			if e := f.compileExprField(p.val, what+"."+key, exprScope); e != nil {
				if exprs == nil {
					exprs = map[string]*Expr{}
				}
				exprs[fd.Name] = e
			}
			continue
		}
		v := f.compileValue(p.val, sc)
		if v == nil {
			continue
		}
		if fd.Secret && v.Static() && staticData(v) != nil {
			f.errorf(p.val, "%s.%s is a secret: keep it out of the recipe and write \"{{ secrets.NAME }}\" (read from SOUS_SECRET_NAME)", what, key)
			continue
		}
		if v.Static() {
			data := staticData(v)
			if data == nil {
				if fd.Required {
					f.errorf(p.val, "%s.%s is required and may not be empty", what, key)
				}
				continue
			}
			c, err := fd.CheckValue(data)
			if err != nil {
				f.errorf(p.val, "%s.%s: %v", what, key, err)
				continue
			}
			statics[key] = c
		}
		// the spec's name, the same text: shared by every recipe
		with = append(with, mapField{fd.Name, v})
	}
	for _, fd := range spec.Fields {
		if fd.Required && !present[fd.Name] && !reported {
			at := owner
			if n != nil {
				at = n
			}
			f.errorf(at, "%s: missing required field %q for %s", what, fd.Name, spec.ID)
		}
	}
	if spec.Validate != nil {
		for _, fe := range spec.Validate(statics) {
			at := owner
			if n != nil {
				at = n
			}
			for _, p := range pairs {
				if p.key.Value == fe.Field {
					at = p.val
				}
			}
			f.errorf(at, "%s: %s", what, fe.Error())
		}
	}
	return with, exprs
}

func (f *file) compileExprField(n *yaml.Node, what string, sc *scope) *Expr {
	n = f.deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		f.errorf(n, "%s must be an expression, got %s", what, kindName(n))
		return nil
	}
	return f.compile(n.Value, sc, false, what, func(off int) Pos { return f.locate(n, off) })
}

func (l *Loader) parseStep(f *file, n *yaml.Node, what string, sc *scope, ids map[string]*yaml.Node) *Step {
	if id := nodeID(f, n); id != "" {
		// name the step by its id in every message, as below
		what = "step " + id
	}
	before := len(f.diags)
	fields, ok := f.fields(n, what, stepKeys...)
	if !ok {
		return nil
	}
	// a misspelt key (wiht:) already has its message; do not add that the
	// fields it was meant to hold are missing
	misspelt := len(f.diags) > before
	s := &Step{Pos: f.pos(n), Retry: DefaultRetry, Timeout: DefaultTimeout}
	bad := false
	if p, ok := fields["id"]; ok {
		if id, ok := f.str(p.val, what+".id"); ok {
			s.ID = id
			what = "step " + id
			s.Pos = f.pos(p.val)
			if !stepIDRE.MatchString(id) {
				f.errorf(p.val, "%s: id %q must be lower case letters, digits and _, starting with a letter", what, id)
			}
			if prev, dup := ids[id]; dup {
				f.errorf(p.val, "%s: id %q is already used at line %d", what, id, prev.Line)
			}
			ids[id] = p.val
		}
	} else {
		f.errorf(n, "%s: missing required field \"id\"", what)
		bad = true
	}
	if p, ok := fields["name"]; ok {
		s.Name, _ = f.str(p.val, what+".name")
	}
	ap, ok := fields["action"]
	if !ok {
		f.errorf(n, "%s: missing required field \"action\"", what)
		return nil
	}
	action, ok := f.str(ap.val, what+".action")
	if !ok {
		return nil
	}
	s.Action = action
	s.Spec = l.lookup(f, ap.val, action, connector.KindAction, what+".action")
	if s.Spec == nil {
		bad = true
	} else {
		s.Action = s.Spec.ID // the same text, shared by every recipe
		s.Connection = l.parseConnection(f, fields, s.Spec, n, what)
	}
	if p, ok := fields["if"]; ok {
		s.If = f.compileExprNode(p.val, what+".if", sc)
	}
	if s.Spec != nil {
		var withNode *yaml.Node
		if p, ok := fields["with"]; ok {
			withNode = p.val
		}
		if withNode != nil || !misspelt {
			s.with, _ = l.parseWith(f, s.Spec, withNode, n, what+".with", sc, sc)
		}
	}
	if p, ok := fields["retry"]; ok {
		s.Retry = f.parseRetry(p.val, what+".retry")
	}
	if p, ok := fields["timeout"]; ok {
		if d, ok := f.duration(p.val, what+".timeout"); ok {
			s.Timeout = d
		}
	}
	if p, ok := fields["continue_on_error"]; ok {
		s.ContinueOnError, _ = f.boolean(p.val, what+".continue_on_error")
	}
	if bad {
		return nil
	}
	return s
}

func (f *file) duration(n *yaml.Node, what string) (time.Duration, bool) {
	s, ok := f.str(n, what)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		f.errorf(n, "%s: %q is not a positive duration such as 30s, 5m or 1h30m", what, s)
		return 0, false
	}
	return d, true
}

func (f *file) parseRetry(n *yaml.Node, what string) Retry {
	r := DefaultRetry
	fields, ok := f.fields(n, what, retryKeys...)
	if !ok {
		return r
	}
	if p, ok := fields["max_attempts"]; ok {
		if v, ok := f.integer(p.val, what+".max_attempts"); ok {
			if v < 1 || v > 100 {
				f.errorf(p.val, "%s.max_attempts: %d is out of range; use 1 to 100", what, v)
			}
			r.MaxAttempts = v
		}
	}
	if p, ok := fields["backoff"]; ok {
		if v, ok := f.str(p.val, what+".backoff"); ok {
			kinds := []string{string(BackoffExponential), string(BackoffConstant), string(BackoffLinear)}
			if !contains(kinds, v) {
				f.errorf(p.val, "%s.backoff: %q is not one of %s%s", what, v, strings.Join(kinds, ", "), suggest(v, kinds))
			}
			r.Backoff = Backoff(v)
		}
	}
	if p, ok := fields["initial_interval"]; ok {
		if d, ok := f.duration(p.val, what+".initial_interval"); ok {
			r.InitialInterval = d
		}
	}
	if p, ok := fields["max_interval"]; ok {
		if d, ok := f.duration(p.val, what+".max_interval"); ok {
			r.MaxInterval = d
			if d < r.InitialInterval {
				f.errorf(p.val, "%s.max_interval: %s is shorter than initial_interval %s", what, d, r.InitialInterval)
			}
		}
	} else if r.InitialInterval > r.MaxInterval {
		// `initial_interval: 5m` alone means waits of 5m, not of the
		// default max_interval
		r.MaxInterval = r.InitialInterval
	}
	return r
}

// nodeID reads the id of a step node without reporting anything.
func nodeID(f *file, n *yaml.Node) string {
	if n = f.deref(n); n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "id" && n.Content[i+1].Kind == yaml.ScalarNode {
				return n.Content[i+1].Value
			}
		}
	}
	return ""
}
