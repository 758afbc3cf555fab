package hosttest_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/hosttest"
	"github.com/sous-run/sous/internal/httpx"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

// childEnv makes the test binary a `sous serve` with the test connector:
// the kill -9 test runs it as a process of its own.
const childEnv = "SOUS_HOSTTEST_CHILD_CONFIG"

func TestMain(m *testing.M) {
	if err := hosttest.Register(connector.Default); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(serve(path))
	}
	os.Exit(m.Run())
}

// serve runs the service of a config file until SIGTERM, as `sous serve`
// does, and writes the address it listens on to DATA_DIR/addr.
func serve(path string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	svc, dir, err := open(ctx, path, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(dir, "addr.tmp"), []byte(svc.Addr()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Rename(filepath.Join(dir, "addr.tmp"), filepath.Join(dir, "addr")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// open loads a config file and opens its service; it returns the data
// folder too.
func open(ctx context.Context, path string, log *slog.Logger) (*service.Service, string, error) {
	cfg, diags := recipes.LoadConfig(path, connector.Default)
	if diags.HasErrors() {
		return nil, "", fmt.Errorf("config: %v", diags)
	}
	settings, err := service.ParseSettings(cfg)
	if err != nil {
		return nil, "", err
	}
	svc, err := service.Open(ctx, service.Options{Config: cfg, RecipesDir: cfg.Recipes, Listen: cfg.Listen, DataDir: cfg.DataDir,
		Settings: settings, Logger: log, Registry: connector.Default})
	return svc, cfg.DataDir, err
}

// fixture is a config, a recipes folder and a data folder.
type fixture struct {
	dir, config, data string
}

const apiKey = "hosttest-api-key-0123456789abcdef"

func newFixture(t *testing.T, baseURL string, recipeFiles map[string]string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, config: filepath.Join(dir, "sous.yaml"), data: filepath.Join(dir, "data")}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "recipes"), 0o755))
	for name, src := range recipeFiles {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "recipes", name), []byte(src), 0o600))
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
recipes: %s
api_keys: [%q]
connections:
  main:
    type: hosttest
    base_url: %s
    secret: main-secret-0123456789
    token: hosttest-token-0123456789
  other:
    type: hosttest
    base_url: %s
    secret: other-secret-0123456789
  web:
    type: http
    base_url: %s
`, f.data, filepath.Join(dir, "recipes"), apiKey, baseURL, baseURL, baseURL)
	require.NoError(t, os.WriteFile(f.config, []byte(cfg), 0o600))
	return f
}

// sink counts the requests recipes send it, by item id.
type sink struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID any `json:"id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	s.seen[fmt.Sprint(body.ID)]++
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *sink) counts() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.seen {
		distinct++
		total += n
	}
	return distinct, total
}

// TestReceiver: a service webhook at /hooks/hosttest/{connection} is
// verified with that connection's secret, answers the challenge itself,
// and one ping starts both recipes on the connection and none of the
// recipe on another connection.
func TestReceiver(t *testing.T) {
	sk := &sink{seen: map[string]int{}}
	api := httptest.NewServer(sk)
	defer api.Close()
	recipe := func(name, conn, with string) string {
		return fmt.Sprintf(`version: 1
name: %s
trigger: {type: hosttest.ping, connection: %s, with: {%s}}
filter: event.text != "skip"
steps:
  - id: tell
    action: http.request
    connection: web
    with: {method: POST, url: sink, json: {id: "{{ event.id }}-%s"}}
`, name, conn, with, name)
	}
	f := newFixture(t, api.URL, map[string]string{
		"a.yaml": recipe("a", "main", ""), "b.yaml": recipe("b", "main", "reply: pong"), "c.yaml": recipe("c", "other", "reply: other"),
		// its options match no ping below: it never runs, though the others
		// on its connection do (Trigger.Match)
		"d.yaml": recipe("d", "main", "only: special"),
	})
	ctx, cancel := context.WithCancel(context.Background())
	svc, _, err := open(ctx, f.config, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	base := "http://" + svc.Addr()
	post := func(path, secret, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if secret != "" {
			req.Header.Set(hosttest.SignatureHeader, httpx.SignSHA256(secret, []byte(body)))
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("the challenge is answered by the receiver", func(t *testing.T) {
		code, body := post("/hooks/hosttest/main", "main-secret-0123456789", `{"type":"challenge","challenge":"c-42"}`)
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"challenge":"c-42"}`, body)
	})
	t.Run("a bad signature is refused and nothing is stored", func(t *testing.T) {
		for _, secret := range []string{"", "other-secret-0123456789", "wrong"} {
			code, body := post("/hooks/hosttest/main", secret, `{"type":"ping","id":"p0","text":"hi"}`)
			require.Equal(t, http.StatusUnauthorized, code, body)
			require.Contains(t, body, "bad_signature")
		}
	})
	t.Run("unknown connections and services are 404", func(t *testing.T) {
		code, body := post("/hooks/hosttest/nope", "main-secret-0123456789", `{"type":"ping","id":"p0"}`)
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, body, "unknown_connection")
		code, body = post("/hooks/hosttest/web", "main-secret-0123456789", `{"type":"ping","id":"p0"}`)
		require.Equal(t, http.StatusNotFound, code, "a connection of another type")
		require.Contains(t, body, "unknown_connection")
		code, _ = post("/hooks/nosuchservice/main", "main-secret-0123456789", `{"type":"ping","id":"p0"}`)
		require.Equal(t, http.StatusNotFound, code)
	})
	t.Run("one ping starts every recipe on the connection, once, and a recipe answers it", func(t *testing.T) {
		// recipe b's reply is the answer (Trigger.Respond), to the
		// redelivery too; recipe c's, on another connection, is not
		code, body := post("/hooks/hosttest/main", "main-secret-0123456789", `{"type":"ping","id":"p1","text":"hi"}`)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, `{"text":"pong"}`, body)
		code, body = post("/hooks/hosttest/main", "main-secret-0123456789", `{"type":"ping","id":"p1","text":"hi"}`)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, `{"text":"pong"}`, body)
		require.Eventually(t, func() bool { d, _ := sk.counts(); return d == 2 }, 10*time.Second, 10*time.Millisecond)
		time.Sleep(200 * time.Millisecond) // nothing more comes
		sk.mu.Lock()
		defer sk.mu.Unlock()
		require.Equal(t, map[string]int{"p1-a": 1, "p1-b": 1}, sk.seen)
	})
	t.Run("the recipes of the connection answer for it", func(t *testing.T) {
		code, body := post("/hooks/hosttest/other", "other-secret-0123456789", `{"type":"ping","id":"p2","text":"skip"}`)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, `{"text":"other"}`, body)
	})
}

// items is the service's item list, served a page at a time, slowly
// enough that a kill -9 falls in the middle.
type items struct {
	n     int64
	delay time.Duration
	mu    sync.Mutex
	asked []int64 // the cursor of every request
}

// polled is the cursor of every request so far.
func (it *items) polled() []int64 {
	it.mu.Lock()
	defer it.mu.Unlock()
	return append([]int64(nil), it.asked...)
}

func (it *items) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/items" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer hosttest-token-0123456789" {
		// the poller calls through its connection's client, which holds the token
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	it.serve(w, r)
}

// serve answers a page of the list.
func (it *items) serve(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.ParseInt(r.URL.Query().Get("limit"), 10, 64)
	it.mu.Lock()
	it.asked = append(it.asked, after)
	it.mu.Unlock()
	time.Sleep(it.delay)
	type item struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	page := []item{}
	for id := after + 1; id <= it.n && int64(len(page)) < limit; id++ {
		page = append(page, item{id, "item " + strconv.FormatInt(id, 10)})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"items": page})
}

// TestPollerSurvivesKill: a poller over 10,000 items, its process killed
// with SIGKILL in the middle and started again: every item is one event
// and one succeeded run, and the recipe's remote hears of every item.
func TestPollerSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sous serve twice")
	}
	const n = 10000
	sk := &sink{seen: map[string]int{}}
	mux := http.NewServeMux()
	list := &items{n: n, delay: 15 * time.Millisecond}
	mux.Handle("/items", list)
	mux.Handle("/sink", sk)
	api := httptest.NewServer(mux)
	defer api.Close()
	f := newFixture(t, api.URL, map[string]string{"copy.yaml": `version: 1
name: copy-items
trigger: {type: hosttest.item_created, connection: main, with: {poll_interval: 100ms, page_size: 50}}
steps:
  - id: copy
    action: http.request
    connection: web
    with: {method: POST, url: sink, json: {id: "{{ event.id }}"}}
`})
	start := func() *exec.Cmd {
		_ = os.Remove(filepath.Join(f.data, "addr"))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+f.config)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("child stderr:\n%s", stderr.String())
			}
		})
		require.Eventually(t, func() bool {
			_, err := os.Stat(filepath.Join(f.data, "addr"))
			return err == nil
		}, 30*time.Second, 10*time.Millisecond, "the child serves")
		return cmd
	}

	cmd := start()
	require.Eventually(t, func() bool { d, _ := sk.counts(); return d >= n/3 }, 60*time.Second, time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	atKill, _ := sk.counts()
	require.Less(t, atKill, n, "killed in the middle")
	before := len(list.polled())

	cmd = start()
	require.Eventually(t, func() bool { d, _ := sk.counts(); return d == n }, 120*time.Second, 10*time.Millisecond,
		"every item reaches the remote after the restart")
	// the runs of the last items are recorded once they are answered
	db := readStore(t, f.data)
	require.Eventually(t, func() bool {
		var runs int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM runs WHERE status = 'succeeded'`).Scan(&runs))
		return runs == n
	}, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())

	var events, keys, runs, runEvents, other int
	require.NoError(t, db.QueryRow(`SELECT count(*), count(DISTINCT dedup_key) FROM events WHERE type = 'hosttest.item_created'`).Scan(&events, &keys))
	require.NoError(t, db.QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM runs`).Scan(&runs, &runEvents))
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM runs WHERE status <> 'succeeded'`).Scan(&other))
	require.Equal(t, n, events, "one event per item")
	require.Equal(t, n, keys)
	require.Equal(t, n, runs, "one run per item")
	require.Equal(t, n, runEvents)
	require.Zero(t, other)
	var cursor []byte
	require.NoError(t, db.QueryRow(`SELECT cursor FROM polls`).Scan(&cursor))
	require.Equal(t, strconv.Itoa(n), string(cursor), "the cursor is at the last item")
	// the restarted poller went on from the cursor saved with the last
	// events stored, not from the start: each page was asked for once,
	// but the one (at most) the kill cut short, and the empty last ones
	asked := list.polled()
	require.Positive(t, asked[before], "the restart resumes from the saved cursor")
	pages := map[int64]int{}
	for _, a := range asked {
		pages[a]++
	}
	again := 0
	for a, k := range pages {
		if a < n && k > 1 {
			again += k - 1
		}
	}
	require.LessOrEqual(t, again, 1, "pages asked for again: %v", asked)
	distinct, total := sk.counts()
	require.Equal(t, n, distinct)
	// a run in flight at the kill ran again after it (its remote heard it
	// twice, its record is one): at most the runs in flight at once
	require.LessOrEqual(t, total-n, 512, "requests heard twice")
	t.Logf("killed after %d items reached the remote; %d requests heard twice", atKill, total-n)
}

// readStore opens the embedded store of a data folder read-only.
func readStore(t *testing.T, dataDir string) *sql.DB {
	t.Helper()
	write, read, err := store.OpenSQLite(context.Background(), dataDir)
	require.NoError(t, err)
	t.Cleanup(func() { read.Close(); write.Close() })
	return read
}
