package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/oauth"
)

// provider is an authorization server and API answering as one provider
// documents: where it wants the client's credentials (basic
// authentication or the form), the parameters its authorization address
// must carry, its token answer, and the identity call `connections test`
// makes.
type provider struct {
	name, typ string
	basic     bool              // client credentials in basic authentication, refused in the form
	authPath  string            // the authorization endpoint's path (Microsoft's holds the tenant)
	params    map[string]string // what the authorization address must carry
	token     map[string]any    // the token answer, access_token added
	identity  string            // METHOD PATH of the identity call
	answer    any               // its answer
	account   string            // who `connections test` says the connection acts as
	config    string            // the connection's YAML beyond type and oauth; %[1]s is the server's address
}

// serve starts the provider. Codes are single-use and bound to their
// redirect address and PKCE challenge (S256 of the verifier the token
// request must carry).
func (p provider) serve(t *testing.T) (srv *httptest.Server, refused func() []string, issued func() []string) {
	t.Helper()
	type grant struct {
		redirect, challenge string
		used                bool
	}
	var mu sync.Mutex
	codes := map[string]*grant{}
	var refusals, given []string
	refuse := func(w http.ResponseWriter, status int, code, desc string) {
		mu.Lock()
		refusals = append(refusals, code+": "+desc)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	access := "at-" + p.name + "-0123456789"
	mux := http.NewServeMux()
	mux.HandleFunc(p.authPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for k, v := range map[string]string{"response_type": "code", "client_id": "cid", "code_challenge_method": "S256"} {
			if q.Get(k) != v {
				http.Error(w, fmt.Sprintf("%s must be %s, is %q", k, v, q.Get(k)), http.StatusBadRequest)
				return
			}
		}
		for k, v := range p.params {
			if q.Get(k) != v {
				http.Error(w, fmt.Sprintf("%s must be %s, is %q", k, v, q.Get(k)), http.StatusBadRequest)
				return
			}
		}
		if q.Get("state") == "" || q.Get("code_challenge") == "" || !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") {
			http.Error(w, "state, code_challenge and a loopback redirect_uri are required", http.StatusBadRequest)
			return
		}
		code := "code-" + p.name + "-" + q.Get("state")[:12]
		mu.Lock()
		codes[code] = &grant{redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge")}
		given = append(given, code)
		mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc(strings.Replace(p.authPath, "authorize", "token", 1), func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			refuse(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		f := r.PostForm
		id, secret, inHeader := r.BasicAuth()
		if !inHeader {
			id, secret = f.Get("client_id"), f.Get("client_secret")
		}
		switch {
		case inHeader != p.basic:
			refuse(w, http.StatusUnauthorized, "invalid_client", "the client's credentials are not where this provider wants them")
			return
		case id != "cid" || secret != p.name+"-client-secret":
			refuse(w, http.StatusUnauthorized, "invalid_client", "unknown client")
			return
		case f.Get("grant_type") != "authorization_code":
			refuse(w, http.StatusBadRequest, "unsupported_grant_type", f.Get("grant_type"))
			return
		}
		mu.Lock()
		g := codes[f.Get("code")]
		replayed := g != nil && g.used
		if g != nil {
			g.used = true
		}
		mu.Unlock()
		switch {
		case g == nil:
			refuse(w, http.StatusBadRequest, "invalid_grant", "unknown code")
		case replayed:
			refuse(w, http.StatusBadRequest, "invalid_grant", "the code was used already")
		case f.Get("redirect_uri") != g.redirect:
			refuse(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs")
		case f.Get("code_verifier") == "":
			refuse(w, http.StatusBadRequest, "invalid_grant", "code_verifier is missing")
		case oauth2.S256ChallengeFromVerifier(f.Get("code_verifier")) != g.challenge:
			refuse(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the challenge")
		default:
			out := map[string]any{"access_token": access}
			for k, v := range p.token {
				out[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(out)
		}
	})
	mux.HandleFunc(p.identity, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+access {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_token"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.answer)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	list := func(l *[]string) func() []string {
		return func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), *l...)
		}
	}
	return srv, list(&refusals), list(&given)
}

// providers answer as each provider documents (PROTOCOLS.md §1, §3-§5,
// §7); Slack's HTTP-200 ok:false errors and token_type bot are
// TestConnectLoopback's.
var providers = []provider{
	{name: "jira", typ: "jira", authPath: "/authorize",
		params: map[string]string{"audience": "api.atlassian.com", "prompt": "consent", "scope": "read:jira-work write:jira-work read:jira-user offline_access"},
		token:  map[string]any{"token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-jira", "scope": "read:jira-work offline_access"},
		// Atlassian: the sites the token reaches, the connection's first
		identity: "GET /oauth/token/accessible-resources",
		answer:   []map[string]any{{"id": "cloud-1", "url": "https://acme.atlassian.net", "name": "acme", "scopes": []string{"read:jira-work"}}},
		account:  "https://acme.atlassian.net", config: "    base_url: %[1]s/\n"},
	{name: "zoom", typ: "zoom", basic: true, authPath: "/authorize",
		token:    map[string]any{"token_type": "bearer", "expires_in": 3599, "refresh_token": "rt-zoom", "scope": "meeting:read"},
		identity: "GET /v2/users/me", answer: map[string]any{"email": "host@acme.test", "account_id": "acc-9"},
		account: "host@acme.test", config: "    base_url: %[1]s/v2/\n"},
	{name: "google", typ: "google", authPath: "/authorize",
		params:   map[string]string{"access_type": "offline", "prompt": "consent"},
		token:    map[string]any{"token_type": "Bearer", "expires_in": 3599, "refresh_token": "rt-google", "scope": "https://www.googleapis.com/auth/drive"},
		identity: "GET /drive/v3/about", answer: map[string]any{"user": map[string]any{"emailAddress": "ops@acme.test"}},
		account: "ops@acme.test", config: "    base_url: %[1]s/\n"},
	{name: "microsoft", typ: "microsoft", authPath: "/acme.onmicrosoft.com/oauth2/v2.0/authorize",
		token:    map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "refresh_token": "rt-ms", "scope": "User.Read Mail.Send"},
		identity: "GET /v1.0/me", answer: map[string]any{"userPrincipalName": "ops@acme.onmicrosoft.com", "mail": nil},
		account: "ops@acme.onmicrosoft.com",
		// the tenant takes common's place in the endpoints
		config: "    tenant: acme.onmicrosoft.com\n    base_url: %[1]s/v1.0/\n"},
	{name: "dropbox", typ: "dropbox", authPath: "/authorize",
		params:   map[string]string{"token_access_type": "offline"},
		token:    map[string]any{"token_type": "bearer", "expires_in": 14400, "refresh_token": "rt-dropbox", "account_id": "dbid:1", "uid": "1"},
		identity: "POST /2/users/get_current_account", answer: map[string]any{"email": "box@acme.test", "account_id": "dbid:1"},
		account: "box@acme.test", config: "    base_url: %[1]s/2/\n"},
}

// TestConnectProviders: `sous connect` against each provider's
// authorization server: the token is stored, `connections test` says whom
// it acts as, and a replayed code is refused with the provider's error,
// the stored token kept.
func TestConnectProviders(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			srv, refusals, issued := p.serve(t)
			t.Setenv(oauth.EnvMasterKey, "")
			t.Setenv("CLIENT_SECRET", p.name+"-client-secret")
			dir := t.TempDir()
			authURL, tokenURL := srv.URL+"/authorize", srv.URL+"/token"
			if p.typ == "microsoft" {
				authURL, tokenURL = srv.URL+"/common/oauth2/v2.0/authorize", srv.URL+"/common/oauth2/v2.0/token"
			}
			config := writeFile(t, dir, "sous.yaml", fmt.Sprintf("data_dir: %s/data\nconnections:\n  %s:\n    type: %s\n", dir, p.name, p.typ)+
				fmt.Sprintf(p.config, srv.URL)+
				fmt.Sprintf("    oauth:\n      client_id: cid\n      client_secret: ${CLIENT_SECRET}\n      auth_url: %s\n      token_url: %s\n", authURL, tokenURL))

			// the browser follows the provider back to the loopback listener
			first, out, done := runConnect(t, strings.NewReader(""), "connect", p.name, "--config", config, "--timeout", "20s")
			resp, err := http.Get(first)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Contains(t, string(body), "is authorized", "%s", body)
			require.Equal(t, 0, <-done, out.String())
			require.Empty(t, refusals())
			require.Equal(t, "at-"+p.name+"-0123456789", tokenOf(t, dir+"/data", p.name, p.typ))
			require.NotContains(t, out.String(), "at-"+p.name)
			require.Contains(t, out.String(), "it acts as "+p.account)
			// the scopes the provider granted, when it says, else those asked for
			st := sous(t, "", "connections", "show", p.name, "--json", "--config", config)
			require.Equal(t, 0, st.code, "%s", st)
			var shown oauth.Status
			require.NoError(t, json.Unmarshal([]byte(st.stdout), &shown))
			require.Equal(t, p.account, shown.Account)
			if granted, ok := p.token["scope"].(string); ok {
				require.Equal(t, strings.Fields(granted), shown.Scopes)
			} else {
				require.NotEmpty(t, shown.Scopes)
			}

			r := sous(t, "", "connections", "test", p.name, "--config", config)
			require.Equal(t, 0, r.code, "%s", r)
			require.Contains(t, r.stdout, "it acts as "+p.account)

			t.Run("a replayed code is refused, the token kept", func(t *testing.T) {
				noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				used := issued()[0]

				in, paste := io.Pipe()
				second, out, done := runConnect(t, in, "connect", p.name, "--config", config, "--no-browser", "--timeout", "20s")
				resp, err := noFollow.Get(second)
				require.NoError(t, err)
				resp.Body.Close()
				loc, err := url.Parse(resp.Header.Get("Location"))
				require.NoError(t, err)
				q := loc.Query()
				q.Set("code", used) // the first flow's code, again
				loc.RawQuery = q.Encode()
				_, err = fmt.Fprintln(paste, loc.String())
				require.NoError(t, err)
				require.Equal(t, 1, <-done, out.String())
				require.Contains(t, out.String(), "invalid_grant")
				require.Contains(t, strings.Join(refusals(), "\n"), "the code was used already")
				require.Equal(t, "at-"+p.name+"-0123456789", tokenOf(t, dir+"/data", p.name, p.typ))
			})
		})
	}
}

// tokenOf reads the access token stored for a connection of a type.
func tokenOf(t *testing.T, dataDir, conn, typ string) string {
	t.Helper()
	key, err := oauth.LoadKey(dataDir, os.Getenv)
	require.NoError(t, err)
	v, err := oauth.NewVault(tokenStore(t, dataDir, ""), key)
	require.NoError(t, err)
	tok, meta, err := v.Get(context.Background(), conn)
	require.NoError(t, err)
	require.Equal(t, typ, meta.Type)
	require.Equal(t, oauth.StateOK, meta.State)
	return tok.AccessToken
}
