package connector_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

func TestCoerce(t *testing.T) {
	tests := []struct {
		name    string
		typ     connector.Type
		in      any
		want    any
		wantErr string // a substring of the error; "" means success
	}{
		// string
		{name: "string/string", typ: connector.String, in: "hi", want: "hi"},
		{name: "string/int", typ: connector.String, in: 42, want: "42"},
		{name: "string/int64", typ: connector.String, in: int64(-7), want: "-7"},
		{name: "string/bool", typ: connector.String, in: true, want: "true"},
		{name: "string/float", typ: connector.String, in: 1.5, want: "1.5"},
		{name: "string/whole float has no exponent", typ: connector.String, in: 1e6, want: "1000000"},
		{name: "string/huge float", typ: connector.String, in: 1e21, want: "1e+21"},
		{name: "string/null", typ: connector.String, in: nil, wantErr: "want a string, got null"},
		{name: "string/map", typ: connector.String, in: map[string]any{}, wantErr: "want a string, got a mapping"},
		{name: "string/list", typ: connector.String, in: []any{"a"}, wantErr: "want a string, got a list"},

		// integer
		{name: "int/int", typ: connector.Int, in: 3, want: int64(3)},
		{name: "int/int64", typ: connector.Int, in: int64(1 << 40), want: int64(1 << 40)},
		{name: "int/whole float", typ: connector.Int, in: 12.0, want: int64(12)},
		{name: "int/string", typ: connector.Int, in: " 17 ", want: int64(17)},
		{name: "int/negative string", typ: connector.Int, in: "-5", want: int64(-5)},
		{name: "int/fraction", typ: connector.Int, in: 1.5, wantErr: "want an integer, got the number 1.5"},
		{name: "int/float beyond 2^53", typ: connector.Int, in: 1e17, wantErr: "want an integer"},
		{name: "int/bad string", typ: connector.Int, in: "4.0", wantErr: `want an integer, got the string "4.0"`},
		{name: "int/bool", typ: connector.Int, in: true, wantErr: "want an integer, got the boolean true"},

		// number
		{name: "number/int", typ: connector.Number, in: 2, want: 2.0},
		{name: "number/int64", typ: connector.Number, in: int64(3), want: 3.0},
		{name: "number/float", typ: connector.Number, in: 2.5, want: 2.5},
		{name: "number/string", typ: connector.Number, in: "2.25", want: 2.25},
		{name: "number/bad string", typ: connector.Number, in: "two", wantErr: `want a number, got the string "two"`},
		{name: "number/NaN string", typ: connector.Number, in: "NaN", wantErr: "want a number"},
		{name: "number/Inf string", typ: connector.Number, in: "+Inf", wantErr: "want a number"},
		{name: "number/NaN", typ: connector.Number, in: math.NaN(), wantErr: "want a number"},
		{name: "number/map", typ: connector.Number, in: map[string]any{}, wantErr: "want a number, got a mapping"},

		// boolean
		{name: "bool/bool", typ: connector.Bool, in: false, want: false},
		{name: "bool/string true", typ: connector.Bool, in: "true", want: true},
		{name: "bool/string 0", typ: connector.Bool, in: " 0 ", want: false},
		{name: "bool/bad string", typ: connector.Bool, in: "yes please", wantErr: `want a boolean, got the string "yes please"`},
		{name: "bool/int", typ: connector.Bool, in: 1, wantErr: "want a boolean, got the integer 1"},

		// duration
		{name: "duration/string", typ: connector.Duration, in: "1m30s", want: 90 * time.Second},
		{name: "duration/duration", typ: connector.Duration, in: 5 * time.Second, want: 5 * time.Second},
		{name: "duration/zero", typ: connector.Duration, in: "0s", want: time.Duration(0)},
		{name: "duration/negative string", typ: connector.Duration, in: "-1s", wantErr: "want a positive duration"},
		{name: "duration/negative duration", typ: connector.Duration, in: -time.Second, wantErr: "want a positive duration"},
		{name: "duration/bad string", typ: connector.Duration, in: "soon", wantErr: `want a duration such as 30s or 1m30s, got "soon"`},
		{name: "duration/bare number", typ: connector.Duration, in: 30, wantErr: "want a duration such as 30s or 1m30s, got the integer 30"},

		// object
		{name: "object/map", typ: connector.Object, in: map[string]any{"a": 1}, want: map[string]any{"a": 1}},
		{name: "object/string map", typ: connector.Object, in: map[string]string{"a": "b"}, want: map[string]any{"a": "b"}},
		{name: "object/list", typ: connector.Object, in: []any{}, wantErr: "want a mapping, got a list"},
		{name: "object/string", typ: connector.Object, in: "x", wantErr: `want a mapping, got the string "x"`},
		{name: "object/int keys", typ: connector.Object, in: map[int]any{1: "a"}, wantErr: "want a mapping"},

		// string map
		{name: "string_map/string map", typ: connector.StringMap, in: map[string]string{"a": "b"}, want: map[string]string{"a": "b"}},
		{name: "string_map/mixed scalars", typ: connector.StringMap, in: map[string]any{"s": "x", "n": 1, "f": 2.5, "b": true},
			want: map[string]string{"s": "x", "n": "1", "f": "2.5", "b": "true"}},
		{name: "string_map/nested map", typ: connector.StringMap, in: map[string]any{"k": map[string]any{}}, wantErr: `key "k": want a string, got a mapping`},
		{name: "string_map/list", typ: connector.StringMap, in: []any{}, wantErr: "want a mapping of strings, got a list"},

		// list
		{name: "list/list", typ: connector.List, in: []any{"a", 1}, want: []any{"a", 1}},
		{name: "list/typed list", typ: connector.List, in: []string{"a", "b"}, want: []any{"a", "b"}},
		{name: "list/bytes are not a list", typ: connector.List, in: []byte("ab"), wantErr: "want a list"},
		{name: "list/map", typ: connector.List, in: map[string]any{}, wantErr: "want a list, got a mapping"},
		{name: "list/string", typ: connector.List, in: "a,b", wantErr: `want a list, got the string "a,b"`},

		// expression
		{name: "expression/string", typ: connector.Expression, in: "event.id", want: "event.id"},
		{name: "expression/int", typ: connector.Expression, in: 3, wantErr: "want an expression string, got the integer 3"},

		// any
		{name: "any/map", typ: connector.Any, in: map[string]any{"a": 1}, want: map[string]any{"a": 1}},
		{name: "any/null", typ: connector.Any, in: nil, want: nil},

		// unknown type
		{name: "unknown type", typ: connector.Type("blob"), in: "x", wantErr: `unknown field type "blob"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := connector.Coerce(tc.typ, tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestFieldCheckValue(t *testing.T) {
	even := func(v any) error {
		if v.(int64)%2 != 0 {
			return errors.New("must be even")
		}
		return nil
	}
	tests := []struct {
		name    string
		field   connector.Field
		in      any
		want    any
		wantErr string
	}{
		{name: "enum/member", field: connector.Field{Type: connector.String, Enum: []string{"GET", "POST"}}, in: "GET", want: "GET"},
		{name: "enum/not a member", field: connector.Field{Type: connector.String, Enum: []string{"GET", "POST"}}, in: "get",
			wantErr: `"get" is not one of GET, POST`},
		{name: "enum/of integers", field: connector.Field{Type: connector.Int, Enum: []string{"1", "2"}}, in: "2", want: int64(2)},
		{name: "enum/of integers, miss", field: connector.Field{Type: connector.Int, Enum: []string{"1", "2"}}, in: 3,
			wantErr: `"3" is not one of 1, 2`},
		{name: "pattern/match", field: connector.Field{Type: connector.String, Pattern: `^/`, PatternHelp: "must start with /"}, in: "/x", want: "/x"},
		{name: "pattern/help", field: connector.Field{Type: connector.String, Pattern: `^/`, PatternHelp: "must start with /"}, in: "x",
			wantErr: `"x" must start with /`},
		{name: "pattern/no help", field: connector.Field{Type: connector.String, Pattern: `^[a-z]+$`}, in: "A1",
			wantErr: `"A1" must match ^[a-z]+$`},
		{name: "pattern/bad pattern", field: connector.Field{Type: connector.String, Pattern: `(`}, in: "a", wantErr: "pattern"},
		{name: "check/passes", field: connector.Field{Type: connector.Int, Check: even}, in: "4", want: int64(4)},
		{name: "check/fails", field: connector.Field{Type: connector.Int, Check: even}, in: 3, wantErr: "must be even"},
		{name: "coerce fails first", field: connector.Field{Type: connector.Int, Check: even}, in: "x", wantErr: "want an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.field
			f.Name, f.Description = "f", "a field"
			got, err := f.CheckValue(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// A registered field compiles its pattern once; the check must be the same.
func TestFieldCheckValueRegistered(t *testing.T) {
	reg := connector.NewRegistry()
	spec := &connector.Spec{ID: "x.trig", Kind: connector.KindTrigger, Summary: "s", Fields: []connector.Field{
		{Name: "path", Type: connector.String, Description: "d", Pattern: `^/`},
	}}
	require.NoError(t, reg.Add(spec))
	f, ok := spec.Field("path")
	require.True(t, ok)
	_, err := f.CheckValue("nope")
	require.ErrorContains(t, err, "must match ^/")
	v, err := f.CheckValue("/yes")
	require.NoError(t, err)
	require.Equal(t, "/yes", v)
}

func TestValuesAccessors(t *testing.T) {
	v := connector.Values{
		"s": "str", "i": int64(4), "b": true, "d": time.Second,
		"m": map[string]any{"k": 1}, "sm": map[string]string{"k": "v"},
		"wrong": 3, // an int, not an int64
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"string", v.String("s"), "str"},
		{"string absent", v.String("nope"), ""},
		{"string of another type", v.String("i"), ""},
		{"int", v.Int("i"), int64(4)},
		{"int of int is not coerced", v.Int("wrong"), int64(0)},
		{"bool", v.Bool("b"), true},
		{"bool absent", v.Bool("x"), false},
		{"duration", v.Duration("d"), time.Second},
		{"duration absent", v.Duration("x"), time.Duration(0)},
		{"map", v.Map("m"), map[string]any{"k": 1}},
		{"map absent", v.Map("x"), map[string]any(nil)},
		{"string map", v.StringMap("sm"), map[string]string{"k": "v"}},
		{"has", v.Has("s"), true},
		{"has not", v.Has("x"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.got)
		})
	}
}
