package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readyz is the status and body of GET /readyz.
func (r *running) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.svc.Addr() + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, or skips
// the test when mounting is not permitted here.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v", err)
	}
	// registered before the service starts: it runs after the service stopped
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	return dir
}

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling: %v", err)
			break
		}
	}
	// the last bytes: a smaller write may still fit
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	return path
}

// TestReadyzFullDisk: /readyz says the service is not ready while its
// store cannot take webhooks because the disk is full, and ready again
// once it can.
func TestReadyzFullDisk(t *testing.T) {
	data := mountTmpfs(t, 8<<20)
	sink := newSink(t, 0)
	recipesDir := t.TempDir()
	writeRecipe(t, recipesDir, "ping.yaml", hookRecipe("ping", "/ping", sink.srv.URL, "/ping"))
	r := start(t, data, recipesDir)
	code, _ := r.readyz(t)
	require.Equal(t, http.StatusOK, code)

	filler := fill(t, data)
	rejected := 0
	for i := 0; i < 2000 && rejected == 0; i++ {
		if r.post(t, "/ping", map[string]any{"id": fmt.Sprintf("full-%d", i)}) == http.StatusServiceUnavailable {
			rejected = i + 1
		}
	}
	require.NotZero(t, rejected, "a webhook is refused once the disk is full")
	code, body := r.readyz(t)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "store_unavailable")

	require.NoError(t, os.Remove(filler))
	require.Equal(t, http.StatusAccepted, r.post(t, "/ping", map[string]any{"id": "after"}))
	code, body = r.readyz(t)
	require.Equal(t, http.StatusOK, code, body)
}

// TestReadyzCorruptPage: /readyz says the service is not ready when the
// pages intake writes to in sous.db are corrupt.
func TestReadyzCorruptPage(t *testing.T) {
	sink := newSink(t, 0)
	recipesDir, data := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "ping.yaml", hookRecipe("ping", "/ping", sink.srv.URL, "/ping"))
	r := start(t, data, recipesDir)
	for i := 0; i < 100; i++ {
		require.Equal(t, http.StatusAccepted, r.post(t, "/ping", map[string]any{"id": fmt.Sprintf("c-%d", i)}))
	}
	require.Eventually(t, func() bool { return len(runsOf(t, r.svc.Store, "ping")) == 100 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	// the root pages of the dedup table's b-trees, which every intake
	// writes to; the service starts without reading them
	var pages []int64
	func() {
		st := openStore(t, data)
		rows, err := st.DB.Query(`SELECT rootpage FROM sqlite_master WHERE tbl_name = 'dedup' AND rootpage > 0`)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var p int64
			require.NoError(t, rows.Scan(&p))
			pages = append(pages, p)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, st.DB.Close())
		require.NoError(t, st.Write.Close())
	}()
	require.NotEmpty(t, pages)
	corruptPages(t, filepath.Join(data, "sous.db"), pages)
	svc, err := Open(context.Background(), Options{RecipesDir: recipesDir, Listen: "127.0.0.1:0", DataDir: data, Settings: testSettings()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	again := &running{svc: svc}
	code, body := again.readyz(t)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "store_unavailable")
	require.Equal(t, http.StatusServiceUnavailable, again.post(t, "/ping", map[string]any{"id": "after"}), "nor can it take a webhook")
	code, body = again.readyz(t)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
}

// corruptPages writes garbage over pages (numbered from 1) of an SQLite
// file, as a damaged disk might.
func corruptPages(t *testing.T, path string, pages []int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	const pageSize = 4096
	garbage := make([]byte, pageSize)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	for _, p := range pages {
		_, err := f.WriteAt(garbage, (p-1)*pageSize)
		require.NoError(t, err)
	}
}
