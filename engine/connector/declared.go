package connector

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Declaration marks a trigger field whose value declares, per recipe, the
// shape of one key of the event: webhook.received's body_schema and
// body_sample type event.body. The recipe loader reads the value (a path
// to a JSON file relative to the recipe, or the value inline) and
// type-checks the recipe's expressions against the declared shape.
type Declaration struct {
	// Key is the key of the event whose shape the field declares.
	Key string
	// Sample makes the value a sample payload, whose shape is inferred
	// (SampleShape); otherwise it is a JSON Schema (SchemaShape).
	Sample bool
}

// Limits of a declared shape, so that no schema or sample can exhaust the
// loader: nesting depth, and shape nodes built (a $ref used many times
// counts each time).
const (
	maxDeclaredDepth = 64
	maxDeclaredNodes = 20000
)

// WithKey returns a copy of the object shape s in which the key named key
// has the shape sub (added at the end when s has no such key). The copy
// shares everything else with s.
func (s *Shape) WithKey(key string, sub *Shape) *Shape {
	out := &Shape{Type: Object}
	if s != nil {
		*out = *s
	}
	out.Props = make([]Prop, 0, len(out.Props)+1)
	replaced := false
	if s != nil {
		for _, p := range s.Props {
			if p.Name == key {
				p.Shape, replaced = sub, true
			}
			out.Props = append(out.Props, p)
		}
	}
	if !replaced {
		out.Props = append(out.Props, P(key, sub))
	}
	return out
}

// SchemaShape converts a JSON Schema, as decoded JSON (maps, lists,
// strings, numbers, booleans), to a shape for type-checking the
// expressions that read a value of that schema.
//
// The schema is read as a declaration of what recipes may read, so that a
// misspelt field is an error: an object that lists `properties` is closed
// unless `additionalProperties` (true or a schema) or `patternProperties`
// opens it; an object without `properties` is open. `type` (one, or a list
// with "null"), `properties`, `items`, `additionalProperties`,
// `description`, `enum`, `const`, `allOf` (merged), `anyOf` and `oneOf`
// (merged when the alternatives agree, any otherwise) and local `$ref`s
// (`#/$defs/...`, `#/definitions/...`) are read; other keywords are
// ignored. JSON Schema's integer is an integer, number a number.
func SchemaShape(schema any) (*Shape, error) {
	c := &schemaConv{root: schema}
	return c.shape(schema, "", 0)
}

type schemaConv struct {
	root  any
	nodes int
	refs  int // $refs being followed, to stop a reference cycle
}

func (c *schemaConv) count(at string) error {
	c.nodes++
	if c.nodes > maxDeclaredNodes {
		return schemaErr(at, "the schema is too large (more than %d parts, references counted each time)", maxDeclaredNodes)
	}
	return nil
}

// SchemaError is a problem at a place in a JSON Schema.
type SchemaError struct {
	// Pointer is the JSON pointer of the place ("" for the whole schema,
	// "/properties/total").
	Pointer string
	Message string
}

func (e *SchemaError) Error() string {
	if e.Pointer == "" {
		return e.Message
	}
	return "#" + e.Pointer + ": " + e.Message
}

func schemaErr(at, format string, args ...any) error {
	return &SchemaError{Pointer: at, Message: fmt.Sprintf(format, args...)}
}

func (c *schemaConv) shape(v any, at string, depth int) (*Shape, error) {
	if depth > maxDeclaredDepth {
		if c.refs > 0 {
			// a recursive schema (a tree): what lies deeper is not typed
			return Leaf(Any, ""), nil
		}
		return nil, schemaErr(at, "nested more than %d levels", maxDeclaredDepth)
	}
	if err := c.count(at); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case bool:
		return Leaf(Any, ""), nil
	case map[string]any:
		return c.object(x, at, depth)
	}
	return nil, schemaErr(at, "a schema must be an object or a boolean, got %s", jsonKind(v))
}

func (c *schemaConv) object(m map[string]any, at string, depth int) (*Shape, error) {
	desc, _ := m["description"].(string)
	if ref, ok := m["$ref"]; ok {
		r, ok := ref.(string)
		if !ok {
			return nil, schemaErr(at, "$ref must be a string, got %s", jsonKind(ref))
		}
		target, err := c.resolve(r)
		if err != nil {
			return nil, schemaErr(at, "$ref %q: %v", r, err)
		}
		if c.refs >= maxDeclaredDepth {
			// a cycle (a tree of nodes): what lies below is not typed
			return Leaf(Any, desc), nil
		}
		c.refs++
		s, err := c.shape(target, strings.TrimPrefix(r, "#"), depth+1)
		c.refs--
		if err != nil {
			return nil, err
		}
		if desc != "" {
			cp := *s
			cp.Description = desc
			s = &cp
		}
		return s, nil
	}
	types, err := schemaTypes(m["type"], at)
	if err != nil {
		return nil, err
	}
	var typ Type
	switch {
	case len(types) == 1:
		typ = types[0]
	case len(types) > 1:
		return Leaf(Any, desc), nil
	case m["properties"] != nil || m["additionalProperties"] != nil || m["patternProperties"] != nil:
		typ = Object
	case m["items"] != nil || m["prefixItems"] != nil:
		typ = List
	}
	if typ == "" {
		// no type: from a combination, or from the values it allows
		for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
			if l, ok := m[kw]; ok {
				return c.combined(kw, l, at, depth, desc)
			}
		}
		if vals := enumValues(m); vals != nil {
			s := Leaf(Any, desc)
			for i, v := range vals {
				t := SampleShape(v).Type
				if i > 0 && t != s.Type {
					return Leaf(Any, desc), nil
				}
				s.Type = t
			}
			if s.Type == Object || s.Type == List {
				s.Type = Any
			}
			return s, nil
		}
		return Leaf(Any, desc), nil
	}
	switch typ {
	case Object:
		return c.props(m, at, depth, desc)
	case List:
		s := &Shape{Type: List, Description: desc}
		if items, ok := m["items"]; ok {
			if _, tuple := items.([]any); !tuple {
				elem, err := c.shape(items, at+"/items", depth+1)
				if err != nil {
					return nil, err
				}
				s.Elem = elem
			}
		}
		return s, nil
	}
	return Leaf(typ, desc), nil
}

func (c *schemaConv) props(m map[string]any, at string, depth int, desc string) (*Shape, error) {
	s := &Shape{Type: Object, Description: desc}
	if p, ok := m["properties"]; ok {
		pm, ok := p.(map[string]any)
		if !ok {
			return nil, schemaErr(at, "properties must be an object, got %s", jsonKind(p))
		}
		for _, name := range sortedNames(pm) {
			ps, err := c.shape(pm[name], at+"/properties/"+escapePointer(name), depth+1)
			if err != nil {
				return nil, err
			}
			s.Props = append(s.Props, P(name, ps))
		}
	}
	switch ap := m["additionalProperties"].(type) {
	case nil:
		s.Open = len(s.Props) == 0
	case bool:
		s.Open = ap
	default:
		elem, err := c.shape(ap, at+"/additionalProperties", depth+1)
		if err != nil {
			return nil, err
		}
		s.Open, s.Elem = true, elem
	}
	if m["patternProperties"] != nil {
		s.Open, s.Elem = true, nil
	}
	return s, nil
}

// combined reads allOf (every part applies: objects merge) and anyOf and
// oneOf (one applies: a shape when the alternatives agree).
func (c *schemaConv) combined(kw string, v any, at string, depth int, desc string) (*Shape, error) {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return nil, schemaErr(at, "%s must be a non-empty list of schemas", kw)
	}
	parts := make([]*Shape, 0, len(l))
	for i, part := range l {
		s, err := c.shape(part, fmt.Sprintf("%s/%s/%d", at, kw, i), depth+1)
		if err != nil {
			return nil, err
		}
		// for anyOf and oneOf, an alternative that is null (or anything)
		// types nothing: the others give the shape
		parts = append(parts, s)
	}
	out := mergeShapes(parts)
	if out.Type == Any {
		return Leaf(Any, desc), nil
	}
	if desc != "" {
		cp := *out
		cp.Description = desc
		out = &cp
	}
	return out, nil
}

// resolve finds the target of a local reference, a JSON pointer.
func (c *schemaConv) resolve(ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, errors.New("only references inside the schema (#/$defs/NAME) are read")
	}
	cur := c.root
	if ptr == "" {
		return cur, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, errors.New("not a JSON pointer")
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := cur.(type) {
		case map[string]any:
			next, ok := x[tok]
			if !ok {
				return nil, fmt.Errorf("no %q in the schema", tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("no item %q in the schema", tok)
			}
			cur = x[i]
		default:
			return nil, fmt.Errorf("no %q in the schema", tok)
		}
	}
	return cur, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// schemaTypes reads `type`, leaving out "null" (a null value is read as
// the zero value of the type).
func schemaTypes(v any, at string) ([]Type, error) {
	var names []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		names = []any{x}
	case []any:
		names = x
	default:
		return nil, schemaErr(at, "type must be a string or a list of strings, got %s", jsonKind(v))
	}
	var out []Type
	for _, n := range names {
		s, _ := n.(string)
		var t Type
		switch s {
		case "null":
			continue
		case "string":
			t = String
		case "integer":
			t = Int
		case "number":
			t = Number
		case "boolean":
			t = Bool
		case "object":
			t = Object
		case "array":
			t = List
		default:
			return nil, schemaErr(at, "type %s is not one of string, integer, number, boolean, object, array, null", jsonText(n))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 && len(names) > 0 {
		return []Type{Any}, nil
	}
	return out, nil
}

func enumValues(m map[string]any) []any {
	if v, ok := m["const"]; ok {
		return []any{v}
	}
	if l, ok := m["enum"].([]any); ok && len(l) > 0 {
		return l
	}
	return nil
}

// SampleShape infers a shape from a sample value (decoded JSON or YAML):
// its objects are closed (only the keys of the sample exist; an empty
// object is open), its numbers are numbers, the elements of a list have
// the merged shape of the sample's elements, and null is any. A sample
// nested deeper than the shape limits is typed any below them.
func SampleShape(v any) *Shape {
	n := 0
	return sampleShape(v, 0, &n)
}

func sampleShape(v any, depth int, nodes *int) *Shape {
	*nodes++
	if depth > maxDeclaredDepth || *nodes > maxDeclaredNodes {
		return Leaf(Any, "")
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return OpenObj(nil)
		}
		s := &Shape{Type: Object}
		for _, k := range sortedNames(x) {
			s.Props = append(s.Props, P(k, sampleShape(x[k], depth+1, nodes)))
		}
		return s
	case []any:
		elems := make([]*Shape, len(x))
		for i, e := range x {
			elems[i] = sampleShape(e, depth+1, nodes)
		}
		return &Shape{Type: List, Elem: mergeShapes(elems)}
	case string:
		return Leaf(String, "")
	case bool:
		return Leaf(Bool, "")
	case float64, float32, int, int64, int32, json.Number:
		return Leaf(Number, "")
	}
	return Leaf(Any, "")
}

// mergeShapes is a shape that holds what the shapes all describe:
// objects get the keys of all (open when one is), lists merge their
// elements, an any (or nil) gives way to the others, and different types
// make an any. It takes them all at once, so that merging the elements of
// a long list costs what they hold, not its square.
func mergeShapes(shapes []*Shape) *Shape {
	var kept []*Shape
	for _, s := range shapes {
		switch {
		case s == nil || s.Type == Any:
		case len(kept) > 0 && s.Type != kept[0].Type:
			return Leaf(Any, "")
		default:
			kept = append(kept, s)
		}
	}
	switch {
	case len(kept) == 0:
		return Leaf(Any, "")
	case len(kept) == 1:
		return kept[0]
	}
	switch kept[0].Type {
	case Object:
		out := &Shape{Type: Object, Description: kept[0].Description}
		byName := map[string][]*Shape{}
		var names []string
		allOpen := true
		var elems []*Shape
		for _, s := range kept {
			out.Open = out.Open || s.Open
			allOpen = allOpen && s.Open
			elems = append(elems, s.Elem)
			for _, p := range s.Props {
				if _, seen := byName[p.Name]; !seen {
					names = append(names, p.Name)
				}
				byName[p.Name] = append(byName[p.Name], p.Shape)
			}
		}
		if allOpen {
			out.Elem = mergeShapes(elems)
		}
		sort.Strings(names)
		for _, n := range names {
			out.Props = append(out.Props, P(n, mergeShapes(byName[n])))
		}
		return out
	case List:
		elems := make([]*Shape, len(kept))
		for i, s := range kept {
			elems[i] = s.Elem
		}
		return &Shape{Type: List, Description: kept[0].Description, Elem: mergeShapes(elems)}
	}
	return kept[0]
}

func sortedNames(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// jsonKind names the JSON kind of a decoded value for a message.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "a number"
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
