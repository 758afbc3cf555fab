package hosttest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
	"github.com/sous-run/sous/internal/hosttest"
	"github.com/sous-run/sous/internal/httpx"
)

// TestClusterRefreshesOnce: two `sous serve` processes on one PostgreSQL
// share an OAuth connection whose stored token has expired and whose
// provider rotates refresh tokens (each is single-use: a second refresh
// with the same one is refused, which would mark the connection
// needs_reauth). Both run steps on the connection at once: the token is
// refreshed exactly once, and both processes call the service with the
// new token.
func TestClusterRefreshesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sous serve twice on PostgreSQL")
	}
	dsn := storetest.Postgres(t)
	var refreshes, refused, calls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		refreshes.Add(1)
		time.Sleep(300 * time.Millisecond) // a slow provider: the other process waits meanwhile
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("refresh_token") != "rt-1" {
			refused.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600, "token_type": "Bearer"})
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-2" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		calls.Add(1)
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"app-user"}`)
	})
	api := httptest.NewServer(mux)
	defer api.Close()

	// one master key for both processes, as a cluster sets it
	var kb [oauth.KeySize]byte
	_, err := rand.Read(kb[:])
	require.NoError(t, err)
	t.Setenv(oauth.EnvMasterKey, hex.EncodeToString(kb[:]))
	key, err := oauth.ParseKey(hex.EncodeToString(kb[:]))
	require.NoError(t, err)

	// what `sous connect app` left in the shared store: an expired token
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer db.Close()
	st := &store.Store{DB: db, Dialect: store.Postgres}
	require.NoError(t, st.Migrate(ctx))
	v, err := oauth.NewVault(st, key)
	require.NoError(t, err)
	require.NoError(t, v.Put(ctx, "app", &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)},
		oauth.Meta{Type: "hosttest"}))

	dir := t.TempDir()
	recipesDir := filepath.Join(dir, "recipes")
	require.NoError(t, os.MkdirAll(recipesDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(recipesDir, "who.yaml"), []byte(`version: 1
name: who
trigger: {type: hosttest.ping, connection: app}
steps:
  - id: who
    action: hosttest.whoami
    connection: app
`), 0o600))
	type proc struct {
		cmd  *exec.Cmd
		addr string
	}
	start := func(name string) *proc {
		data := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(data, 0o700)) // the store is PostgreSQL: nothing else makes it
		config := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
recipes: %s
api_keys: [%q]
broker: {type: postgres, url: %q}
connections:
  app:
    type: hosttest
    base_url: %s
    secret: app-webhook-secret-1
    oauth: {client_id: cid, client_secret: app-client-secret-1, token_url: %s/token}
`, data, recipesDir, apiKey, dsn, api.URL, api.URL)), 0o600))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+config)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("%s stderr:\n%s", name, stderr.String())
			}
		})
		var addr []byte
		require.Eventually(t, func() bool {
			addr, err = os.ReadFile(filepath.Join(data, "addr"))
			return err == nil
		}, 30*time.Second, 10*time.Millisecond, "%s serves", name)
		return &proc{cmd: cmd, addr: string(addr)}
	}
	procs := []*proc{start("one"), start("two")}

	ping := func(p *proc, id string) {
		body := `{"type":"ping","id":"` + id + `"}`
		req, err := http.NewRequest(http.MethodPost, "http://"+p.addr+"/hooks/hosttest/app", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set(hosttest.SignatureHeader, httpx.SignSHA256("app-webhook-secret-1", []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
	}
	// calls made with the token, per process (its own metrics)
	callsRE := regexp.MustCompile(`(?m)^sous_connection_calls_total\{action="hosttest.whoami",connection="app",status="200"\} (\d+)`)
	callsOf := func(p *proc) int {
		resp, err := http.Get("http://" + p.addr + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := callsRE.FindSubmatch(b)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}

	// pings to both at once, until each process has run steps with the token
	n := 0
	require.Eventually(t, func() bool {
		for i := 0; i < 10; i++ {
			n++
			ping(procs[n%2], "p"+strconv.Itoa(n))
		}
		return callsOf(procs[0]) > 0 && callsOf(procs[1]) > 0
	}, 60*time.Second, 100*time.Millisecond, "both processes call the service")
	require.Eventually(t, func() bool { return int(calls.Load()) >= n }, 60*time.Second, 20*time.Millisecond, "every ping's step ran")

	require.EqualValues(t, 1, refreshes.Load(), "the token is refreshed once across the processes")
	require.Zero(t, refused.Load(), "no refresh with a refresh token used already")
	tok, meta, err := v.Get(ctx, "app")
	require.NoError(t, err)
	require.Equal(t, "at-2", tok.AccessToken)
	require.Equal(t, "rt-2", tok.RefreshToken)
	require.Equal(t, oauth.StateOK, meta.State)
	t.Logf("%d pings; calls by process: %d, %d", n, callsOf(procs[0]), callsOf(procs[1]))
	for _, p := range procs {
		require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
		require.NoError(t, p.cmd.Wait())
	}
}
