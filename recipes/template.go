package recipes

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Value is a compiled `with` or `vars` value: plain data in which strings
// may hold `{{ expr }}` templates.
type Value interface {
	// Render evaluates the templates against env.
	Render(env map[string]any) (any, error)
	// Static reports whether the value holds no template.
	Static() bool
}

type literal struct{ v any }

func (l literal) Render(map[string]any) (any, error) { return l.v, nil }
func (l literal) Static() bool                       { return true }

// single is a string that is exactly one {{ expr }}: it keeps the type.
type single struct{ e *Expr }

func (s single) Render(env map[string]any) (any, error) { return s.e.Eval(env) }
func (s single) Static() bool                           { return false }

type part struct {
	text string
	e    *Expr
}

// interp is a string with text and templates, rendered as text.
type interp struct{ parts []part }

func (t interp) Render(env map[string]any) (any, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.e == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := p.e.Eval(env)
		if err != nil {
			return nil, err
		}
		b.WriteString(Text(v))
	}
	return b.String(), nil
}
func (t interp) Static() bool { return false }

// mapValue is a mapping with its keys in the order written (a loaded
// recipe keeps many small ones: a slice is a fraction of a map's size).
type mapValue []mapField

type mapField struct {
	key string
	val Value
}

// get returns the value of a key.
func (m mapValue) get(key string) (Value, bool) {
	for _, f := range m {
		if f.key == key {
			return f.val, true
		}
	}
	return nil, false
}

func (m mapValue) Render(env map[string]any) (any, error) {
	out := make(map[string]any, len(m))
	for _, f := range m {
		v, err := f.val.Render(env)
		if err != nil {
			return nil, err
		}
		out[f.key] = v
	}
	return out, nil
}

func (m mapValue) Static() bool {
	for _, f := range m {
		if !f.val.Static() {
			return false
		}
	}
	return true
}

type listValue []Value

func (l listValue) Render(env map[string]any) (any, error) {
	out := make([]any, len(l))
	for i, v := range l {
		r, err := v.Render(env)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func (l listValue) Static() bool {
	for _, v := range l {
		if !v.Static() {
			return false
		}
	}
	return true
}

// Static returns the plain data of a value without templates.
func staticData(v Value) any {
	out, _ := v.Render(nil)
	return out
}

// compileValue compiles a node into a Value, reporting template errors.
// It returns nil when the node had errors.
func (f *file) compileValue(n *yaml.Node, sc *scope) Value {
	n = f.deref(n)
	if f.aliases > 10000 {
		f.errorf(n, "too many alias expansions")
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		pairs, ok := f.mapping(n, "mapping")
		if !ok {
			return nil
		}
		m := make(mapValue, 0, len(pairs))
		bad := false
		for _, p := range pairs {
			v := f.compileValue(p.val, sc)
			if v == nil {
				bad = true
				continue
			}
			m = append(m, mapField{p.key.Value, v})
		}
		if bad {
			return nil
		}
		return m
	case yaml.SequenceNode:
		l := make(listValue, 0, len(n.Content))
		bad := false
		for _, c := range n.Content {
			v := f.compileValue(c, sc)
			if v == nil {
				bad = true
				continue
			}
			l = append(l, v)
		}
		if bad {
			return nil
		}
		return l
	case yaml.ScalarNode:
		if n.Tag != "!!str" || !strings.Contains(n.Value, "{{") {
			return literal{scalarValue(n)}
		}
		return f.compileTemplate(n, sc)
	}
	return literal{nil}
}

// segment is a piece of a template string: text, or an expression with
// the rune offset where it starts.
type segment struct {
	text   string
	isExpr bool
	off    int
}

// splitTemplate splits s into text and {{ expr }} segments. "}}" inside a
// quoted string of the expression, or closing a map literal of it
// ({{ {'a': {'b': 1}} }}), does not close it.
func splitTemplate(s string) ([]segment, error) {
	// The syntax is ASCII, and in UTF-8 no byte of a multi-byte rune is
	// ASCII: scan bytes, and count runes only for the offsets.
	var segs []segment
	lastB, lastR := 0, 0
	runeOff := func(b int) int { // b only grows from call to call
		lastR += utf8.RuneCountInString(s[lastB:b])
		lastB = b
		return lastR
	}
	i, textStart := 0, 0
	for i < len(s) {
		if i+1 < len(s) && s[i] == '{' && s[i+1] == '{' {
			if i > textStart {
				segs = append(segs, segment{text: s[textStart:i], off: runeOff(textStart)})
			}
			start := i + 2
			j, quote, depth := start, byte(0), 0
			closed := false
			for j < len(s) {
				c := s[j]
				switch {
				case quote != 0:
					if c == '\\' && quote != '`' { // raw strings have no escapes
						j++
					} else if c == quote {
						quote = 0
					}
				case c == '"' || c == '\'' || c == '`':
					quote = c
				case c == '{':
					depth++
				case c == '}' && depth > 0:
					depth--
				case c == '}' && j+1 < len(s) && s[j+1] == '}':
					closed = true
				}
				if closed {
					break
				}
				j++
			}
			if !closed {
				return nil, fmt.Errorf("%d:unclosed {{: add }} after the expression", runeOff(i))
			}
			segs = append(segs, segment{text: s[start:j], isExpr: true, off: runeOff(start)})
			i = j + 2
			textStart = i
			continue
		}
		i++
	}
	if textStart < len(s) {
		segs = append(segs, segment{text: s[textStart:], off: runeOff(textStart)})
	}
	return segs, nil
}

func (f *file) compileTemplate(n *yaml.Node, sc *scope) Value {
	segs, err := splitTemplate(n.Value)
	if err != nil {
		var off int
		msg := err.Error()
		if k := strings.IndexByte(msg, ':'); k > 0 {
			fmt.Sscanf(msg[:k], "%d", &off)
			msg = msg[k+1:]
		}
		f.errorAt(f.locate(n, off), "template: %s", msg)
		return nil
	}
	at := func(base int) func(int) Pos {
		return func(off int) Pos { return f.locate(n, base+off) }
	}
	if len(segs) == 1 && segs[0].isExpr {
		e := f.compile(segs[0].text, sc, false, "", at(segs[0].off))
		if e == nil {
			return nil
		}
		return single{e}
	}
	t := interp{}
	bad := false
	for _, s := range segs {
		if !s.isExpr {
			t.parts = append(t.parts, part{text: s.text})
			continue
		}
		e := f.compile(s.text, sc, false, "", at(s.off))
		if e == nil {
			bad = true
			continue
		}
		t.parts = append(t.parts, part{e: e})
	}
	if bad {
		return nil
	}
	return t
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
