package service

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/require"
)

// TestReloadWatchesTheFolder checks that recipe changes are seen as they
// happen, by watching the folder, not by polling it: the poll interval
// here is an hour. A folder created after the start is watched too, and
// one Files skips (fixtures) is not.
func TestReloadWatchesTheFolder(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	settings := testSettings()
	settings.Pipeline.ReloadInterval = time.Hour
	r := startWith(t, dataDir, recipesDir, settings)
	served := func(path string) bool {
		resp, err := http.Get("http://" + r.svc.Addr() + "/hooks" + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode == http.StatusMethodNotAllowed
	}
	tests := []struct {
		name  string
		dir   string // below the recipes folder, created now
		path  string
		serve bool
	}{
		{"a file in the folder", "", "/top", true},
		{"a file in a new folder", "team/orders", "/nested", true},
		{"a file in fixtures", "fixtures", "/fixture", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(recipesDir, tc.dir)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			if tc.dir != "" {
				time.Sleep(2 * reloadSettle) // the new folder is watched once its creation is seen
			}
			writeRecipe(t, dir, "r"+filepath.Base(tc.path)+".yaml", hookRecipe("r"+filepath.Base(tc.path), tc.path, sk.srv.URL, tc.path))
			if tc.serve {
				require.Eventually(t, func() bool { return served(tc.path) }, 5*time.Second, 20*time.Millisecond)
				return
			}
			require.Never(t, func() bool { return served(tc.path) }, time.Second, 50*time.Millisecond)
		})
	}
	// removing a file unserves its path, as seen by the watcher too
	require.NoError(t, os.Remove(filepath.Join(recipesDir, "rtop.yaml")))
	require.Eventually(t, func() bool { return !served("/top") }, 5*time.Second, 20*time.Millisecond)
}

// TestReloadRescansAfterAWatchError: when the watcher reports an error
// (events it dropped, say), the folder is looked at again at once rather
// than at the next poll (an hour here). The watcher's channels are
// replaced so that the change itself goes unreported.
func TestReloadRescansAfterAWatchError(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	settings := testSettings()
	settings.Pipeline.ReloadInterval = time.Hour
	svc, err := Open(context.Background(), Options{RecipesDir: recipesDir, Listen: "127.0.0.1:0", DataDir: dataDir, Settings: settings})
	require.NoError(t, err)
	errs := make(chan error, 1)
	svc.reload.watchHook = func() (<-chan fsnotify.Event, <-chan error) { return make(chan fsnotify.Event), errs }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	served := func() bool {
		resp, err := http.Get("http://" + svc.Addr() + "/hooks/late")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusMethodNotAllowed
	}
	writeRecipe(t, recipesDir, "late.yaml", hookRecipe("late", "/late", sk.srv.URL, "/late"))
	require.Never(t, served, 500*time.Millisecond, 50*time.Millisecond, "no event was reported: nothing reloads before the error")
	errs <- fsnotify.ErrEventOverflow
	require.Eventually(t, served, 5*time.Second, 20*time.Millisecond)
}
