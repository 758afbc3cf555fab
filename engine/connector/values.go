package connector

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Values are the coerced `with` values of a component, defaults applied.
type Values map[string]any

// String returns a string value, or "" when absent.
func (v Values) String(name string) string {
	s, _ := v[name].(string)
	return s
}

// Int returns an integer value, or 0 when absent.
func (v Values) Int(name string) int64 {
	n, _ := v[name].(int64)
	return n
}

// Bool returns a boolean value, or false when absent.
func (v Values) Bool(name string) bool {
	b, _ := v[name].(bool)
	return b
}

// Duration returns a duration value, or 0 when absent.
func (v Values) Duration(name string) time.Duration {
	d, _ := v[name].(time.Duration)
	return d
}

// Map returns an object value, or nil when absent.
func (v Values) Map(name string) map[string]any {
	m, _ := v[name].(map[string]any)
	return m
}

// StringMap returns a string map value, or nil when absent.
func (v Values) StringMap(name string) map[string]string {
	m, _ := v[name].(map[string]string)
	return m
}

// Has reports whether a value is present.
func (v Values) Has(name string) bool {
	_, ok := v[name]
	return ok
}

// Coerce converts v to the Go representation of t: string, int64, float64,
// bool, time.Duration, map[string]any, map[string]string or []any. Strings
// convert to numbers, booleans and durations, because templates render text.
func Coerce(t Type, v any) (any, error) {
	switch t {
	case Any, Expression:
		if t == Expression {
			if _, ok := v.(string); !ok {
				return nil, fmt.Errorf("want an expression string, got %s", describe(v))
			}
		}
		return v, nil
	case String:
		switch x := v.(type) {
		case string:
			return x, nil
		case int, int64, bool:
			return fmt.Sprint(x), nil
		case float64:
			return formatFloat(x), nil
		}
	case Int:
		switch x := v.(type) {
		case int:
			return int64(x), nil
		case int64:
			return x, nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), nil
			}
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return n, nil
			}
		}
	case Number:
		switch x := v.(type) {
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case float64:
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				return x, nil
			}
		case string:
			// ParseFloat reads "NaN" and "Inf", which no JSON can carry
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, nil
			}
		}
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, nil
			}
		}
	case Duration:
		switch x := v.(type) {
		case time.Duration:
			if x < 0 {
				return nil, fmt.Errorf("want a positive duration, got %s", x)
			}
			return x, nil
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("want a duration such as 30s or 1m30s, got %q", x)
			}
			if d < 0 {
				return nil, fmt.Errorf("want a positive duration, got %q", x)
			}
			return d, nil
		}
		return nil, fmt.Errorf("want a duration such as 30s or 1m30s, got %s", describe(v))
	case Object:
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
		// expressions can give other maps (a string map of headers, say)
		if m, ok := genericMap(v); ok {
			return m, nil
		}
	case StringMap:
		switch x := v.(type) {
		case map[string]string:
			return x, nil
		case map[string]any:
			out := make(map[string]string, len(x))
			for k, e := range x {
				s, err := Coerce(String, e)
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", k, err)
				}
				out[k] = s.(string)
			}
			return out, nil
		}
	case List:
		if l, ok := v.([]any); ok {
			return l, nil
		}
		// expressions can give typed lists: split() gives []string
		if l, ok := genericList(v); ok {
			return l, nil
		}
	default:
		return nil, fmt.Errorf("unknown field type %q", t)
	}
	return nil, fmt.Errorf("want %s, got %s", article(t), describe(v))
}

// CheckValue coerces a literal value for field f and checks its enum,
// pattern and custom check.
func (f *Field) CheckValue(v any) (any, error) {
	c, err := Coerce(f.Type, v)
	if err != nil {
		return nil, err
	}
	if len(f.Enum) > 0 {
		s := fmt.Sprint(c)
		if !slices.Contains(f.Enum, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(f.Enum, ", "))
		}
	}
	re := f.re
	if re == nil && f.Pattern != "" {
		// a field that was never registered (a config's, a test's): compile
		// here rather than skip the check
		var err error
		if re, err = regexp.Compile(f.Pattern); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", f.Pattern, err)
		}
	}
	if re != nil {
		if s, ok := c.(string); ok && !re.MatchString(s) {
			help := f.PatternHelp
			if help == "" {
				help = "must match " + f.Pattern
			}
			return nil, fmt.Errorf("%q %s", s, help)
		}
	}
	if len(f.Fields) > 0 {
		if c, err = checkKeys(f.Fields, c.(map[string]any)); err != nil {
			return nil, err
		}
	}
	if f.Check != nil {
		if err := f.Check(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkKeys checks the keys of an object against the fields describing
// them: each value as its field, unknown keys and missing required ones
// refused, defaults applied. It returns a new map.
func checkKeys(fields []Field, m map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(fields))
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.Index(names, k)
		if i < 0 {
			return nil, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(names, ", "))
		}
		v, err := fields[i].CheckValue(m[k])
		if err != nil {
			if fields[i].Secret {
				err = fmt.Errorf("the value does not fit (%s)", fields[i].Type)
			}
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = v
	}
	for _, f := range fields {
		if _, ok := out[f.Name]; ok {
			continue
		}
		if f.Default != nil {
			out[f.Name] = f.Default
		} else if f.Required {
			return nil, fmt.Errorf("missing required key %q", f.Name)
		}
	}
	return out, nil
}

// formatFloat writes a number as a template would: whole numbers without
// an exponent (1e+06 is not what a user means by 1000000).
func formatFloat(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// genericMap converts a map with string keys of any value type.
func genericMap(v any) (map[string]any, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	for it := rv.MapRange(); it.Next(); {
		out[it.Key().String()] = it.Value().Interface()
	}
	return out, true
}

// genericList converts a slice or array of any element type (but bytes).
func genericList(v any) ([]any, bool) {
	rv := reflect.ValueOf(v)
	if (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) || rv.Type().Elem().Kind() == reflect.Uint8 {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

func article(t Type) string {
	switch t {
	case Int:
		return "an integer"
	case Object:
		return "a mapping"
	case StringMap:
		return "a mapping of strings"
	case List:
		return "a list"
	case Any:
		return "any value"
	default:
		return "a " + string(t)
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int, int64:
		return fmt.Sprintf("the integer %v", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case map[string]any, map[string]string:
		return "a mapping"
	case []any:
		return "a list"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
