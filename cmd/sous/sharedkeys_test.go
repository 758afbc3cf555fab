package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidateSharedPath: recipes on one webhook path must agree on the
// options its receiver uses, as `sous serve` requires; validate says so
// at the later recipe's trigger, comparing the options as written (two
// secrets by different names differ before either is known).
func TestValidateSharedPath(t *testing.T) {
	recipe := func(name, with string) string {
		return "version: 1\nname: " + name + "\ntrigger:\n  type: webhook.received\n  with: {" + with + "}\n" +
			"steps:\n  - id: s\n    action: http.request\n    with: {url: \"https://example.com\"}\n"
	}
	tests := []struct {
		name    string
		a, b    string
		wantErr string
	}{
		{"other paths", `path: /a, secret: "{{ secrets.A }}"`, `path: /b, secret: "{{ secrets.B }}"`, ""},
		{"one path, one secret", `path: /a, secret: "{{ secrets.A }}"`, `path: /a, secret: "{{ secrets.A }}"`, ""},
		{"one path, the default header written out", `path: /a`, `path: /a, signature_header: X-Signature-256`, ""},
		{"one path, two secrets", `path: /a, secret: "{{ secrets.A }}"`, `path: /a, secret: "{{ secrets.B }}"`,
			`b.yaml:4:3: error: path "/a" is shared with recipe a, but their secrets differ`},
		{"one path, signed and not", `path: /a, secret: "{{ secrets.A }}"`, `path: /a`,
			`b.yaml:4:3: error: path "/a" is shared with recipe a, but their secrets differ`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "a.yaml", recipe("a", tc.a))
			writeFile(t, dir, "b.yaml", recipe("b", tc.b))
			r := sous(t, "", "validate", dir)
			if tc.wantErr == "" {
				require.Equal(t, 0, r.code, "%s", r)
				return
			}
			require.Equal(t, 1, r.code, "%s", r)
			require.Contains(t, r.stdout, filepath.Join(dir, tc.wantErr), "%s", r)
			require.Equal(t, 1, strings.Count(r.stdout, "error:"), "%s", r)
		})
	}
}
