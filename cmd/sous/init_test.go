package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/actions/http"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner/recipetest"
	"github.com/sous-run/sous/recipes"
)

// TestInit writes a starter for every trigger and checks that it passes
// validate and test as written, and that init never overwrites a file.
func TestInit(t *testing.T) {
	for _, id := range connector.Default.IDs(connector.KindTrigger) {
		t.Run(id, func(t *testing.T) {
			dir := t.TempDir()
			res := sous(t, "", "init", "my-recipe", "--trigger", id, "--dir", dir)
			require.Equal(t, 0, res.code, res.String())
			recipe, test := filepath.Join(dir, "my-recipe.yaml"), filepath.Join(dir, "my-recipe.test.yaml")
			require.Contains(t, res.stdout, "wrote "+recipe+" and "+test)

			res = sous(t, "", "validate", "--strict", dir)
			require.Equal(t, 0, res.code, res.String())
			require.Contains(t, res.stderr, "1 recipes, 1 tests, 0 errors, 0 warnings")
			res = sous(t, "", "test", dir)
			require.Equal(t, 0, res.code, res.String())
			require.Contains(t, res.stdout, "PASS")
			require.NotContains(t, res.stdout, "no test cases")

			before, err := os.ReadFile(recipe)
			require.NoError(t, err)
			res = sous(t, "", "init", "my-recipe", "--trigger", id, "--dir", dir)
			require.Equal(t, 1, res.code, res.String())
			require.Contains(t, res.stderr, recipe+" exists already")
			after, err := os.ReadFile(recipe)
			require.NoError(t, err)
			require.Equal(t, before, after)
		})
	}
}

func TestInitInHelp(t *testing.T) {
	r := sous(t, "", "--help")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "  init ")
	require.Contains(t, r.stdout, "sous init NAME")
}

func TestInitRefuses(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "orders.test.yaml", "recipe: orders\ncases: []\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"an existing test file", []string{"init", "orders", "--dir", dir}, 1,
			filepath.Join(dir, "orders.test.yaml") + " exists already; init never overwrites a file"},
		{"a bad name", []string{"init", "Orders", "--dir", dir}, 2, `recipe name "Orders": use lower case letters`},
		{"a trigger named by its service", []string{"init", "x", "--trigger", "webhook", "--dir", dir}, 2,
			`--trigger: unknown trigger "webhook" (did you mean "webhook.received"?)`},
		{"an action as trigger", []string{"init", "x", "--trigger", "http.request", "--dir", dir}, 2,
			`--trigger: unknown trigger "http.request"`},
		{"no name", []string{"init", "--dir", dir}, 2, "accepts 1 arg(s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := sous(t, "", tc.args...)
			require.Equal(t, tc.code, res.code, res.String())
			require.Contains(t, res.stderr, tc.stderr)
		})
	}
	// nothing was written beside the file that was there
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

// TestInitGenericStarter: a trigger without a starter of its own gets one
// from its spec (its required options' examples) that loads and passes
// its test.
func TestInitGenericStarter(t *testing.T) {
	reg := connector.NewRegistry()
	trig := &connector.Spec{ID: "shop.order_paid", Kind: connector.KindTrigger, Summary: "An order was paid",
		Fields: []connector.Field{
			{Name: "store", Type: connector.String, Required: true, Description: "The store", Example: "eu-1"},
			{Name: "min_total", Type: connector.Number, Description: "Optional", Example: 10},
		},
		Shape: connector.Obj(connector.P("total", connector.Leaf(connector.Number, "")))}
	require.NoError(t, reg.Add(trig))
	require.NoError(t, reg.Add(http.Request))
	recipe, test := starter("paid", trig)
	dir := t.TempDir()
	writeFile(t, dir, "paid.yaml", recipe)
	writeFile(t, dir, "paid.test.yaml", test)
	set, diags := (&recipes.Loader{Registry: reg}).LoadPaths([]string{dir})
	require.Empty(t, diags, diags.Error())
	require.Len(t, set.Tests, 1)
	passed, failed := recipetest.Report(io.Discard, recipetest.Run(context.Background(), set.Tests[0], recipetest.Options{}), false)
	require.Equal(t, 1, passed)
	require.Zero(t, failed)
}
