package service

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/logbuf"
	_ "github.com/sous-run/sous/triggers/all"
)

// sinkCall is one request the sink received.
type sinkCall struct {
	Path string
	Key  string // the Idempotency-Key header
	Body map[string]any
	// Done is set once the sink answered (after its delay).
	Done bool
}

// sink is an HTTP server that recipes' http.request steps call.
type sink struct {
	srv   *httptest.Server
	delay time.Duration
	mu    sync.Mutex
	calls []*sinkCall
}

func newSink(t *testing.T, delay time.Duration) *sink {
	t.Helper()
	s := &sink{delay: delay}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := &sinkCall{Path: r.URL.Path, Key: r.Header.Get("Idempotency-Key")}
		_ = json.Unmarshal(raw, &c.Body)
		s.mu.Lock()
		s.calls = append(s.calls, c)
		s.mu.Unlock()
		if s.delay > 0 {
			// not cut short by the client going away: the sink is a
			// remote system that finishes what it started
			time.Sleep(s.delay)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		s.mu.Lock()
		c.Done = true
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// snapshot copies the calls so far.
func (s *sink) snapshot() []sinkCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sinkCall, len(s.calls))
	for i, c := range s.calls {
		out[i] = *c
	}
	return out
}

// paths counts the calls by path.
func (s *sink) paths() map[string]int {
	out := map[string]int{}
	for _, c := range s.snapshot() {
		out[c.Path]++
	}
	return out
}

// logBuffer collects the service's log, for tests that look for a line.
type logBuffer struct{ logbuf.Buffer }

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

// testSettings are the defaults with a fast reload and a bounded shutdown.
func testSettings() Settings {
	s := DefaultSettings()
	s.Pipeline.ReloadInterval = 50 * time.Millisecond
	s.Pipeline.ShutdownTimeout = 10 * time.Second
	s.Pipeline.RunTimeout = 20 * time.Second
	return s
}

// running is a service the test started and stops.
type running struct {
	svc    *Service
	log    *logBuffer
	cancel context.CancelFunc
	done   chan error
	// stopOnce cancels Run's context and returns what Run returned.
	stopOnce func() error
}

// start opens a service on dataDir and recipesDir and runs it until stop.
func start(t *testing.T, dataDir, recipesDir string) *running {
	t.Helper()
	return startWith(t, dataDir, recipesDir, testSettings())
}

// startWith is start with the given settings.
func startWith(t *testing.T, dataDir, recipesDir string, settings Settings) *running {
	t.Helper()
	lb := &logBuffer{}
	svc, err := Open(context.Background(), Options{
		RecipesDir: recipesDir, Listen: "127.0.0.1:0", DataDir: dataDir, Settings: settings,
		Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, log: lb, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-r.done
		}
		if t.Failed() {
			t.Logf("service log:\n%s", lb.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + svc.Addr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "the service did not get ready")
	r.stopOnce = func() error {
		stopped = true
		cancel()
		select {
		case err := <-r.done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after its context ended")
			return nil
		}
	}
	return r
}

// stop ends the service gracefully and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	return r.stopOnce()
}

// post sends a JSON body to /hooks<path> and returns the status code.
func (r *running) post(t *testing.T, path string, body any) int {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post("http://"+r.svc.Addr()+"/hooks"+path, "application/json", bytes.NewReader(raw))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// runsOf lists the runs of a recipe.
func runsOf(t *testing.T, st *store.Store, recipe string) []*store.Run {
	t.Helper()
	runs, err := st.ListRuns(context.Background(), store.RunFilter{Recipe: recipe, Limit: 1000})
	require.NoError(t, err)
	return runs
}

// openStore opens a stopped service's data dir.
func openStore(t *testing.T, dataDir string) *store.Store {
	t.Helper()
	write, read, err := store.OpenSQLite(context.Background(), dataDir)
	require.NoError(t, err)
	t.Cleanup(func() { read.Close(); write.Close() })
	return &store.Store{DB: read, Write: write, Dialect: store.SQLite}
}

// writeRecipe writes a recipe file, making sure its size or time changes
// so that the reload fingerprint sees it even on a coarse clock.
func writeRecipe(t *testing.T, dir, name, src string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if old, err := os.ReadFile(p); err == nil && len(old) == len(src) {
		src += "\n# padded so that the size changes\n"
	}
	require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
}
