package hosttest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/hosttest"
)

// BenchmarkActions: actions per second (hosttest.whoami: one JSON GET)
// against a local fake, through a connection's client as `sous serve`
// builds it: a static token; the token `sous connect` stored, read from
// the vault once and served by its token source; and the same with the
// rate limiter on (at a rate it never reaches, so that its cost shows,
// not its waits). The figures are in docs/performance.md.
func BenchmarkActions(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-bench" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"bench"}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	dir := b.TempDir()
	write, read, err := store.OpenSQLite(ctx, dir)
	require.NoError(b, err)
	defer write.Close()
	defer read.Close()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(b, st.Migrate(ctx))
	key, err := oauth.GenerateKey()
	require.NoError(b, err)
	v, err := oauth.NewVault(st, key)
	require.NoError(b, err)
	require.NoError(b, v.Put(ctx, "app", &oauth2.Token{AccessToken: "at-bench", RefreshToken: "rt", TokenType: "Bearer",
		Expiry: time.Now().Add(24 * time.Hour)}, oauth.Meta{Type: hosttest.ConnectionType}))
	app := map[string]any{"client_id": "cid", "client_secret": "cs", "token_url": srv.URL + "/token"}
	for _, tc := range []struct {
		name   string
		values connector.Values
	}{
		{"static_token", connector.Values{"base_url": srv.URL, "token": "at-bench"}},
		{"token_source", connector.Values{"base_url": srv.URL, "oauth": app}},
		{"token_source_limiter", connector.Values{"base_url": srv.URL, "oauth": app, "rate_limit": "1000000/s burst 1000"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			conn := &connector.Connection{Name: "app", Type: hosttest.ConnectionType, Values: tc.values}
			cl, err := oauth.ClientFor(conn, hosttest.Connection,
				oauth.Tokens{Vault: func() (*oauth.Vault, error) { return v, nil }, Leases: st, Owner: "bench"},
				nil, connector.ClientHooks{Call: func(string, string, string, time.Duration) {}})
			require.NoError(b, err)
			conn.Client = cl
			req := &connector.Request{Recipe: "bench", RunID: "r", Step: "s", With: connector.Values{}, Connection: conn}
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := hosttest.Whoami.Action.Run(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "actions/s")
		})
	}
}
