package connectortest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// TestConforms: an output is held to its declared shape.
func TestConforms(t *testing.T) {
	shape := connector.Obj(
		connector.P("id", connector.Leaf(connector.String, "")),
		connector.P("size", connector.Leaf(connector.Int, "")),
		connector.P("files", connector.ListOf(connector.Obj(connector.P("name", connector.Leaf(connector.String, ""))), "")),
		connector.P("extra", connector.OpenObj(connector.Leaf(connector.Bool, ""))),
	)
	ok := map[string]any{"id": "a", "size": int64(3), "files": []any{map[string]any{"name": "x"}}, "extra": map[string]any{"k": true}}
	tests := []struct {
		name string
		out  map[string]any
		err  string
	}{
		{"matches", ok, ""},
		{"a declared key missing", map[string]any{"id": "a", "size": int64(1), "files": []any{}}, `the declared key "extra" is missing`},
		{"an undeclared key", with(ok, "oops", 1), `key "oops" is not declared`},
		{"a wrong scalar", with(ok, "size", "3"), "output.size: want an integer"},
		{"a wrong element", with(ok, "files", []any{map[string]any{"name": 1}}), "output.files[0].name: want a string"},
		{"an open object's values", with(ok, "extra", map[string]any{"k": "yes"}), "output.extra.k: want a boolean"},
		{"null is any shape", with(ok, "id", nil), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Conforms(shape, tc.out)
			if tc.err == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.err)
			}
		})
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// TestCanaried: every secret the chosen credentials hold becomes the
// canary, nested ones too, and the other choice is left unset.
func TestCanaried(t *testing.T) {
	cs := &connector.ConnectionSpec{Type: "svc", Fields: []connector.Field{
		connector.TokenField("a token"),
		connector.OAuthField(nil, "https://a.test/auth", "https://a.test/token"),
		{Name: "signing_secret", Type: connector.String, Secret: true},
		{Name: "site", Type: connector.String},
	}, OneOf: connector.TokenOrOAuth}
	got := Canaried(cs, connector.Values{"token": "x", "site": "s"}, "C")
	require.Equal(t, connector.Values{"token": "C", "signing_secret": "C", "site": "s"}, got)
	got = Canaried(cs, connector.Values{"oauth": map[string]any{"client_id": "id", "client_secret": "x"}}, "C")
	require.Equal(t, "C", got.Map("oauth")["client_secret"])
	require.Equal(t, "id", got.Map("oauth")["client_id"])
	require.False(t, got.Has("token"), "the other choice stays unset")
}

// TestWith: a kit's `with` is checked as a recipe's is.
func TestWith(t *testing.T) {
	s := &connector.Spec{ID: "svc.do", Kind: connector.KindAction, Fields: []connector.Field{
		{Name: "name", Type: connector.String, Required: true},
		{Name: "mode", Type: connector.String, Default: "add", Enum: []string{"add", "overwrite"}},
	}}
	got, err := With(s, map[string]any{"name": "n"})
	require.NoError(t, err)
	require.Equal(t, connector.Values{"name": "n", "mode": "add"}, got)
	_, err = With(s, map[string]any{})
	require.ErrorContains(t, err, "name is required")
	_, err = With(s, map[string]any{"name": "n", "nope": 1})
	require.ErrorContains(t, err, `no field "nope"`)
	_, err = With(s, map[string]any{"name": "n", "mode": "bad"})
	require.ErrorContains(t, err, "mode")
}
