package jira_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/clients/jira"
)

// toServer sends the requests for api.atlassian.com to a test server
// standing in for it.
type toServer struct{ srv *url.URL }

func (t toServer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == "api.atlassian.com" {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = t.srv.Scheme, t.srv.Host
		req.Host = ""
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestOAuthCloudIDFromConnect: an OAuth 3LO connection whose config names
// neither base_url nor cloud_id calls
// api.atlassian.com/ex/jira/{cloud id}/rest/api/3/... with the cloud id
// that accessible-resources gave when it was connected, stored beside its
// token.
func TestOAuthCloudIDFromConnect(t *testing.T) {
	var paths []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("code") != "code-1" || r.PostForm.Get("code_verifier") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"atl-access-1","refresh_token":"atl-refresh-1","expires_in":3600,"token_type":"Bearer","scope":"read:jira-work offline_access"}`))
	})
	bearer := func(w http.ResponseWriter, r *http.Request) bool {
		paths = append(paths, r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer atl-access-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		return true
	}
	mux.HandleFunc("GET /oauth/token/accessible-resources", func(w http.ResponseWriter, r *http.Request) {
		if bearer(w, r) {
			_, _ = w.Write([]byte(`[{"id":"cloud-7","url":"https://acme.atlassian.net","name":"acme","scopes":["read:jira-work"]}]`))
		}
	})
	mux.HandleFunc("GET /ex/jira/cloud-7/rest/api/3/myself", func(w http.ResponseWriter, r *http.Request) {
		if bearer(w, r) {
			_, _ = w.Write([]byte(`{"accountId":"a-1","displayName":"Ops"}`))
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL, _ := url.Parse(srv.URL)
	base := toServer{srv: srvURL}

	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer func() { read.Close(); write.Close() }()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.Migrate(ctx))
	key, err := oauth.GenerateKey()
	require.NoError(t, err)
	vault, err := oauth.NewVault(st, key)
	require.NoError(t, err)

	f, _ := jira.Connection.Field(connector.ConnOAuth)
	block, err := f.CheckValue(map[string]any{"client_id": "cid", "client_secret": "cs",
		"auth_url": srv.URL + "/authorize", "token_url": srv.URL + "/oauth/token"})
	require.NoError(t, err)
	conn := &connector.Connection{Name: "jira", Type: "jira", Values: connector.Values{connector.ConnOAuth: block}}

	// connect: the flow, then what sous connect and sous serve record
	flow, err := oauth.NewFlow(conn, jira.Connection, "http://127.0.0.1:1/callback")
	require.NoError(t, err)
	p, err := flow.Start()
	require.NoError(t, err)
	u, _ := url.Parse(p.URL)
	tok, err := flow.Finish(ctx, p, url.Values{"code": {"code-1"}, "state": {u.Query().Get("state")}})
	require.NoError(t, err)
	saved, err := oauth.Save(ctx, vault, conn, jira.Connection, tok, base, "test", "")
	require.NoError(t, err)
	require.NoError(t, saved.IdentityErr)
	require.Equal(t, "https://acme.atlassian.net", saved.Account)

	// the connection's client, as the runtime builds it, and go-jira's over it
	cl, err := oauth.ClientFor(conn, jira.Connection, oauth.Tokens{Vault: func() (*oauth.Vault, error) { return vault, nil },
		Leases: st, Owner: "p", Base: base}, base, connector.ClientHooks{})
	require.NoError(t, err)
	conn.Client = cl
	c, err := jira.NewClient(conn)
	require.NoError(t, err)
	var me struct {
		AccountID string `json:"accountId"`
	}
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, jira.Call(callCtx, c, http.MethodGet, "rest/api/3/myself", nil, &me))
	require.Equal(t, "a-1", me.AccountID)
	require.Equal(t, []string{"/oauth/token/accessible-resources", "/ex/jira/cloud-7/rest/api/3/myself"}, paths)

	// base_url still wins (a self-hosted Jira, a test server)
	conn.Values[connector.ConnBaseURL] = srv.URL + "/ex/jira/cloud-7/"
	c, err = jira.NewClient(conn)
	require.NoError(t, err)
	require.NoError(t, jira.Call(callCtx, c, http.MethodGet, "rest/api/3/myself", nil, &me))
	require.Equal(t, "/ex/jira/cloud-7/rest/api/3/myself", paths[len(paths)-1])
}
