package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readmeBlocks returns the fenced code blocks of README.md, by the text
// after their opening fence ("yaml", "sh", "").
func readmeBlocks(t *testing.T) (langs, blocks []string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	var cur *strings.Builder
	for line := range strings.SplitAfterSeq(string(src), "\n") {
		fence, isFence := strings.CutPrefix(line, "```")
		switch {
		case isFence && cur == nil:
			langs = append(langs, strings.TrimSpace(fence))
			cur = &strings.Builder{}
		case isFence:
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line)
		}
	}
	require.Nil(t, cur, "README.md has an unclosed code block")
	return langs, blocks
}

// TestReadmeSample: the README's recipe is examples/big-orders.yaml, and
// its two sample errors are what `sous validate` prints for the typos it
// names in a copy of that file, so that neither can drift.
func TestReadmeSample(t *testing.T) {
	langs, blocks := readmeBlocks(t)
	require.NotEmpty(t, blocks)
	example, err := os.ReadFile(filepath.Join(examplesDir, "big-orders.yaml"))
	require.NoError(t, err)
	require.Equal(t, "yaml", langs[0], "the README opens with a recipe")
	require.Equal(t, string(example), blocks[0], "the README's recipe is examples/big-orders.yaml as it is")

	var want string
	for i, b := range blocks {
		if langs[i] == "" && strings.Contains(b, ": error: ") {
			want = b
			break
		}
	}
	require.NotEmpty(t, want, "the README shows sample errors")

	typos := []struct{ old, new string }{
		// the filter's last line (the step tell_sales compares with 500000)
		{"object.amount_total >= 50000\n", "object.amount_totl >= 50000\n"},
		{"      method: POST\n", "      methd: POST\n"},
	}
	src := string(example)
	for _, ty := range typos {
		require.Equal(t, 1, strings.Count(src, ty.old), "the typo %q must have one place", ty.new)
		src = strings.Replace(src, ty.old, ty.new, 1)
	}
	dir := t.TempDir()
	writeFile(t, dir, "big-orders.yaml", src)
	schemas, err := filepath.Glob(filepath.Join(examplesDir, "schemas", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, schemas, "big-orders declares its body with a schema")
	for _, s := range schemas {
		b, err := os.ReadFile(s)
		require.NoError(t, err)
		writeFile(t, dir, filepath.Join("schemas", filepath.Base(s)), string(b))
	}
	t.Chdir(dir)
	res := sous(t, "", "validate", "big-orders.yaml")
	require.Equal(t, 1, res.code, res.String())
	require.Equal(t, want, res.stdout)
}
