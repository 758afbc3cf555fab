package connector

import (
	"encoding/json"
	"github.com/expr-lang/expr/types"
	"strconv"
)

// Shape describes the structure of an event or an output, for
// type-checking expressions and for docs.
type Shape struct {
	Type        Type
	Description string
	Props       []Prop // the known keys of an object, in order
	Open        bool   // an object that may hold keys beyond Props
	Elem        *Shape // the element of a list, or the values of an open object
}

// Prop is one named key of an object shape.
type Prop struct {
	Name  string
	Shape *Shape
}

// Obj is a closed object shape: only the listed keys exist.
func Obj(props ...Prop) *Shape { return &Shape{Type: Object, Props: props} }

// OpenObj is an object shape with the listed keys and any others, whose
// values have the shape elem (nil for any).
func OpenObj(elem *Shape, props ...Prop) *Shape {
	return &Shape{Type: Object, Props: props, Open: true, Elem: elem}
}

// ListOf is a list whose elements have shape elem.
func ListOf(elem *Shape, desc string) *Shape {
	return &Shape{Type: List, Elem: elem, Description: desc}
}

// P is a key of an object shape.
func P(name string, s *Shape) Prop { return Prop{Name: name, Shape: s} }

// Leaf is a scalar (or any) shape with a description.
func Leaf(t Type, desc string) *Shape { return &Shape{Type: t, Description: desc} }

// Describe sets the shape's description and returns it.
func (s *Shape) Describe(desc string) *Shape { s.Description = desc; return s }

// ExprType converts the shape to an expr-lang type for the type checker.
// Durations are strings, objects become strict maps unless Open.
func (s *Shape) ExprType() types.Type {
	if s == nil {
		return types.Any
	}
	switch s.Type {
	case String, Duration, Expression:
		return types.String
	case Int:
		return types.Int
	case Number:
		return types.Float64
	case Bool:
		return types.Bool
	case StringMap:
		return types.Map{types.Extra: types.String}
	case List:
		return types.Array(s.Elem.ExprType())
	case Object:
		m := types.Map{}
		for _, p := range s.Props {
			m[p.Name] = p.Shape.ExprType()
		}
		if s.Open || len(s.Props) == 0 {
			m[types.Extra] = s.Elem.ExprType()
		}
		return m
	default:
		return types.Any
	}
}

// Zero is the zero value of a shape: "" for strings, 0 for numbers, an
// object with every known key zeroed, an empty list.
func (s *Shape) Zero() any {
	if s == nil {
		return nil
	}
	switch s.Type {
	case String, Duration, Expression:
		return ""
	case Int:
		return 0
	case Number:
		return 0.0
	case Bool:
		return false
	case StringMap:
		return map[string]any{}
	case List:
		return []any{}
	case Object:
		m := make(map[string]any, len(s.Props))
		for _, p := range s.Props {
			m[p.Name] = p.Shape.Zero()
		}
		return m
	}
	return nil
}

// Fill conforms v to the shape: keys the shape declares but v lacks (or
// holds as null) get their zero value, and numbers take the Go type the
// shape declares (int for integers, float64 for numbers; a number where
// it declares a string becomes its decimal text), so that type-checked
// expressions never meet a nil or an int64 where they expect an int. v is
// not modified; values of another kind than declared are kept as they
// are.
func (s *Shape) Fill(v any) any {
	out, _ := s.fill(v)
	return out
}

// fill is Fill that also says whether anything changed, so that a value
// that already fits is returned as it is, without a copy (the hot path of
// every event).
func (s *Shape) fill(v any) (any, bool) {
	if s == nil {
		return v, false
	}
	if v == nil {
		z := s.Zero()
		return z, z != nil
	}
	switch s.Type {
	case Object:
		m, ok := v.(map[string]any)
		if !ok || len(s.Props) == 0 {
			return v, false
		}
		var out map[string]any
		for _, p := range s.Props {
			cur, present := m[p.Name]
			filled, changed := p.Shape.fill(cur)
			if !changed && present {
				continue
			}
			if !changed && !present && filled == nil {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(m)+len(s.Props))
				for k, e := range m {
					out[k] = e
				}
			}
			out[p.Name] = filled
		}
		if out == nil {
			return v, false
		}
		return out, true
	case Int:
		// expr specialises operators on the checked type: an int64 or a
		// JSON float64 where the shape says integer would not compare
		switch x := v.(type) {
		case int64:
			return int(x), true
		case float64:
			if x == float64(int(x)) {
				return int(x), true
			}
		case int32:
			return int(x), true
		}
		return v, false
	case Number:
		switch x := v.(type) {
		case int:
			return float64(x), true
		case int64:
			return float64(x), true
		case float32:
			return float64(x), true
		}
		return v, false
	case String:
		// a service that sends an id as a number one day and a string
		// the next (Zoom's meeting id): the shape says string, so a
		// string it is, as its receiver makes it
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), true
		case int:
			return strconv.Itoa(x), true
		case int64:
			return strconv.FormatInt(x, 10), true
		case json.Number:
			return x.String(), true
		}
		return v, false
	case List:
		l, ok := v.([]any)
		if !ok || s.Elem == nil {
			return v, false
		}
		var out []any
		for i, e := range l {
			filled, changed := s.Elem.fill(e)
			if !changed {
				continue
			}
			if out == nil {
				out = append([]any(nil), l...)
			}
			out[i] = filled
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	return v, false
}
