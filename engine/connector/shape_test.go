package connector_test

import (
	"encoding/json"
	"testing"

	"github.com/expr-lang/expr/types"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

func TestShapeExprType(t *testing.T) {
	tests := []struct {
		name  string
		shape *connector.Shape
		want  types.Type
	}{
		{"nil", nil, types.Any},
		{"string", connector.Leaf(connector.String, ""), types.String},
		{"duration is a string", connector.Leaf(connector.Duration, ""), types.String},
		{"expression is a string", connector.Leaf(connector.Expression, ""), types.String},
		{"int", connector.Leaf(connector.Int, ""), types.Int},
		{"number", connector.Leaf(connector.Number, ""), types.Float64},
		{"bool", connector.Leaf(connector.Bool, ""), types.Bool},
		{"any", connector.Leaf(connector.Any, ""), types.Any},
		{"string map", connector.Leaf(connector.StringMap, ""), types.Map{types.Extra: types.String}},
		{"list of strings", connector.ListOf(connector.Leaf(connector.String, ""), ""), types.Array(types.String)},
		{"list of unknown", connector.ListOf(nil, ""), types.Array(types.Any)},
		{"closed object", connector.Obj(
			connector.P("id", connector.Leaf(connector.String, "")),
			connector.P("n", connector.Leaf(connector.Int, "")),
		), types.Map{"id": types.String, "n": types.Int}},
		{"open object", connector.OpenObj(connector.Leaf(connector.String, ""),
			connector.P("n", connector.Leaf(connector.Int, "")),
		), types.Map{"n": types.Int, types.Extra: types.String}},
		{"object without props is open", connector.Obj(), types.Map{types.Extra: types.Any}},
		{"nested", connector.Obj(
			connector.P("items", connector.ListOf(connector.Obj(connector.P("sku", connector.Leaf(connector.String, ""))), "")),
		), types.Map{"items": types.Array(types.Map{"sku": types.String})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.shape.ExprType())
		})
	}
}

func TestShapeZero(t *testing.T) {
	tests := []struct {
		name  string
		shape *connector.Shape
		want  any
	}{
		{"nil", nil, nil},
		{"string", connector.Leaf(connector.String, ""), ""},
		{"duration", connector.Leaf(connector.Duration, ""), ""},
		{"int", connector.Leaf(connector.Int, ""), 0},
		{"number", connector.Leaf(connector.Number, ""), 0.0},
		{"bool", connector.Leaf(connector.Bool, ""), false},
		{"any", connector.Leaf(connector.Any, ""), nil},
		{"string map", connector.Leaf(connector.StringMap, ""), map[string]any{}},
		{"list", connector.ListOf(connector.Leaf(connector.String, ""), ""), []any{}},
		{"object", connector.Obj(
			connector.P("id", connector.Leaf(connector.String, "")),
			connector.P("user", connector.Obj(connector.P("age", connector.Leaf(connector.Int, "")))),
		), map[string]any{"id": "", "user": map[string]any{"age": 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.shape.Zero())
		})
	}
}

func TestShapeFill(t *testing.T) {
	user := connector.Obj(
		connector.P("name", connector.Leaf(connector.String, "")),
		connector.P("age", connector.Leaf(connector.Int, "")),
	)
	shape := connector.Obj(
		connector.P("id", connector.Leaf(connector.String, "")),
		connector.P("user", user),
		connector.P("items", connector.ListOf(user, "")),
		connector.P("tags", connector.ListOf(connector.Leaf(connector.String, ""), "")),
	)
	tests := []struct {
		name  string
		shape *connector.Shape
		in    func() any // built fresh so that mutation is detectable
		want  any
	}{
		{name: "nil shape keeps the value", shape: nil, in: func() any { return map[string]any{"a": 1} }, want: map[string]any{"a": 1}},
		{name: "nil value is the zero", shape: shape, in: func() any { return nil },
			want: map[string]any{"id": "", "user": map[string]any{"name": "", "age": 0}, "items": []any{}, "tags": []any{}}},
		{name: "missing keys filled, extra keys kept", shape: shape,
			in:   func() any { return map[string]any{"id": "x", "extra": true, "user": map[string]any{"name": "ann"}} },
			want: map[string]any{"id": "x", "extra": true, "user": map[string]any{"name": "ann", "age": 0}, "items": []any{}, "tags": []any{}}},
		{name: "null keys filled", shape: shape,
			in:   func() any { return map[string]any{"id": nil, "user": nil, "items": nil, "tags": nil} },
			want: map[string]any{"id": "", "user": map[string]any{"name": "", "age": 0}, "items": []any{}, "tags": []any{}}},
		{name: "list elements filled", shape: shape,
			in: func() any {
				return map[string]any{"id": "x", "user": map[string]any{"name": "a", "age": 1}, "tags": []any{"t"},
					"items": []any{map[string]any{"name": "b"}, nil}}
			},
			want: map[string]any{"id": "x", "user": map[string]any{"name": "a", "age": 1}, "tags": []any{"t"},
				"items": []any{map[string]any{"name": "b", "age": 0}, map[string]any{"name": "", "age": 0}}}},
		{name: "nested ints converted without touching the input", shape: shape,
			in: func() any {
				return map[string]any{"user": map[string]any{"name": "a", "age": int64(7)}, "items": []any{map[string]any{"age": 8.0}}}
			},
			want: map[string]any{"id": "", "user": map[string]any{"name": "a", "age": 7}, "tags": []any{},
				"items": []any{map[string]any{"name": "", "age": 8}}}},
		{name: "a value of another type is kept", shape: shape, in: func() any { return "not an object" }, want: "not an object"},
		{name: "a key of another type is kept", shape: shape,
			in:   func() any { return map[string]any{"id": true, "user": "u", "items": "i", "tags": []any{}} },
			want: map[string]any{"id": true, "user": "u", "items": "i", "tags": []any{}}},
		{name: "a number for a string becomes its text", shape: shape,
			in: func() any {
				return map[string]any{"id": 85123456789.0, "items": []any{}, "tags": []any{json.Number("12"), int64(7)}}
			},
			want: map[string]any{"id": "85123456789", "user": map[string]any{"name": "", "age": 0}, "items": []any{}, "tags": []any{"12", "7"}}},
		{name: "a fractional number for a string", shape: connector.Leaf(connector.String, ""), in: func() any { return 2.5 }, want: "2.5"},
		{name: "int64 becomes int", shape: connector.Leaf(connector.Int, ""), in: func() any { return int64(4) }, want: 4},
		{name: "whole float becomes int", shape: connector.Leaf(connector.Int, ""), in: func() any { return 4.0 }, want: 4},
		{name: "fractional float stays", shape: connector.Leaf(connector.Int, ""), in: func() any { return 4.5 }, want: 4.5},
		{name: "int becomes float for a number", shape: connector.Leaf(connector.Number, ""), in: func() any { return 3 }, want: 3.0},
		{name: "int64 becomes float for a number", shape: connector.Leaf(connector.Number, ""), in: func() any { return int64(3) }, want: 3.0},
		{name: "string for a number is kept", shape: connector.Leaf(connector.Number, ""), in: func() any { return "3" }, want: "3"},
		{name: "list of ints converted", shape: connector.ListOf(connector.Leaf(connector.Int, ""), ""),
			in: func() any { return []any{int64(1), 2.0} }, want: []any{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in()
			got := tc.shape.Fill(in)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in(), in, "Fill must not modify its input")
		})
	}
}
