package pipeline_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/internal/benchrecipes"
	"github.com/sous-run/sous/recipes"
)

// writeServed writes n recipes of each of two kinds, as sous serve would
// find them in its folder: those cmd/sous-bench loads besides the
// benchmarked one (a webhook, a filter and one http.request step with a
// template) and those of loadRecipes, with an id expression and vars.
func writeServed(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	for i := 0; i < n; i++ {
		bench := benchrecipes.Other(i, "http://127.0.0.1:1/sink")
		order := benchrecipes.Order(fmt.Sprintf("order-%d", i), fmt.Sprintf("/orders/%d", i), i, "http://127.0.0.1:1/sink")
		require.NoError(tb, os.WriteFile(filepath.Join(dir, fmt.Sprintf("other-%05d.yaml", i)), []byte(bench), 0o644))
		require.NoError(tb, os.WriteFile(filepath.Join(dir, fmt.Sprintf("order-%05d.yaml", i)), []byte(order), 0o644))
	}
	return dir
}

// retainedPerRecipe loads the recipes of dir and indexes them as sous
// serve does, and returns the heap they keep alive, per recipe.
func retainedPerRecipe(tb testing.TB, dir string) float64 {
	tb.Helper()
	before := liveHeap()
	set, diags := (&recipes.Loader{}).LoadPaths([]string{dir})
	require.False(tb, diags.HasErrors(), "%v", diags)
	ix, errs := pipeline.BuildIndex(set.Recipes, nil)
	require.Empty(tb, errs)
	n := len(set.Recipes)
	set = nil
	after := liveHeap()
	runtime.KeepAlive(ix)
	return float64(after-before) / float64(n)
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRetainedPerRecipe reports the heap a loaded recipe keeps alive
// while serving (B/recipe): it is the server's memory, and what garbage
// collection marks at every cycle.
func BenchmarkRetainedPerRecipe(b *testing.B) {
	dir := writeServed(b, 1000)
	var per float64
	for b.Loop() {
		per = retainedPerRecipe(b, dir)
	}
	b.ReportMetric(per, "B/recipe")
}

// TestRetainedPerRecipe bounds the heap a loaded recipe keeps alive: about
// 2.3 KB for these (1.8 KB for those of sous-bench), against 9 KB when
// expr's programs kept their syntax trees and type information.
func TestRetainedPerRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a thousand recipes")
	}
	per := retainedPerRecipe(t, writeServed(t, 500))
	t.Logf("%.0f B/recipe", per)
	require.Less(t, per, 3000.0, "heap kept alive per loaded recipe, in bytes")
}
