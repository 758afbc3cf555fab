package recipes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/types"
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
	// fromEnv marks the config scalars that read ${VAR} from the
	// environment.
	fromEnv map[*yaml.Node]bool
	// natureCache: see natures.
	natureCache map[string]types.Type
	// programs, when set, are the programs of the recipes loaded so far
	// with this one: see programs.
	programs programs
}

func newFile(path string, src []byte) *file {
	return &file{path: path, lines: splitLines(string(src))}
}

// splitLines splits src into lines as the YAML parser counts them, so that
// its line numbers index the result: CR LF, CR, LF, and also NEL, LS and PS
// end a line.
func splitLines(src string) []string {
	lines := make([]string, 0, strings.Count(src, "\n")+1)
	start := 0
	for i := 0; i < len(src); {
		brk := 0
		switch {
		case src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n':
			brk = 2
		case src[i] == '\r' || src[i] == '\n':
			brk = 1
		case src[i] == 0xC2 && i+1 < len(src) && src[i+1] == 0x85:
			brk = 2
		case src[i] == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && (src[i+2] == 0xA8 || src[i+2] == 0xA9):
			brk = 3
		}
		if brk == 0 {
			i++
			continue
		}
		lines = append(lines, src[start:i])
		i += brk
		start = i
	}
	return append(lines, src[start:])
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

// locate maps a rune offset inside a scalar's value to a file position.
// It aligns the value with the scalar's source text, so that it is exact
// for every style: plain and quoted scalars on one line or several, with
// escapes, and literal and folded blocks. When the source cannot be
// aligned (a file edited under us, a value built by an alias), it falls
// back to the scalar's own position.
func (f *file) locate(n *yaml.Node, offset int) Pos {
	if p, ok := f.align(n, offset); ok {
		return p
	}
	return f.pos(n)
}

// srcUnit is one piece of a scalar's source: a rune, or an escape that
// stands for one rune of the value (r < 0: stands for none).
type srcUnit struct {
	r         rune
	line, col int // 1-based; col counts runes
}

// units reads the source of a scalar from its start, one unit at a time.
type units struct {
	f      *file
	style  yaml.Style
	li     int // 0-based line index
	bi, ci int // byte index and rune index in the line
}

// line is the current line, false past the end.
func (u *units) line() (string, bool) {
	if u.li >= len(u.f.lines) {
		return "", false
	}
	return u.f.lines[u.li], true
}

// skipCols moves to rune column ci (0-based) of the current line.
func (u *units) skipCols(ci int) {
	line, _ := u.line()
	for u.ci < ci && u.bi < len(line) {
		_, size := utf8.DecodeRuneInString(line[u.bi:])
		u.bi += size
		u.ci++
	}
}

func (u *units) newline() {
	u.li++
	u.bi, u.ci = 0, 0
}

// take reads one rune of the current line.
func (u *units) take(line string) (rune, bool) {
	if u.bi >= len(line) {
		return 0, false
	}
	r, size := utf8.DecodeRuneInString(line[u.bi:])
	u.bi += size
	u.ci++
	return r, true
}

// next returns the next unit; a line break is the unit '\n'.
func (u *units) next() (srcUnit, bool) {
	line, ok := u.line()
	if !ok {
		return srcUnit{}, false
	}
	at := srcUnit{line: u.li + 1, col: u.ci + 1}
	r, ok := u.take(line)
	if !ok {
		at.r = '\n'
		u.newline()
		return at, true
	}
	at.r = r
	switch {
	case u.style == yaml.SingleQuotedStyle && r == '\'':
		if u.bi < len(line) && line[u.bi] == '\'' {
			u.take(line) // '' is one '
		}
	case u.style == yaml.DoubleQuotedStyle && r == '\\':
		c, ok := u.take(line)
		if !ok { // an escaped line break stands for nothing
			u.newline()
			at.r = -1
			return at, true
		}
		hex := 0
		switch c {
		case 'x':
			hex = 2
		case 'u':
			hex = 4
		case 'U':
			hex = 8
		}
		for ; hex > 0; hex-- {
			u.take(line)
		}
		switch c {
		case 'x', 'u', 'U':
			at.r = 0 // some rune; matched by position, not value
		case ' ', '"', '/', '\\':
			at.r = c
		case 't', '\t', 'n', 'r', 'N', '_', 'L', 'P':
			at.r = ' ' // a kind of white space
		default:
			at.r = 0
		}
	}
	return at, true
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == 0x85 || r == 0xA0 || r == 0x2028 || r == 0x2029
}

// align walks the value and the source together: runes that are not
// white space must match one for one (escapes match anything), white space
// may differ (indentation, folded line breaks).
func (f *file) align(n *yaml.Node, offset int) (Pos, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Line < 1 || n.Line > len(f.lines) {
		return Pos{}, false
	}
	u := &units{f: f, style: n.Style, li: n.Line - 1}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		u.li = n.Line // the text starts under the | or > header
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		u.skipCols(n.Column) // past the opening quote
	default:
		u.skipCols(n.Column - 1)
	}
	value := n.Value
	var last srcUnit
	matched := false
	vi := 0 // rune index in value
	for bi := 0; ; {
		// the next value rune that is not white space, or the end
		var v rune
		for bi < len(value) {
			r, size := utf8.DecodeRuneInString(value[bi:])
			if !isSpace(r) {
				v = r
				break
			}
			bi += size
			vi++
		}
		if bi >= len(value) {
			break // the target is the end of the value
		}
		// the next source unit that is not white space
		var su srcUnit
		for {
			var ok bool
			if su, ok = u.next(); !ok {
				return Pos{}, false
			}
			if su.r >= 0 && !isSpace(su.r) {
				break
			}
		}
		if su.r != 0 && su.r != v {
			return Pos{}, false
		}
		if vi >= offset {
			// the first rune at or after offset that is not white space
			return Pos{File: f.path, Line: su.line, Col: su.col}, true
		}
		last, matched = su, true
		_, size := utf8.DecodeRuneInString(value[bi:])
		bi += size
		vi++
	}
	// the target is the end of the value: just after its last rune
	if !matched {
		return f.pos(n), true
	}
	return Pos{File: f.path, Line: last.line, Col: last.col + 1}, true
}
