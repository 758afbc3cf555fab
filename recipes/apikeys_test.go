package recipes_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/recipes"
)

// An API key that no request can present (blank, or with white space at
// an end, which HTTP drops from a header) is refused, not served.
func TestConfigAPIKeyBlank(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{name: "16 spaces", src: "api_keys: [\"                \"]\n",
			want: []string{`sous.yaml:1:12: error: api_keys[0]: an API key may not be blank`}},
		{name: "tabs and spaces", src: "api_keys: [\"\\t\\t\\t\\t        \\t\\t\\t\\t\"]\n",
			want: []string{`sous.yaml:1:12: error: api_keys[0]: an API key may not be blank`}},
		{name: "blank from the environment", src: "api_keys: [\"${KEY}\"]\n", env: map[string]string{"KEY": "                    "},
			want: []string{`sous.yaml:1:12: error: api_keys[0]: an API key may not be blank`}},
		{name: "empty", src: "api_keys: [\"\"]\n",
			want: []string{`sous.yaml:1:12: error: api_keys[0]: an API key may not be blank`}},
		{name: "a trailing space", src: "api_keys: [\"0123456789abcdef \"]\n",
			want: []string{`sous.yaml:1:12: error: api_keys[0]: an API key may not start or end with white space: HTTP drops it from a header, so the key could never match`}},
		{name: "a leading tab", src: "api_keys: [\"\\t0123456789abcdef\"]\n",
			want: []string{`sous.yaml:1:12: error: api_keys[0]: an API key may not start or end with white space: HTTP drops it from a header, so the key could never match`}},
		{name: "a space inside", src: "api_keys: [\"0123456789 abcdef\"]\n"},
		{name: "a good key", src: "api_keys: [0123456789abcdef]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := recipes.ParseConfig("sous.yaml", []byte(tc.src), func(k string) (string, bool) {
				v, ok := tc.env[k]
				return v, ok
			}, nil)
			var got []string
			for _, d := range diags {
				got = append(got, d.String())
			}
			require.Equal(t, tc.want, got)
		})
	}
}
