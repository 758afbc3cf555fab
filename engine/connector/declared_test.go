package connector_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/expr-lang/expr/types"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

func decodeJSON(t *testing.T, src string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(src), &v))
	return v
}

func TestSchemaShape(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   types.Type
	}{
		{"true is anything", `true`, types.Any},
		{"empty is anything", `{}`, types.Any},
		{"scalars", `{"type": "object", "properties": {"s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"}, "b": {"type": "boolean"}}}`,
			types.Map{"s": types.String, "i": types.Int, "n": types.Float64, "b": types.Bool}},
		{"properties close an object", `{"properties": {"a": {"type": "string"}}}`, types.Map{"a": types.String}},
		{"additionalProperties true opens it", `{"properties": {"a": {}}, "additionalProperties": true}`,
			types.Map{"a": types.Any, types.Extra: types.Any}},
		{"additionalProperties a schema types the others", `{"type": "object", "additionalProperties": {"type": "integer"}}`,
			types.Map{types.Extra: types.Int}},
		{"patternProperties opens it", `{"properties": {"a": {}}, "patternProperties": {"^x-": {}}}`,
			types.Map{"a": types.Any, types.Extra: types.Any}},
		{"an object without properties is open", `{"type": "object"}`, types.Map{types.Extra: types.Any}},
		{"nullable", `{"type": ["string", "null"]}`, types.String},
		{"two types are anything", `{"type": ["string", "integer"]}`, types.Any},
		{"array of objects", `{"type": "array", "items": {"properties": {"sku": {"type": "string"}}}}`,
			types.Array(types.Map{"sku": types.String})},
		{"tuple items are anything", `{"type": "array", "items": [{"type": "string"}]}`, types.Array(types.Any)},
		{"enum of strings", `{"enum": ["a", "b"]}`, types.String},
		{"enum of mixed values", `{"enum": ["a", 1]}`, types.Any},
		{"const", `{"const": 3}`, types.Float64},
		{"local ref", `{"properties": {"a": {"$ref": "#/$defs/money"}}, "$defs": {"money": {"properties": {"amount": {"type": "integer"}}}}}`,
			types.Map{"a": types.Map{"amount": types.Int}}},
		{"allOf merges objects", `{"allOf": [{"properties": {"a": {"type": "string"}}}, {"properties": {"b": {"type": "integer"}}}]}`,
			types.Map{"a": types.String, "b": types.Int}},
		{"anyOf with null", `{"anyOf": [{"type": "integer"}, {"type": "null"}]}`, types.Int},
		{"oneOf that disagree", `{"oneOf": [{"type": "integer"}, {"type": "string"}]}`, types.Any},
		{"recursive schema", `{"properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}}}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := connector.SchemaShape(decodeJSON(t, tc.schema))
			require.NoError(t, err)
			got := s.ExprType()
			if tc.want == nil { // only that it is typed at the top
				m, ok := got.(types.Map)
				require.True(t, ok)
				require.Equal(t, types.String, m["name"])
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSchemaShapeErrors(t *testing.T) {
	deep := strings.Repeat(`{"properties": {"a": `, 70) + `{}` + strings.Repeat(`}}`, 70)
	tests := []struct {
		name, schema, want string
	}{
		{"not an object", `"string"`, "a schema must be an object or a boolean, got a string"},
		{"bad type", `{"properties": {"a": {"type": "strng"}}}`, `/properties/a: type "strng" is not one of string, integer, number, boolean, object, array, null`},
		{"type not a string", `{"type": 3}`, "type must be a string or a list of strings, got a number"},
		{"properties not an object", `{"properties": []}`, "properties must be an object, got a list"},
		{"remote ref", `{"$ref": "https://example.test/s.json"}`, "only references inside the schema"},
		{"missing ref", `{"$ref": "#/$defs/nope"}`, `$ref "#/$defs/nope": no "$defs" in the schema`},
		{"ref not a string", `{"$ref": 1}`, "$ref must be a string, got a number"},
		{"empty anyOf", `{"anyOf": []}`, "anyOf must be a non-empty list of schemas"},
		{"too deep", deep, "nested more than 64 levels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connector.SchemaShape(decodeJSON(t, tc.schema))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSchemaShapeExplodingRefs(t *testing.T) {
	// each level uses the next twice: 2^30 parts if expanded
	defs := map[string]any{}
	for i := 0; i < 30; i++ {
		next := map[string]any{"$ref": "#/$defs/d" + string(rune('a'+i+1))}
		defs["d"+string(rune('a'+i))] = map[string]any{"properties": map[string]any{"x": next, "y": next}}
	}
	defs["d"+string(rune('a'+30))] = map[string]any{"type": "string"}
	_, err := connector.SchemaShape(map[string]any{"$ref": "#/$defs/da", "$defs": defs})
	require.ErrorContains(t, err, "the schema is too large")
}

func TestSampleShape(t *testing.T) {
	tests := []struct {
		name, sample string
		want         types.Type
	}{
		{"scalars", `{"s": "x", "n": 1, "f": 1.5, "b": true, "z": null}`,
			types.Map{"s": types.String, "n": types.Float64, "f": types.Float64, "b": types.Bool, "z": types.Any}},
		{"nested objects are closed", `{"order": {"id": "A-1", "total": 10}}`,
			types.Map{"order": types.Map{"id": types.String, "total": types.Float64}}},
		{"an empty object is open", `{"meta": {}}`, types.Map{"meta": types.Map{types.Extra: types.Any}}},
		{"list elements merge", `{"lines": [{"sku": "a"}, {"sku": "b", "qty": 2}, {"sku": null}]}`,
			types.Map{"lines": types.Array(types.Map{"qty": types.Float64, "sku": types.String})}},
		{"a list of mixed values", `[1, "a"]`, types.Array(types.Any)},
		{"an empty list", `[]`, types.Array(types.Any)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, connector.SampleShape(decodeJSON(t, tc.sample)).ExprType())
		})
	}
}

// TestSampleShapeBounded: a sample's shape holds at most the limit of
// parts, however large the sample (the elements beyond it are untyped).
func TestSampleShapeBounded(t *testing.T) {
	l := make([]any, 30000)
	for i := range l {
		l[i] = map[string]any{fmt.Sprintf("k%d", i): 1.0}
	}
	s := connector.SampleShape(l)
	require.Equal(t, connector.List, s.Type)
	require.Equal(t, connector.Object, s.Elem.Type)
	require.Less(t, len(s.Elem.Props), 20000)
	require.Greater(t, len(s.Elem.Props), 9000)
}

func TestShapeWithKey(t *testing.T) {
	base := connector.Obj(
		connector.P("body", connector.Leaf(connector.Any, "")),
		connector.P("method", connector.Leaf(connector.String, "")),
	)
	body := connector.Obj(connector.P("id", connector.Leaf(connector.String, "")))
	got := base.WithKey("body", body)
	require.Equal(t, types.Map{"body": types.Map{"id": types.String}, "method": types.String}, got.ExprType())
	require.Equal(t, types.Map{"body": types.Any, "method": types.String}, base.ExprType(), "the original is kept")
	added := base.WithKey("extra", body)
	require.Len(t, added.Props, 3)
}

// FuzzDeclaredShape: no JSON makes SchemaShape or SampleShape panic, and
// what they give converts to an expr type.
func FuzzDeclaredShape(f *testing.F) {
	f.Add(`{"properties": {"a": {"$ref": "#/$defs/t"}}, "$defs": {"t": {"type": ["object", "null"], "properties": {"b": {"items": {"$ref": "#"}}}}}}`)
	f.Add(`{"allOf": [{"properties": {"a": {}}}, {"additionalProperties": {"type": "integer"}}], "anyOf": [1]}`)
	f.Add(`{"$ref": "#/$defs/~1x/0", "$defs": {"/x": [{"enum": [1, "a"]}]}}`)
	f.Add(`[{"a": [1, {"b": null}]}, {"a": []}, {}]`)
	f.Fuzz(func(t *testing.T, src string) {
		var v any
		if json.Unmarshal([]byte(src), &v) != nil {
			return
		}
		if s, err := connector.SchemaShape(v); err == nil {
			_ = s.ExprType()
			_ = s.Fill(v)
		} else if s != nil {
			t.Fatalf("a shape with an error: %v", err)
		}
		s := connector.SampleShape(v)
		_ = s.ExprType()
		_ = s.Fill(v)
	})
}
