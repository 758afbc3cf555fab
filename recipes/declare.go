package recipes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/connector"
)

// EventShape is the shape of the events the recipe sees, to which a run
// conforms its event: the trigger spec's, with the part the recipe
// declares (a webhook's body_schema or body_sample) when it declares one.
func (t *Trigger) EventShape() *connector.Shape {
	if t.Event != nil {
		return t.Event
	}
	if t.Spec == nil {
		return nil
	}
	return t.Spec.Shape
}

// declareEvent reads the trigger options that declare the shape of a part
// of the event (connector.Field.Declares) and returns the recipe's event
// shape, or nil when it declares none. Problems are reported at the
// option; parseWith reports what is wrong with the `with` block itself.
func (f *file) declareEvent(spec *connector.Spec, with *yaml.Node, what string) *connector.Shape {
	with = f.deref(with)
	if with == nil || with.Kind != yaml.MappingNode {
		return nil
	}
	event := spec.Shape
	declared := map[string]string{} // event key -> the option declaring it
	for i := 0; i+1 < len(with.Content); i += 2 {
		k, v := with.Content[i], f.deref(with.Content[i+1])
		fd, ok := spec.Field(k.Value)
		if !ok || fd.Declares == nil || v == nil || v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		key := fd.Declares.Key
		if prev, dup := declared[key]; dup {
			if prev != fd.Name {
				f.errorf(k, "%s.%s: %s declares event.%s already; keep one of them", what, fd.Name, prev, key)
			}
			continue
		}
		declared[key] = fd.Name
		sub := f.declaredShape(v, fd, what+"."+fd.Name)
		if sub == nil {
			continue
		}
		event = event.WithKey(key, sub)
	}
	if event == spec.Shape {
		return nil
	}
	return event
}

// declaredShape reads one declaring option: a path to a JSON file, or the
// schema or sample inline.
func (f *file) declaredShape(v *yaml.Node, fd *connector.Field, what string) *connector.Shape {
	var data any
	source := ""
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!str":
		if strings.Contains(v.Value, "{{") {
			f.errorf(v, "%s is read when the recipe loads: write a path to a JSON file or the value inline, not a template", what)
			return nil
		}
		var err error
		if data, err = f.readJSONBeside(v.Value); err != nil {
			f.errorf(v, "%s: %v", what, err)
			return nil
		}
		source = v.Value + ": "
	case v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode && fd.Declares.Sample:
		// read without reporting: parseWith reports what is wrong with the
		// node (a duplicate key, an alias loop) once
		quiet := &file{path: f.path, lines: f.lines}
		data = quiet.value(v)
		if quiet.diags.HasErrors() {
			return nil
		}
	default:
		want := "a mapping"
		if fd.Declares.Sample {
			want = "a mapping or a list"
		}
		f.errorf(v, "%s must be a path to a JSON file or %s inline, got %s", what, want, kindName(v))
		return nil
	}
	if fd.Declares.Sample {
		return connector.SampleShape(data)
	}
	s, err := connector.SchemaShape(data)
	if err != nil {
		at := v
		var se *connector.SchemaError
		if source == "" && errors.As(err, &se) {
			// inline: at the place in the recipe
			at = f.nodeAt(v, se.Pointer)
		}
		f.errorf(at, "%s: %s%v", what, source, err)
		return nil
	}
	return s
}

// nodeAt follows a JSON pointer from n as far as the YAML nodes go.
func (f *file) nodeAt(n *yaml.Node, ptr string) *yaml.Node {
	if ptr == "" {
		return n
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next = f.deref(next); next == nil {
			return n
		}
		n = next
	}
	return n
}

// readJSONBeside reads a JSON file named by a path relative to the folder
// of the file being loaded, which it may not leave: no absolute path, no
// `..` above that folder, no symbolic link out of it.
func (f *file) readJSONBeside(name string) (any, error) {
	if name == "" || !filepath.IsLocal(filepath.FromSlash(name)) {
		return nil, fmt.Errorf("%q must be a path relative to the recipe's folder, inside it (no absolute path, no ..)", name)
	}
	// the same check as a test's event_file (inside), so that a link is
	// judged alike in both: followed when it stays in the folder
	path, ok := inside(filepath.Dir(f.path), filepath.Join(filepath.Dir(f.path), filepath.FromSlash(name)))
	if !ok {
		return nil, fmt.Errorf("read %s: it leads outside the recipe's folder (symlinks resolved)", name)
	}
	src, err := readFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no file %s beside the recipe", name)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("read %s: %w", name, pe.Err)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var v any
	if err := json.Unmarshal(src, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(src, se.Offset)
			return nil, fmt.Errorf("%s:%d:%d is not valid JSON: %w", name, line, col, err)
		}
		return nil, fmt.Errorf("%s is not valid JSON: %w", name, err)
	}
	return v, nil
}

// lineCol converts a byte offset of src to a 1-based line and column
// (in bytes) of the byte before it, where the JSON decoder stopped.
func lineCol(src []byte, off int64) (int, int) {
	off = min(max(off-1, 0), int64(len(src)))
	line, col := 1, 1
	for _, b := range src[:off] {
		if b == '\n' {
			line, col = line+1, 1
			continue
		}
		col++
	}
	return line, col
}
