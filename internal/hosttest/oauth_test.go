package hosttest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/hosttest"
	"github.com/sous-run/sous/internal/httpx"
	"github.com/sous-run/sous/internal/logbuf"
)

// TestPollerOnOAuthConnection: a poller on a connection with an OAuth app
// calls the service with the token `sous connect` stored, refreshed once
// when it expired and saved; when the provider refuses the refresh, the
// connection is needs_reauth and the poller stops calling the service,
// its log naming the command to run.
func TestPollerOnOAuthConnection(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refresh refused %v", refuse), func(t *testing.T) {
			t.Setenv(oauth.EnvMasterKey, "")
			var refreshes, listed atomic.Int32
			sk := &sink{seen: map[string]int{}}
			mux := http.NewServeMux()
			mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
				require.NoError(t, r.ParseForm())
				refreshes.Add(1)
				w.Header().Set("Content-Type", "application/json")
				if refuse || r.PostForm.Get("refresh_token") != "rt-1" {
					w.WriteHeader(http.StatusBadRequest)
					_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600, "token_type": "Bearer"})
			})
			mux.HandleFunc("/items", func(w http.ResponseWriter, r *http.Request) {
				listed.Add(1)
				if r.Header.Get("Authorization") != "Bearer at-2" {
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				(&items{n: 20}).serve(w, r)
			})
			mux.Handle("/sink", sk)
			api := httptest.NewServer(mux)
			defer api.Close()

			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "recipes"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "recipes", "copy.yaml"), []byte(`version: 1
name: copy-items
trigger: {type: hosttest.item_created, connection: app, with: {poll_interval: 100ms, page_size: 50}}
steps:
  - id: copy
    action: http.request
    connection: web
    with: {method: POST, url: sink, json: {id: "{{ event.id }}"}}
`), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "recipes", "ping.yaml"), []byte(`version: 1
name: tell-pings
trigger: {type: hosttest.ping, connection: app}
steps:
  - id: tell
    action: http.request
    connection: web
    with: {method: POST, url: sink, json: {id: "ping-{{ event.id }}"}}
`), 0o600))
			config := filepath.Join(dir, "sous.yaml")
			require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
recipes: %s
api_keys: [%q]
connections:
  app:
    type: hosttest
    base_url: %s
    secret: app-webhook-secret-1
    oauth: {client_id: cid, client_secret: app-client-secret-1, token_url: %s/token}
  web:
    type: http
    base_url: %s
`, data, filepath.Join(dir, "recipes"), apiKey, api.URL, api.URL, api.URL)), 0o600))

			// what `sous connect app` left: an expired token
			ctx := context.Background()
			key, err := oauth.LoadKey(data, os.Getenv)
			require.NoError(t, err)
			write, read, err := store.OpenSQLite(ctx, data)
			require.NoError(t, err)
			st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
			require.NoError(t, st.Migrate(ctx))
			v, err := oauth.NewVault(st, key)
			require.NoError(t, err)
			require.NoError(t, v.Put(ctx, "app", &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)},
				oauth.Meta{Type: "hosttest"}))
			t.Cleanup(func() { read.Close(); write.Close() })

			var logs logbuf.Buffer
			rctx, cancel := context.WithCancel(ctx)
			svc, _, err := open(rctx, config, slog.New(slog.NewTextHandler(&logs, nil)))
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- svc.Run(rctx) }()
			defer func() {
				cancel()
				require.NoError(t, <-done)
				if t.Failed() {
					t.Logf("logs:\n%s", logs.String())
				}
			}()

			// a ping at the connection's webhook: served while the
			// connection works, refused (503, to be delivered again) while it
			// needs re-authorization
			ping := func(id string) (int, http.Header, string) {
				body := `{"type":"ping","id":"` + id + `"}`
				req, err := http.NewRequest(http.MethodPost, "http://"+svc.Addr()+"/hooks/hosttest/app", strings.NewReader(body))
				require.NoError(t, err)
				req.Header.Set(hosttest.SignatureHeader, httpx.SignSHA256("app-webhook-secret-1", []byte(body)))
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header, string(b)
			}
			if !refuse {
				require.Eventually(t, func() bool { d, _ := sk.counts(); return d == 20 }, 20*time.Second, 10*time.Millisecond)
				// the poller's calls are counted under its trigger
				resp, err := http.Get("http://" + svc.Addr() + "/metrics")
				require.NoError(t, err)
				metrics, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Contains(t, string(metrics), `sous_connection_calls_total{action="hosttest.item_created",connection="app",status="200"}`)
				code, _, body := ping("p1")
				require.Equal(t, http.StatusAccepted, code, body)
				require.Eventually(t, func() bool { d, _ := sk.counts(); return d == 21 }, 20*time.Second, 10*time.Millisecond)
				require.EqualValues(t, 1, refreshes.Load(), "refreshed once")
				tok, meta, err := v.Get(ctx, "app")
				require.NoError(t, err)
				require.Equal(t, "at-2", tok.AccessToken, "the refreshed token is saved")
				require.Equal(t, oauth.StateOK, meta.State)
				return
			}
			require.Eventually(t, func() bool {
				_, meta, err := v.Get(ctx, "app")
				return err == nil && meta.State == oauth.StateNeedsReauth
			}, 20*time.Second, 10*time.Millisecond)
			require.Eventually(t, func() bool { return strings.Contains(logs.String(), "run `sous connect app`") }, 10*time.Second, 10*time.Millisecond)
			require.Eventually(t, func() bool { code, _, _ := ping("p1"); return code == http.StatusServiceUnavailable }, 5*time.Second, 50*time.Millisecond)
			code, header, body := ping("p2")
			require.Equal(t, http.StatusServiceUnavailable, code, body)
			require.Equal(t, "300", header.Get("Retry-After"))
			require.Contains(t, body, "connection_needs_reauth")
			require.Contains(t, body, "run `sous connect app`")
			time.Sleep(300 * time.Millisecond)
			require.Zero(t, listed.Load(), "no call to the service without a token")
			d, _ := sk.counts()
			require.Zero(t, d, "no ping was stored or run")
			require.EqualValues(t, 1, refreshes.Load(), "a refused refresh is not tried again")
			require.NotContains(t, logs.String(), "app-client-secret-1")
		})
	}
}
