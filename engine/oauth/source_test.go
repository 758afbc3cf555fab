package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
)

// rotating is a token endpoint whose refresh tokens rotate and are single
// use, as Atlassian's and Slack's (with rotation) are.
type rotating struct {
	srv       *httptest.Server
	mu        sync.Mutex
	current   int // the refresh token that is good: rt-<current>
	refreshes atomic.Int32
	refuse    bool   // refuse every refresh
	code      string // the error code of a refusal (invalid_grant when empty)
}

func newRotating(t *testing.T) *rotating {
	r := &rotating{current: 1}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		require.NoError(t, req.ParseForm())
		r.refreshes.Add(1)
		time.Sleep(50 * time.Millisecond) // long enough for the other process to ask meanwhile
		r.mu.Lock()
		defer r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.refuse && r.code == "invalid_refresh_token" {
			// Slack: HTTP 200, ok false
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": r.code})
			return
		}
		if r.refuse || req.PostForm.Get("grant_type") != "refresh_token" || req.PostForm.Get("refresh_token") != fmt.Sprintf("rt-%d", r.current) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "the refresh token is not valid"})
			return
		}
		r.current++
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("at-%d", r.current),
			"refresh_token": fmt.Sprintf("rt-%d", r.current), "expires_in": 3600, "token_type": "Bearer"})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rotating) source(v *oauth.Vault, leases oauth.Leaser, owner string) *oauth.Source {
	return &oauth.Source{Vault: v, Connection: "acme", Leases: leases, Owner: owner, Poll: 10 * time.Millisecond,
		Refresh: &oauth2.Config{ClientID: "cid", ClientSecret: "cs", Endpoint: oauth2.Endpoint{TokenURL: r.srv.URL, AuthStyle: oauth2.AuthStyleInParams}}}
}

func expired() *oauth2.Token {
	return &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1", TokenType: "Bearer", Expiry: time.Now().Add(-time.Minute)}
}

func TestSourceRefresh(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		key := genKey(t)
		t.Run("a valid token is served as stored", func(t *testing.T) {
			r := newRotating(t)
			v := newVault(t, b.st, key)
			tok := expired()
			tok.Expiry = time.Now().Add(time.Hour)
			require.NoError(t, v.Put(ctx, "acme", tok, oauth.Meta{Type: "acme"}))
			got, err := r.source(v, b.st, "p1").Token(ctx)
			require.NoError(t, err)
			require.Equal(t, "at-1", got.AccessToken)
			require.Zero(t, r.refreshes.Load())
		})
		t.Run("an expired token is refreshed once and saved, rotation included", func(t *testing.T) {
			r := newRotating(t)
			v := newVault(t, b.st, key)
			require.NoError(t, v.Put(ctx, "acme", expired(), oauth.Meta{Type: "acme"}))
			src := r.source(v, b.st, "p1")
			var outcomes []string
			src.Refreshed = func(conn, outcome string) { outcomes = append(outcomes, conn+" "+outcome) }
			for range 3 {
				got, err := src.Token(ctx)
				require.NoError(t, err)
				require.Equal(t, "at-2", got.AccessToken)
			}
			require.EqualValues(t, 1, r.refreshes.Load())
			require.Equal(t, []string{"acme ok"}, outcomes)
			saved, meta, err := v.Get(ctx, "acme")
			require.NoError(t, err)
			require.Equal(t, "rt-2", saved.RefreshToken, "the rotated refresh token is saved")
			require.False(t, meta.RefreshedAt.IsZero())
			// another process reads what was saved, and refreshes nothing
			got, err := r.source(v, b.st, "p2").Token(ctx)
			require.NoError(t, err)
			require.Equal(t, "at-2", got.AccessToken)
			require.EqualValues(t, 1, r.refreshes.Load())
			entries, err := b.st.ListAudit(ctx, time.Now().Add(-time.Minute), 0)
			require.NoError(t, err)
			var refreshed []store.AuditEntry
			for _, e := range entries {
				if e.Action == "connection.refreshed" {
					refreshed = append(refreshed, e)
				}
			}
			require.Len(t, refreshed, 1)
			require.Equal(t, "serve", refreshed[0].Actor)
			require.Equal(t, "acme", refreshed[0].Target)
		})
		t.Run("two processes refresh a connection once", func(t *testing.T) {
			r := newRotating(t)
			v := newVault(t, b.st, key)
			require.NoError(t, v.Put(ctx, "acme", expired(), oauth.Meta{Type: "acme"}))
			var wg sync.WaitGroup
			got := make([]string, 4)
			errs := make([]error, 4)
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// each its own process: its own vault and source
					tok, err := r.source(newVault(t, b.st, key), b.st, fmt.Sprintf("process-%d", i)).Token(ctx)
					errs[i] = err
					if err == nil {
						got[i] = tok.AccessToken
					}
				}()
			}
			wg.Wait()
			for i := range 4 {
				require.NoError(t, errs[i])
				require.Equal(t, "at-2", got[i])
			}
			require.EqualValues(t, 1, r.refreshes.Load(), "a single-use refresh token is used once")
		})
		for _, code := range []string{"invalid_grant", "invalid_refresh_token"} {
			t.Run(code+": needs_reauth, and a permanent auth failure naming the command", func(t *testing.T) {
				r := newRotating(t)
				r.refuse, r.code = true, code
				v := newVault(t, b.st, key)
				require.NoError(t, v.Put(ctx, "acme", expired(), oauth.Meta{Type: "acme"}))
				src := r.source(v, b.st, "p1")
				var outcomes []string
				src.Refreshed = func(conn, outcome string) { outcomes = append(outcomes, conn+" "+outcome) }
				_, err := src.Token(ctx)
				require.Error(t, err)
				require.Equal(t, []string{"acme refused"}, outcomes)
				ce := connector.Classify(err)
				require.False(t, ce.Retryable)
				require.Equal(t, connector.ReasonAuth, ce.Reason)
				require.ErrorContains(t, err, "run `sous connect acme`")
				_, meta, gerr := v.Get(ctx, "acme")
				require.NoError(t, gerr)
				require.Equal(t, oauth.StateNeedsReauth, meta.State)
				entries, err := b.st.ListAudit(ctx, time.Now().Add(-time.Minute), 10)
				require.NoError(t, err)
				require.Equal(t, "connection.needs_reauth", entries[0].Action)
				require.Contains(t, meta.LastError, code)
				_, err = src.Token(ctx)
				require.ErrorContains(t, err, "needs to be connected again: run `sous connect acme`")
				require.EqualValues(t, 1, r.refreshes.Load(), "no refresh is tried again")
			})
		}
		t.Run("no token stored", func(t *testing.T) {
			r := newRotating(t)
			v := newVault(t, b.st, key)
			src := r.source(v, b.st, "p1")
			src.Connection = "never"
			_, err := src.Token(ctx)
			require.ErrorContains(t, err, "connection never is not connected: run `sous connect never`")
			var ce *connector.Error
			require.True(t, errors.As(err, &ce))
		})
	})
}

// TestSourceAuthorize: the token goes as a bearer token whatever the
// provider called its type (Slack's "bot").
func TestSourceAuthorize(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		v := newVault(t, b.st, genKey(t))
		require.NoError(t, v.Put(ctx, "acme", &oauth2.Token{AccessToken: "xoxb-1", TokenType: "bot"}, oauth.Meta{Type: "slack"}))
		src := &oauth.Source{Vault: v, Connection: "acme", Leases: b.st, Owner: "p"}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://x/", nil)
		require.NoError(t, src.Authorize(req))
		require.Equal(t, "Bearer xoxb-1", req.Header.Get("Authorization"))
	})
}

// TestSourceSeed: a refresh token from the config (oauth.refresh_token)
// stands in for a stored token until the first refresh stores one.
func TestSourceSeed(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		key := genKey(t)
		r := newRotating(t)
		v := newVault(t, b.st, key)
		src := r.source(v, b.st, "p1")
		src.Connection = "seeded"
		src.Seed, src.SeedMeta = "rt-1", oauth.Meta{Type: "google", Scopes: []string{"s1"}}
		for range 2 {
			got, err := src.Token(ctx)
			require.NoError(t, err)
			require.Equal(t, "at-2", got.AccessToken)
		}
		require.EqualValues(t, 1, r.refreshes.Load())
		saved, meta, err := v.Get(ctx, "seeded")
		require.NoError(t, err)
		require.Equal(t, "rt-2", saved.RefreshToken)
		require.Equal(t, "google", meta.Type)
		require.Equal(t, []string{"s1"}, meta.Scopes)
		// once stored, the stored token wins over the config's
		other := r.source(v, b.st, "p2")
		other.Connection, other.Seed = "seeded", "rt-1"
		got, err := other.Token(ctx)
		require.NoError(t, err)
		require.Equal(t, "at-2", got.AccessToken)
		require.EqualValues(t, 1, r.refreshes.Load())
	})
}

// TestSourceFillsStoredIdentifiers: a path segment {KEY} is filled in with
// the identifier stored beside the token (Atlassian's cloud id), read
// again when it was recorded after the token was; a missing one fails
// permanently, naming the command that records it.
func TestSourceFillsStoredIdentifiers(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		v := newVault(t, b.st, genKey(t))
		tok := &oauth2.Token{AccessToken: "at-1", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
		require.NoError(t, v.Put(ctx, "jira", tok, oauth.Meta{Type: "jira"}))
		src := &oauth.Source{Vault: v, Connection: "jira", Leases: b.st, Owner: "p"}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.atlassian.com/ex/jira/{cloud_id}/rest/api/3/myself", nil)
		err := src.Authorize(req)
		require.ErrorContains(t, err, "connection jira has no cloud_id stored beside its token: run `sous connections test jira`")
		require.False(t, connector.Classify(err).Retryable)

		// recorded since (sous connections test), with the token cached
		require.NoError(t, v.Put(ctx, "jira", tok, oauth.Meta{Type: "jira", Extra: map[string]string{"cloud_id": "c-42"}}))
		require.NoError(t, src.Authorize(req))
		require.Equal(t, "/ex/jira/c-42/rest/api/3/myself", req.URL.Path)
		require.Equal(t, "https://api.atlassian.com/ex/jira/c-42/rest/api/3/myself", req.URL.String())
		require.Equal(t, "Bearer at-1", req.Header.Get("Authorization"))

		// no placeholder: the path is left as it is
		plain, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://x.test/a%2Fb/c", nil)
		require.NoError(t, src.Authorize(plain))
		require.Equal(t, "https://x.test/a%2Fb/c", plain.URL.String())

		// a stored value that is not one path segment is refused
		require.NoError(t, v.Put(ctx, "jira", tok, oauth.Meta{Type: "jira", Extra: map[string]string{"site": "../x"}}))
		bad, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://x.test/{site}/y", nil)
		fresh := &oauth.Source{Vault: v, Connection: "jira", Leases: b.st, Owner: "p"}
		require.ErrorContains(t, fresh.Authorize(bad), "is not a path segment")
	})
}

// TestVaultAuditsCreation: the first row of a connection is recorded as
// connection.created, once; later writes of it are not.
func TestVaultAuditsCreation(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		v := newVault(t, b.st, genKey(t))
		tok := &oauth2.Token{AccessToken: "at-1", Expiry: time.Now().Add(time.Hour)}
		for range 3 {
			require.NoError(t, v.Put(ctx, "created-once", tok, oauth.Meta{Type: "slack"}))
		}
		require.NoError(t, v.Delete(ctx, "created-once"))
		require.NoError(t, v.Put(ctx, "created-once", tok, oauth.Meta{Type: "slack"}))
		entries, err := b.st.ListAudit(ctx, time.Now().Add(-time.Minute), 0)
		require.NoError(t, err)
		var created []store.AuditEntry
		for _, e := range entries {
			if e.Target == "created-once" && e.Action == "connection.created" {
				created = append(created, e)
			}
		}
		require.Len(t, created, 2, "once, and once more after it was deleted")
		require.Equal(t, "a slack connection", created[0].Detail)
		require.Equal(t, "sous", created[0].Actor)
	})
}
