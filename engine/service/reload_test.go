package service

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHotReload: a new recipe file is served, a change that breaks it
// keeps its last good version, a fix replaces it, a removal unserves it.
func TestHotReload(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "a.yaml", hookRecipe("a", "/a", sk.srv.URL, "/a"))
	r := start(t, dataDir, recipesDir)
	// post sends a fresh delivery and counts what was accepted, by path
	var n int
	accepted := map[string]int{}
	post := func(path string) int {
		n++
		code := r.post(t, path, map[string]any{"id": fmt.Sprintf("d-%d", n)})
		if code == http.StatusAccepted {
			accepted[path]++
		}
		return code
	}
	// served probes a path without storing anything: a GET is answered
	// 405 where a recipe listens (on POST) and 404 elsewhere
	served := func(path string) bool {
		resp, err := http.Get("http://" + r.svc.Addr() + "/hooks" + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Contains(t, []int{http.StatusMethodNotAllowed, http.StatusNotFound}, resp.StatusCode)
		return resp.StatusCode == http.StatusMethodNotAllowed
	}

	require.Equal(t, http.StatusAccepted, post("/a"))
	require.Equal(t, http.StatusNotFound, post("/b"))

	// a new file
	writeRecipe(t, recipesDir, "b.yaml", hookRecipe("b", "/b", sk.srv.URL, "/b-v1"))
	require.Eventually(t, func() bool { return served("/b") }, 5*time.Second, 10*time.Millisecond,
		"the new recipe was not picked up")
	require.Equal(t, http.StatusAccepted, post("/b"))
	require.Eventually(t, func() bool { return sk.paths()["/b-v1"] >= 1 }, 10*time.Second, 10*time.Millisecond)

	// a change that no longer validates: the last good version stays
	broken := strings.Replace(hookRecipe("b", "/b", sk.srv.URL, "/b-broken"), "action: http.request", "action: http.nosuch", 1)
	kept := r.log.count("keeping the last good version")
	writeRecipe(t, recipesDir, "b.yaml", broken)
	require.Eventually(t, func() bool { return r.log.count("keeping the last good version") > kept }, 5*time.Second, 10*time.Millisecond,
		"the broken file was not reloaded")
	before := sk.paths()["/b-v1"]
	require.Equal(t, http.StatusAccepted, post("/b"), "the last good version still answers")
	require.Eventually(t, func() bool { return sk.paths()["/b-v1"] == before+1 }, 10*time.Second, 10*time.Millisecond,
		"the last good version still runs")
	require.Equal(t, http.StatusAccepted, post("/a"), "the other recipes are untouched")
	require.Zero(t, sk.paths()["/b-broken"])

	// fixed: the new version is used
	writeRecipe(t, recipesDir, "b.yaml", hookRecipe("b", "/b", sk.srv.URL, "/b-v2"))
	require.Eventually(t, func() bool {
		if post("/b") != http.StatusAccepted {
			return false
		}
		time.Sleep(50 * time.Millisecond)
		return sk.paths()["/b-v2"] >= 1
	}, 10*time.Second, 20*time.Millisecond, "the fixed version was not used")

	// a path change moves the recipe
	writeRecipe(t, recipesDir, "b.yaml", hookRecipe("b", "/b2", sk.srv.URL, "/b-v3"))
	require.Eventually(t, func() bool { return !served("/b") }, 5*time.Second, 10*time.Millisecond)
	require.True(t, served("/b2"))
	require.Equal(t, http.StatusNotFound, post("/b"))
	require.Equal(t, http.StatusAccepted, post("/b2"))
	// its run finishes before the file goes (a run whose recipe is gone
	// is recorded dead, by design)
	require.Eventually(t, func() bool { return sk.paths()["/b-v3"] >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(runsOf(t, r.svc.Store, "b")) == accepted["/b"]+accepted["/b2"] },
		10*time.Second, 10*time.Millisecond, "runs %d, accepted %v, sink %v", len(runsOf(t, r.svc.Store, "b")), accepted, sk.paths())

	// removed: its path is no longer served, even though it was good once
	require.NoError(t, os.Remove(filepath.Join(recipesDir, "b.yaml")))
	require.Eventually(t, func() bool { return !served("/b2") }, 5*time.Second, 10*time.Millisecond,
		"the removed recipe is still served")
	require.Equal(t, http.StatusNotFound, post("/b2"))
	require.Equal(t, http.StatusAccepted, post("/a"))

	// a file broken from the start is not served, and the others stay
	writeRecipe(t, recipesDir, "c.yaml", strings.Replace(hookRecipe("c", "/c", sk.srv.URL, "/c"), "action: http.request", "action: http.nosuch", 1))
	require.Eventually(t, func() bool { return r.log.count("c.yaml") > 0 }, 5*time.Second, 10*time.Millisecond,
		"the broken file was not read")
	require.False(t, served("/c"))
	require.Equal(t, http.StatusNotFound, post("/c"))
	require.Equal(t, http.StatusAccepted, post("/a"))
	require.Eventually(t, func() bool { return len(runsOf(t, r.svc.Store, "a")) == accepted["/a"] }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, r.stop(t))
	st := openStore(t, dataDir)
	for _, run := range runsOf(t, st, "") {
		require.Equal(t, "succeeded", run.Status, "%s %s: %s %s", run.Recipe, run.ID, run.Reason, run.Error)
	}
	require.Len(t, runsOf(t, st, "a"), accepted["/a"])
	require.Len(t, runsOf(t, st, "b"), accepted["/b"]+accepted["/b2"])
	require.Zero(t, sk.paths()["/b-broken"]+sk.paths()["/c"])
}

// TestReloadKeptVersionKeepsItsName: a broken file keeps its last good
// version, and a recipe of another file that takes the same name in the
// meantime does not run in its place.
func TestReloadKeptVersionKeepsItsName(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "a.yaml", hookRecipe("a", "/a", sk.srv.URL, "/a"))
	writeRecipe(t, recipesDir, "b.yaml", hookRecipe("b", "/b", sk.srv.URL, "/b"))
	r := start(t, dataDir, recipesDir)
	reloaded := func(before int) {
		t.Helper()
		require.Eventually(t, func() bool { return r.log.count("recipes reloaded") > before }, 5*time.Second, 10*time.Millisecond)
	}

	// b.yaml takes a's name: refused, b's last good version stays
	n := r.log.count("recipes reloaded")
	writeRecipe(t, recipesDir, "b.yaml", hookRecipe("a", "/b", sk.srv.URL, "/b-as-a"))
	reloaded(n)
	// a.yaml breaks: its last good version stays, and b.yaml, which now
	// validates on its own, would take the name "a"
	n = r.log.count("recipes reloaded")
	writeRecipe(t, recipesDir, "a.yaml", strings.Replace(hookRecipe("a", "/a", sk.srv.URL, "/a-broken"), "action: http.request", "action: http.nosuch", 1))
	reloaded(n)

	require.Equal(t, http.StatusAccepted, r.post(t, "/a", map[string]any{"id": "1"}))
	require.Equal(t, http.StatusAccepted, r.post(t, "/b", map[string]any{"id": "2"}))
	require.Eventually(t, func() bool { return len(sk.snapshot()) == 2 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	calls := map[string]string{}
	for _, c := range sk.snapshot() {
		calls[c.Body["id"].(string)] = c.Path
	}
	require.Equal(t, map[string]string{"1": "/a", "2": "/b"}, calls, "each path runs its own recipe")
	require.NoError(t, r.stop(t))
}

// TestReloadTestFileDiagnostics: a test file that no longer matches the
// recipes (its recipe renamed or removed) is reported as a test file's
// problem, not as a recipe left unloaded, and nothing served changes.
func TestReloadTestFileDiagnostics(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "a.yaml", hookRecipe("a", "/a", sk.srv.URL, "/a"))
	writeRecipe(t, recipesDir, "gone.test.yaml", "recipe: gone\ncases:\n  - name: x\n    event: {body: {}}\n")
	r := start(t, dataDir, recipesDir)
	require.Positive(t, r.log.count("recipe test file not valid"), "the test file's diagnostic is logged:\n%s", r.log.String())
	require.Contains(t, r.log.String(), "gone.test.yaml")
	require.Zero(t, r.log.count("recipe not loaded"), "a test file is not a recipe:\n%s", r.log.String())
	require.Equal(t, http.StatusAccepted, r.post(t, "/a", map[string]any{"id": "1"}))
	require.Eventually(t, func() bool { return sk.paths()["/a"] == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
}
