package zapier

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckInputs(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		bad  string
	}{
		{"none", []any{}, ""},
		{"typed", []any{map[string]any{"key": "email", "type": "string", "required": true, "label": "Email", "help": "Who"},
			map[string]any{"key": "n", "type": "integer"}, map[string]any{"key": "at", "type": "datetime"}}, ""},
		{"type defaults to string", []any{map[string]any{"key": "note"}}, ""},
		{"not a list", "email", "want a list"},
		{"not an object", []any{"email"}, "want an object"},
		{"no key", []any{map[string]any{"type": "string"}}, "key must be"},
		{"bad key", []any{map[string]any{"key": "e-mail"}}, "key must be"},
		{"twice", []any{map[string]any{"key": "a"}, map[string]any{"key": "a"}}, "declared twice"},
		{"unknown type", []any{map[string]any{"key": "a", "type": "date"}}, "type must be one of"},
		{"unknown key", []any{map[string]any{"key": "a", "default": 1}}, "unknown key"},
		{"required not a bool", []any{map[string]any{"key": "a", "required": "yes"}}, "required must be"},
		{"help not text", []any{map[string]any{"key": "a", "help": 1}}, "help must be text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkInputs(tc.v)
			if tc.bad == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.bad)
		})
	}
}

func TestActionSpec(t *testing.T) {
	require.Nil(t, Action.Trigger, "started through the API only")
	f, ok := Action.Field(FieldName)
	require.True(t, ok)
	require.True(t, f.Required)
	_, err := f.CheckValue("Create Order")
	require.Error(t, err, "the name's pattern")
	_, err = f.CheckValue("create-order")
	require.NoError(t, err)
}
