package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/server"
)

// TestOAuthThroughServe: GET /oauth/NAME/start (behind an API key) answers
// the address to authorize at; the provider's redirect to /oauth/callback
// stores the token, once; a forged or replayed state is refused.
func TestOAuthThroughServe(t *testing.T) {
	codes := map[string]string{}
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			q := r.URL.Query()
			codes["c-1"] = q.Get("redirect_uri")
			http.Redirect(w, r, q.Get("redirect_uri")+"?code=c-1&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
		case "/token":
			require.NoError(t, r.ParseForm())
			w.Header().Set("Content-Type", "application/json")
			if codes[r.PostForm.Get("code")] != r.PostForm.Get("redirect_uri") || r.PostForm.Get("code_verifier") == "" {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
				return
			}
			delete(codes, r.PostForm.Get("code"))
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "served-token-1", "refresh_token": "served-refresh-1", "expires_in": 3600,
				"scope": "read write"})
		case "/me":
			if r.Header.Get("Authorization") != "Bearer served-token-1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"account":"alice@acme.test","site":"s-1"}`))
		}
	}))
	defer provider.Close()
	reg := connector.NewRegistry()
	spec := &connector.ConnectionSpec{Type: "acme", Fields: []connector.Field{connector.OAuthField([]string{"read"}, "", "")},
		OAuth: &connector.OAuthSpec{},
		Identity: func(ctx context.Context, cl *connector.Client, _ connector.Values) (*connector.Identity, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, provider.URL+"/me", nil)
			resp, err := cl.HTTP.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			var me struct{ Account, Site string }
			if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
				return nil, err
			}
			return &connector.Identity{Account: me.Account, Extra: map[string]string{"site": me.Site}}, nil
		}}
	require.NoError(t, reg.AddConnection(spec))
	block, err := spec.Fields[0].CheckValue(map[string]any{"client_id": "cid", "client_secret": "cs",
		"auth_url": provider.URL + "/authorize", "token_url": provider.URL + "/token"})
	require.NoError(t, err)
	key, err := oauth.GenerateKey()
	require.NoError(t, err)
	var vault *oauth.Vault
	e := newEnv(t, nil, nil, func(c *server.Config) {
		c.Registry = reg
		c.Connection = func(name string) (*connector.Connection, error) {
			switch name {
			case "app":
				return &connector.Connection{Name: "app", Type: "acme", Values: connector.Values{"oauth": block}}, nil
			case "static":
				return &connector.Connection{Name: "static", Type: "acme", Values: connector.Values{"token": "t"}}, nil
			}
			return nil, errors.New("no such connection")
		}
		c.Vault = func() (*oauth.Vault, error) {
			var err error
			if vault == nil {
				vault, err = oauth.NewVault(c.Store, key)
			}
			return vault, err
		}
	})
	auth := map[string]string{"Authorization": "Bearer key-one"}
	start := func(t *testing.T) string {
		t.Helper()
		rec := e.do(t, req{method: http.MethodGet, target: "/oauth/app/start", headers: auth})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got struct {
			AuthorizeURL string `json:"authorize_url"`
			RedirectURI  string `json:"redirect_uri"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		require.Equal(t, "http://example.com/oauth/callback", got.RedirectURI)
		return got.AuthorizeURL
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func(t *testing.T, u string) *url.URL {
		t.Helper()
		resp, err := noFollow.Get(u)
		require.NoError(t, err)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		return loc
	}

	t.Run("start needs an API key", func(t *testing.T) {
		require.Equal(t, "unauthorized", apiErr(t, e.do(t, req{method: http.MethodGet, target: "/oauth/app/start"}), http.StatusUnauthorized))
		require.Equal(t, "not_found", apiErr(t, e.do(t, req{method: http.MethodGet, target: "/oauth/nope/start", headers: auth}), http.StatusNotFound))
		require.Equal(t, "no_oauth_app", apiErr(t, e.do(t, req{method: http.MethodGet, target: "/oauth/static/start", headers: auth}), http.StatusBadRequest))
	})
	t.Run("a forged state", func(t *testing.T) {
		loc := authorize(t, start(t))
		q := loc.Query()
		q.Set("state", "forged")
		require.Equal(t, "unknown_state", apiErr(t, e.do(t, req{method: http.MethodGet, target: "/oauth/callback?" + q.Encode()}), http.StatusBadRequest))
	})
	t.Run("the callback stores the token, once, with its account and granted scopes", func(t *testing.T) {
		loc := authorize(t, start(t))
		rec := e.do(t, req{method: http.MethodGet, target: loc.RequestURI()})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Contains(t, rec.Body.String(), "connection app is authorized")
		require.NotContains(t, rec.Body.String(), "served-token-1")
		tok, meta, err := vault.Get(context.Background(), "app")
		require.NoError(t, err)
		require.Equal(t, "served-refresh-1", tok.RefreshToken)
		require.Equal(t, "alice@acme.test", meta.Account, "the identity call, as sous connect makes it")
		require.Equal(t, map[string]string{"site": "s-1"}, meta.Extra)
		require.Equal(t, []string{"read", "write"}, meta.Scopes, "the scopes granted, not those asked for")
		require.Equal(t, "unknown_state", apiErr(t, e.do(t, req{method: http.MethodGet, target: loc.RequestURI()}), http.StatusBadRequest), "replayed")
		entries, err := e.st.ListAudit(context.Background(), time.Time{}, 10)
		require.NoError(t, err)
		require.Equal(t, "connection.connected", entries[0].Action)
		require.Equal(t, "api:"+server.KeyName("key-one"), entries[0].Actor)
		require.Equal(t, "acts as alice@acme.test; through sous serve", entries[0].Detail)
		require.Equal(t, "connection.created", entries[1].Action)
	})
}
