package recipes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// file is one YAML file being read: its source, for positions, and the
// diagnostics found so far.
type file struct {
	path  string
	lines []string
	diags Diagnostics
	// aliases bounds alias expansion so that a "billion laughs" file
	// cannot blow up memory.
	aliases int
}

func newFile(path string, src []byte) *file {
	return &file{path: path, lines: strings.Split(string(src), "\n")}
}

func (f *file) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: f.path}
	}
	return Pos{File: f.path, Line: n.Line, Col: n.Column}
}

func (f *file) errorAt(p Pos, format string, args ...any) {
	f.diags = append(f.diags, Diagnostic{Pos: p, Severity: SevError, Message: fmt.Sprintf(format, args...)})
}

func (f *file) errorf(n *yaml.Node, format string, args ...any) {
	f.errorAt(f.pos(n), format, args...)
}

func (f *file) warnf(n *yaml.Node, format string, args ...any) {
	f.diags = append(f.diags, Diagnostic{Pos: f.pos(n), Severity: SevWarning, Message: fmt.Sprintf(format, args...)})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDoc parses the single YAML document of a file. Syntax errors are
// reported with their line.
func (f *file) parseDoc(src []byte) *yaml.Node {
	dec := yaml.NewDecoder(strings.NewReader(string(src)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		f.yamlError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		f.errorf(&extra, "a file holds one document; found a second one (remove the `---`)")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		f.errorAt(Pos{File: f.path, Line: 1, Col: 1}, "the file is empty")
		return nil
	}
	return doc.Content[0]
}

func (f *file) yamlError(err error) {
	msg := err.Error()
	if msg == "EOF" {
		f.errorAt(Pos{File: f.path, Line: 1, Col: 1}, "the file is empty")
		return
	}
	for _, part := range strings.Split(strings.TrimPrefix(msg, "yaml: unmarshal errors:\n"), "\n") {
		part = strings.TrimSpace(part)
		if m := yamlLineRE.FindStringSubmatch(part); m != nil {
			line, _ := strconv.Atoi(m[1])
			f.errorAt(Pos{File: f.path, Line: line, Col: 1}, "YAML syntax: %s", m[2])
			continue
		}
		f.errorAt(Pos{File: f.path, Line: 1, Col: 1}, "YAML syntax: %s", strings.TrimPrefix(part, "yaml: "))
	}
}

// deref follows aliases.
func (f *file) deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		f.aliases++
		n = n.Alias
	}
	return n
}

type pair struct {
	key, val *yaml.Node
}

// mapping returns the key/value pairs of a mapping node in order, reporting
// duplicate keys, merge keys and a node that is not a mapping.
func (f *file) mapping(n *yaml.Node, what string) ([]pair, bool) {
	n = f.deref(n)
	if n == nil {
		return nil, false
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "%s must be a mapping, got %s", what, kindName(n))
		return nil, false
	}
	seen := map[string]*yaml.Node{}
	out := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			f.errorf(k, "%s: keys must be strings", what)
			continue
		}
		if k.Value == "<<" && k.Tag == "!!merge" {
			f.errorf(k, "%s: merge keys (<<) are not supported; write the keys out", what)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			f.errorf(k, "%s: duplicate key %q (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	return out, true
}

// fields reads a mapping whose keys are a fixed set; unknown keys are
// reported with a did-you-mean.
func (f *file) fields(n *yaml.Node, what string, allowed ...string) (map[string]pair, bool) {
	pairs, ok := f.mapping(n, what)
	if !ok {
		return nil, false
	}
	out := make(map[string]pair, len(pairs))
	for _, p := range pairs {
		if !contains(allowed, p.key.Value) {
			f.errorf(p.key, "%s: unknown field %q%s", what, p.key.Value, suggestOr(p.key.Value, allowed))
			continue
		}
		out[p.key.Value] = p
	}
	return out, true
}

func suggestOr(got string, allowed []string) string {
	if s := suggest(got, allowed); s != "" {
		return s
	}
	return "; known fields: " + strings.Join(allowed, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sequence returns the items of a sequence node.
func (f *file) sequence(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	n = f.deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		f.errorf(n, "%s must be a list, got %s", what, kindName(n))
		return nil, false
	}
	return n.Content, true
}

// str reads a scalar as a string.
func (f *file) str(n *yaml.Node, what string) (string, bool) {
	n = f.deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		f.errorf(n, "%s must be a string, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (f *file) boolean(n *yaml.Node, what string) (bool, bool) {
	n = f.deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b, true
		}
	}
	f.errorf(n, "%s must be true or false, got %s", what, kindName(n))
	return false, false
}

func (f *file) integer(n *yaml.Node, what string) (int, bool) {
	n = f.deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		var v int
		if err := n.Decode(&v); err == nil {
			return v, true
		}
	}
	f.errorf(n, "%s must be an integer, got %s", what, kindName(n))
	return 0, false
}

// value converts a node to plain Go data: map[string]any, []any, string,
// int, float64, bool or nil.
func (f *file) value(n *yaml.Node) any {
	n = f.deref(n)
	if f.aliases > 10000 {
		f.errorf(n, "too many alias expansions")
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		pairs, _ := f.mapping(n, "mapping")
		m := make(map[string]any, len(pairs))
		for _, p := range pairs {
			m[p.key.Value] = f.value(p.val)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = f.value(c)
		}
		return l
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil
}

func scalarValue(n *yaml.Node) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err == nil {
			if i, ok := v.(int); ok {
				return int64(i)
			}
			return v
		}
	}
	return n.Value
}

func kindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "the boolean " + n.Value
		case "!!int", "!!float":
			return "the number " + n.Value
		}
		return fmt.Sprintf("the string %q", truncate(n.Value, 40))
	}
	return "nothing"
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// locate maps a rune offset inside a scalar's value to a file position. It
// is exact for single-line scalars and literal blocks and falls back to the
// scalar's own position otherwise.
func (f *file) locate(n *yaml.Node, offset int) Pos {
	p := f.pos(n)
	value := []rune(n.Value)
	if offset > len(value) {
		offset = len(value)
	}
	before := string(value[:offset])
	lineIdx := strings.Count(before, "\n")
	col := offset
	if lineIdx > 0 {
		col = len([]rune(before)) - len([]rune(before[:strings.LastIndex(before, "\n")+1]))
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		srcLine := n.Line + 1 + lineIdx
		if srcLine-1 < len(f.lines) {
			valueLine := strings.Split(n.Value, "\n")[lineIdx]
			src := f.lines[srcLine-1]
			if i := strings.Index(src, valueLine); i >= 0 && valueLine != "" {
				return Pos{File: f.path, Line: srcLine, Col: len([]rune(src[:i])) + col + 1}
			}
		}
		return p
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if lineIdx == 0 {
			p.Col += 1 + col
		}
		return p
	default:
		if lineIdx == 0 {
			p.Col += col
		}
		return p
	}
}
