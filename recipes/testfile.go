package recipes

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// TestFile is a parsed *.test.yaml: cases that run a recipe offline.
type TestFile struct {
	File       string
	RecipeName string
	RecipePos  Pos
	// Recipe is set once the file is bound to a loaded recipe.
	Recipe *Recipe
	Cases  []*TestCase
}

// TestCase is one case of a recipe test.
type TestCase struct {
	Name    string
	Pos     Pos
	Event   map[string]any
	Trigger map[string]any // overrides of trigger.id, trigger.type...
	Secrets map[string]string
	Mocks   map[string]*Mock
	Expect  Expect
}

// Mock is the canned result of one step.
type Mock struct {
	Pos       Pos
	Output    map[string]any
	Error     string // when set, the step fails with this message
	Retryable bool
}

// Expect is what a case checks.
type Expect struct {
	Filter    *bool
	FilterPos Pos
	Status    string
	StatusPos Pos
	Vars      map[string]any
	VarsPos   Pos
	Steps     []*StepExpect
}

// StepExpect is what a case checks of one step.
type StepExpect struct {
	ID      string
	Pos     Pos
	With    any // a subset of the rendered inputs
	WithPos Pos
	Skipped *bool
	Output  any
}

// Statuses a run can end in.
var runStatuses = []string{"succeeded", "failed", "filtered", "dead"}

// EventFilesFlag is the flag of sous test and sous validate that lets an
// event_file name a file outside the folder being tested.
const EventFilesFlag = "--allow-outside-event-files"

// parseTestFile parses a test file; its cases' event_file must be inside
// eventRoot, symlinks resolved, unless eventRoot is empty.
func parseTestFile(path string, src []byte, eventRoot string) (t *TestFile, diags Diagnostics) {
	f := newFile(path, src)
	defer func() {
		if p := recover(); p != nil {
			f.errorAt(Pos{File: path, Line: 1, Col: 1}, "internal error while loading: %v", p)
			t, diags = nil, f.diags
		}
	}()
	root := f.parseDoc(src)
	if root == nil {
		return nil, f.diags
	}
	t = &TestFile{File: path}
	fields, ok := f.fields(root, "test file", "recipe", "cases")
	if !ok {
		return nil, f.diags
	}
	if p, ok := fields["recipe"]; ok {
		t.RecipeName, _ = f.str(p.val, "recipe")
		t.RecipePos = f.pos(p.val)
	} else {
		f.errorf(root, "test file: missing required field \"recipe\"")
	}
	p, ok := fields["cases"]
	if !ok {
		f.errorf(root, "test file: missing required field \"cases\"")
		return nil, f.diags
	}
	items, isList := f.sequence(p.val, "cases")
	if isList && len(items) == 0 {
		f.errorf(p.key, "cases: a test file needs at least one case")
	}
	names := map[string]int{}
	for i, n := range items {
		c := f.parseCase(n, fmt.Sprintf("cases[%d]", i), filepath.Dir(path), eventRoot)
		if c == nil {
			continue
		}
		if line, dup := names[c.Name]; dup {
			f.errorAt(c.Pos, "case %q: the name is already used at line %d", c.Name, line)
		}
		names[c.Name] = c.Pos.Line
		t.Cases = append(t.Cases, c)
	}
	if f.diags.HasErrors() {
		return nil, f.diags
	}
	return t, f.diags
}

func (f *file) parseCase(n *yaml.Node, what, dir, root string) *TestCase {
	fields, ok := f.fields(n, what, "name", "event", "event_file", "trigger", "secrets", "mocks", "expect")
	if !ok {
		return nil
	}
	c := &TestCase{Pos: f.pos(n), Mocks: map[string]*Mock{}, Event: map[string]any{}}
	if p, ok := fields["name"]; ok {
		c.Name, _ = f.str(p.val, what+".name")
		c.Pos = f.pos(p.val)
		what = fmt.Sprintf("case %q", c.Name)
	} else {
		f.errorf(n, "%s: missing required field \"name\"", what)
	}
	ev, hasEvent := fields["event"]
	evf, hasFile := fields["event_file"]
	switch {
	case hasEvent && hasFile:
		f.errorf(evf.key, "%s: give event or event_file, not both", what)
	case hasEvent:
		m, ok := f.value(ev.val).(map[string]any)
		if !ok && f.deref(ev.val).Tag != "!!null" {
			f.errorf(ev.val, "%s.event must be a mapping, got %s", what, kindName(ev.val))
		}
		if m != nil {
			c.Event = m
		}
	case hasFile:
		if name, ok := f.str(evf.val, what+".event_file"); ok {
			c.Event = f.readEventFile(evf.val, filepath.Join(dir, name), root, what)
		}
	}
	if p, ok := fields["trigger"]; ok {
		if m, ok := f.value(p.val).(map[string]any); ok {
			c.Trigger = m
		} else {
			f.errorf(p.val, "%s.trigger must be a mapping", what)
		}
	}
	if p, ok := fields["secrets"]; ok {
		pairs, _ := f.mapping(p.val, what+".secrets")
		c.Secrets = map[string]string{}
		for _, kv := range pairs {
			c.Secrets[kv.key.Value], _ = f.str(kv.val, what+".secrets."+kv.key.Value)
		}
	}
	if p, ok := fields["mocks"]; ok {
		pairs, _ := f.mapping(p.val, what+".mocks")
		for _, kv := range pairs {
			m := &Mock{Pos: f.pos(kv.key)}
			mf, ok := f.fields(kv.val, what+".mocks."+kv.key.Value, "output", "error", "retryable")
			if !ok {
				continue
			}
			if o, ok := mf["output"]; ok {
				out, isMap := f.value(o.val).(map[string]any)
				if !isMap {
					f.errorf(o.val, "%s.mocks.%s.output must be a mapping", what, kv.key.Value)
				}
				m.Output = out
			}
			if e, ok := mf["error"]; ok {
				m.Error, _ = f.str(e.val, what+".mocks."+kv.key.Value+".error")
			}
			if r, ok := mf["retryable"]; ok {
				m.Retryable, _ = f.boolean(r.val, what+".mocks."+kv.key.Value+".retryable")
			}
			c.Mocks[kv.key.Value] = m
		}
	}
	if p, ok := fields["expect"]; ok {
		f.parseExpect(p.val, what+".expect", &c.Expect)
	} else {
		f.errorf(n, "%s: missing required field \"expect\"", what)
	}
	return c
}

func (f *file) readEventFile(n *yaml.Node, path, root, what string) map[string]any {
	read := path
	if root != "" {
		real, ok := inside(root, path)
		if !ok {
			f.errorf(n, "%s.event_file: %s is outside %s, the folder being tested (symlinks resolved), and is not read; %s allows it",
				what, path, root, EventFilesFlag)
			return nil
		}
		read = real
	}
	src, err := readFile(read)
	if err != nil {
		f.errorf(n, "%s.event_file: %v", what, err)
		return nil
	}
	var v any
	if strings.HasSuffix(path, ".json") {
		if err := json.Unmarshal(src, &v); err != nil {
			f.errorf(n, "%s.event_file: %s is not valid JSON: %v", what, path, err)
			return nil
		}
	} else if err := yaml.Unmarshal(src, &v); err != nil {
		f.errorf(n, "%s.event_file: %s: %v", what, path, err)
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		f.errorf(n, "%s.event_file: %s must hold an object", what, path)
	}
	return m
}

// inside reports whether path, its symlinks resolved, is inside the folder
// root (its own symlinks resolved too), and returns the path to read: the
// resolved one, which is the file checked. A path that does not resolve
// (no such file) is judged as written, and returned as is for the read to
// report.
func inside(root, path string) (string, bool) {
	dir, err := filepath.EvalSymlinks(root)
	if err != nil {
		dir = root
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		// judged as written against the folder as written: a folder
		// reached through a link holds its missing files too
		real, dir = path, root
	}
	absDir, err1 := filepath.Abs(dir)
	absReal, err2 := filepath.Abs(real)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(absDir, absReal)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	if real == path {
		return path, true
	}
	return absReal, true
}

func (f *file) parseExpect(n *yaml.Node, what string, e *Expect) {
	fields, ok := f.fields(n, what, "filter", "status", "vars", "steps")
	if !ok {
		return
	}
	if p, ok := fields["filter"]; ok {
		if b, ok := f.boolean(p.val, what+".filter"); ok {
			e.Filter = &b
			e.FilterPos = f.pos(p.val)
		}
	}
	if p, ok := fields["status"]; ok {
		if s, ok := f.str(p.val, what+".status"); ok {
			if !contains(runStatuses, s) {
				f.errorf(p.val, "%s.status: %q is not one of %s%s", what, s, strings.Join(runStatuses, ", "), suggest(s, runStatuses))
			}
			e.Status = s
			e.StatusPos = f.pos(p.val)
		}
	}
	if p, ok := fields["vars"]; ok {
		e.Vars, _ = f.value(p.val).(map[string]any)
		e.VarsPos = f.pos(p.val)
	}
	if p, ok := fields["steps"]; ok {
		pairs, _ := f.mapping(p.val, what+".steps")
		for _, kv := range pairs {
			se := &StepExpect{ID: kv.key.Value, Pos: f.pos(kv.key)}
			sf, ok := f.fields(kv.val, what+".steps."+se.ID, "with", "skipped", "output")
			if !ok {
				continue
			}
			if w, ok := sf["with"]; ok {
				se.With = f.value(w.val)
				se.WithPos = f.pos(w.val)
			}
			if s, ok := sf["skipped"]; ok {
				if b, ok := f.boolean(s.val, what+".steps."+se.ID+".skipped"); ok {
					se.Skipped = &b
				}
			}
			if o, ok := sf["output"]; ok {
				se.Output = f.value(o.val)
			}
			e.Steps = append(e.Steps, se)
		}
	}
}

// bind ties the test file to its recipe and checks the step ids it names.
func (t *TestFile) bind(byName map[string]*Recipe, names []string) Diagnostics {
	var diags Diagnostics
	errAt := func(p Pos, format string, args ...any) {
		diags = append(diags, Diagnostic{Pos: p, Severity: SevError, Message: fmt.Sprintf(format, args...)})
	}
	r, ok := byName[t.RecipeName]
	if !ok {
		errAt(t.RecipePos, "recipe: no recipe named %q among the loaded files%s", t.RecipeName, suggest(t.RecipeName, names))
		return diags
	}
	t.Recipe = r
	var ids []string
	for _, s := range append(append([]*Step{}, r.Steps...), r.OnError...) {
		ids = append(ids, s.ID)
	}
	for _, c := range t.Cases {
		for _, id := range sortedKeys(c.Mocks) {
			if !contains(ids, id) {
				errAt(c.Mocks[id].Pos, "case %q: mocks: recipe %s has no step %q%s", c.Name, r.Name, id, suggest(id, ids))
			}
		}
		for _, se := range c.Expect.Steps {
			if !contains(ids, se.ID) {
				errAt(se.Pos, "case %q: expect.steps: recipe %s has no step %q%s", c.Name, r.Name, se.ID, suggest(se.ID, ids))
			}
		}
	}
	return diags
}
