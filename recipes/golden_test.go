package recipes_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	_ "github.com/sous-run/sous/triggers/all"

	"github.com/sous-run/sous/recipes"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

// minGoldenCases is how many distinct mistakes the corpus must hold; a
// corpus that shrinks by accident fails the test.
const minGoldenCases = 32

// goldenCases lists the cases of testdata/errors: every *.yaml file holds
// one mistake, and every directory is a set of files (a recipe and its
// test, two recipes...) that holds one mistake together. The golden file
// of a case is its name with .golden.
func goldenCases(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("testdata/errors")
	require.NoError(t, err)
	var cases []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".yaml") {
			cases = append(cases, filepath.Join("testdata/errors", name))
		}
	}
	sort.Strings(cases)
	return cases
}

func goldenPath(c string) string {
	return strings.TrimSuffix(c, ".yaml") + ".golden"
}

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	require.GreaterOrEqual(t, len(cases), minGoldenCases, "the golden corpus lost cases")
	for _, c := range cases {
		t.Run(filepath.Base(c), func(t *testing.T) {
			set, diags := (&recipes.Loader{}).LoadPaths([]string{c})
			require.True(t, diags.HasErrors(), "a file of testdata/errors loaded without an error:\n%s", diags.Error())
			if info, err := os.Stat(c); err == nil && !info.IsDir() {
				require.Empty(t, set.Recipes, "a recipe with errors was returned")
			}
			seen := map[string]bool{}
			for _, d := range diags {
				require.False(t, seen[d.String()], "reported twice: %s", d)
				seen[d.String()] = true
				require.NotContains(t, d.Message, "internal error")
				require.Positive(t, d.Line, "diagnostic without a line: %s", d)
				require.Positive(t, d.Col, "diagnostic without a column: %s", d)
			}
			var got bytes.Buffer
			require.NoError(t, diags.Write(&got, recipes.FormatText, set.Files))
			golden := goldenPath(c)
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no golden file; run go test ./recipes -run TestGolden -update and check it by hand")
			require.Equal(t, string(want), got.String())
		})
	}
}

// TestGoldenNoStrays checks that every golden file belongs to a case, so
// that a renamed case does not leave a stale golden behind.
func TestGoldenNoStrays(t *testing.T) {
	goldens, err := filepath.Glob("testdata/errors/*.golden")
	require.NoError(t, err)
	have := map[string]bool{}
	for _, c := range goldenCases(t) {
		have[goldenPath(c)] = true
	}
	for _, g := range goldens {
		require.True(t, have[g], "%s has no case", g)
	}
	require.Len(t, goldens, len(have))
}

// TestGoldenDistinct checks that no two cases report the same messages:
// each case is a distinct mistake.
func TestGoldenDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, c := range goldenCases(t) {
		_, diags := (&recipes.Loader{}).LoadPaths([]string{c})
		var msgs []string
		for _, d := range diags {
			msgs = append(msgs, d.Message)
		}
		key := strings.Join(msgs, "\n")
		if prev, dup := seen[key]; dup {
			t.Errorf("%s and %s report the same diagnostics: %s", prev, c, key)
		}
		seen[key] = c
	}
}

func TestValid(t *testing.T) {
	env := map[string]string{
		"SHOP_API_TOKEN": "token-from-the-environment",
		"CHAT_HOOK_KEY":  "key-from-the-environment",
	}
	src, err := os.ReadFile("testdata/valid/sous.yaml")
	require.NoError(t, err)
	cfg, diags := recipes.ParseConfig("testdata/valid/sous.yaml", src, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}, nil)
	require.Empty(t, diags, "config:\n%s", diags.Error())
	require.NotNil(t, cfg)
	files, err := recipes.Files([]string{"testdata/valid"})
	require.NoError(t, err)
	var recipeFiles, testFiles int
	for _, f := range files {
		if recipes.IsTestFile(f) {
			testFiles++
		} else {
			recipeFiles++
		}
	}
	require.GreaterOrEqual(t, recipeFiles, 3)

	set, diags := (&recipes.Loader{Config: cfg}).LoadPaths([]string{"testdata/valid"})
	require.Empty(t, diags, "diagnostics:\n%s", diags.Error())
	require.Len(t, set.Recipes, recipeFiles)
	require.Len(t, set.Tests, testFiles)
	for _, tf := range set.Tests {
		require.NotNil(t, tf.Recipe, "%s is not bound to its recipe", tf.File)
	}

	// each valid file also loads on its own, through Parse
	for _, f := range files {
		if recipes.IsTestFile(f) {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		r, diags := (&recipes.Loader{Config: cfg}).Parse(f, src)
		require.Empty(t, diags, "%s:\n%s", f, diags.Error())
		require.NotNil(t, r)
	}
}
