package all_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	_ "github.com/sous-run/sous/internal/clients/all"
	"github.com/sous-run/sous/recipes"
)

func parse(t *testing.T, conns string, env map[string]string) (*recipes.Config, recipes.Diagnostics) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return recipes.ParseConfig("sous.yaml", []byte("connections:\n"+conns), lookup, connector.Default)
}

// TestConnectionTypes: every service's connection type parses the forms
// its docs give, and refuses what it cannot use, saying where.
func TestConnectionTypes(t *testing.T) {
	env := map[string]string{"SECRET": "a-long-secret-value", "CID": "client-id-1"}
	tests := []struct {
		name, conns string
		wantErr     string // "" for a config that parses
	}{
		{"slack with a bot token", "  s:\n    type: slack\n    token: ${SECRET}\n    signing_secret: ${SECRET}\n", ""},
		{"slack with an oauth app", "  s:\n    type: slack\n    oauth: {client_id: \"${CID}\", client_secret: \"${SECRET}\"}\n", ""},
		{"slack with neither", "  s:\n    type: slack\n    signing_secret: ${SECRET}\n", "connections.s: set token, or oauth"},
		{"google with a service account and a subject", "  g:\n    type: google\n    service_account_file: /etc/sa.json\n    subject: ops@example.com\n", ""},
		{"google with a subject alone", "  g:\n    type: google\n    token: ${SECRET}\n    subject: ops@example.com\n", "subject: needs service_account_file too"},
		{"jira with an api token", "  j:\n    type: jira\n    base_url: https://acme.atlassian.net\n    email: ops@acme.test\n    api_token: ${SECRET}\n", ""},
		{"jira with an email and no token", "  j:\n    type: jira\n    base_url: https://acme.atlassian.net\n    email: ops@acme.test\n", "email: needs api_token too"},
		{"jira with oauth", "  j:\n    type: jira\n    oauth: {client_id: x, client_secret: \"${SECRET}\", token_url: \"http://127.0.0.1:1/t\"}\n", ""},
		{"zoom with its webhook secret", "  z:\n    type: zoom\n    webhook_secret: ${SECRET}\n", ""},
		{"zoom server-to-server", "  z:\n    type: zoom\n    account_id: acc\n    oauth: {client_id: x, client_secret: \"${SECRET}\"}\n", ""},
		{"zoom account id alone", "  z:\n    type: zoom\n    webhook_secret: ${SECRET}\n    account_id: acc\n", "account_id: needs oauth too"},
		{"microsoft in a tenant", "  m:\n    type: microsoft\n    tenant: contoso.onmicrosoft.com\n    oauth: {client_id: x}\n", ""},
		{"microsoft in a bad tenant", "  m:\n    type: microsoft\n    tenant: \"a/b\"\n    oauth: {client_id: x}\n", "tenant"},
		{"dropbox", "  d:\n    type: dropbox\n    oauth: {client_id: x, client_secret: \"${SECRET}\"}\n", ""},
		{"imap", "  i:\n    type: imap\n    host: 127.0.0.1\n    port: 1143\n    tls: none\n    username: u\n    password: ${SECRET}\n", ""},
		{"imap with a password and no user", "  i:\n    type: imap\n    host: h\n    password: ${SECRET}\n", "password: needs username too"},
		{"smtp with a bad port", "  o:\n    type: smtp\n    host: h\n    port: 70000\n", "is not a port"},
		{"smtp with a bad tls mode", "  o:\n    type: smtp\n    host: h\n    tls: maybe\n", "not one of implicit, starttls, none"},
		{"an unknown oauth key", "  s:\n    type: slack\n    oauth: {client_id: x, clientsecret: y}\n", `unknown key "clientsecret"`},
		{"a bad rate limit", "  s:\n    type: slack\n    token: ${SECRET}\n    rate_limit: fast\n", `"fast" is not a rate`},
		{"a bad base url", "  s:\n    type: slack\n    token: ${SECRET}\n    base_url: slack.com\n", "must start with http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := parse(t, tc.conns, env)
			if tc.wantErr == "" {
				require.False(t, diags.HasErrors(), "%v", diags)
				return
			}
			require.True(t, diags.HasErrors(), "want %q", tc.wantErr)
			require.Contains(t, diags.Error(), tc.wantErr)
			require.NotContains(t, diags.Error(), env["SECRET"])
		})
	}
}

// TestNestedSecrets: a secret key of the oauth block is redacted like any
// secret field, warned of when written in plain text, and refused short.
func TestNestedSecrets(t *testing.T) {
	cfg, diags := parse(t, "  s:\n    type: slack\n    oauth: {client_id: x, client_secret: \"${SECRET}\"}\n",
		map[string]string{"SECRET": "an-oauth-client-secret"})
	require.False(t, diags.HasErrors(), "%v", diags)
	require.Contains(t, cfg.SecretValues(), "an-oauth-client-secret")
	require.NotContains(t, cfg.SecretValues(), "x", "the client id is not secret")

	_, diags = parse(t, "  s:\n    type: slack\n    oauth: {client_id: x, client_secret: written-in-the-file}\n", nil)
	require.False(t, diags.HasErrors(), "%v", diags)
	require.Len(t, diags, 1)
	require.Contains(t, diags[0].Message, "connections.s.oauth.client_secret is a secret written in plain text")
	require.Equal(t, 4, diags[0].Line)

	_, diags = parse(t, "  s:\n    type: slack\n    oauth: {client_id: x, client_secret: \"${S}\"}\n", map[string]string{"S": "ab"})
	require.True(t, diags.HasErrors())
	require.True(t, strings.Contains(diags.Error(), "connections.s.oauth.client_secret"), "%v", diags)
	require.NotContains(t, diags.Error(), `"ab"`)
}

// TestOAuthSpecs: each provider's departures from the plain flow.
func TestOAuthSpecs(t *testing.T) {
	get := func(typ string) *connector.ConnectionSpec {
		s, ok := connector.Default.Connection(typ)
		require.True(t, ok, typ)
		require.NotNil(t, s.OAuth, typ)
		return s
	}
	require.True(t, get("slack").OAuth.CredentialsInHeader)
	require.True(t, get("zoom").OAuth.CredentialsInHeader)
	require.Equal(t, "offline", get("google").OAuth.AuthParams["access_type"])
	require.Equal(t, "api.atlassian.com", get("jira").OAuth.AuthParams["audience"])
	require.Equal(t, "offline", get("dropbox").OAuth.AuthParams["token_access_type"])
	ms := get("microsoft")
	a, tk := ms.OAuth.Endpoints(connector.Values{"tenant": "contoso.onmicrosoft.com"},
		"https://login.microsoftonline.com/common/oauth2/v2.0/authorize", "https://login.microsoftonline.com/common/oauth2/v2.0/token")
	require.Equal(t, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize", a)
	require.Equal(t, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", tk)
	a, _ = ms.OAuth.Endpoints(connector.Values{"tenant": "common"}, "https://x/common/a", "https://x/common/t")
	require.Equal(t, "https://x/common/a", a)
}

// TestIdentity: each type's identity call, against a server answering as
// the service documents, through the connection's client and its token.
func TestIdentity(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-1" && r.Header.Get("Authorization") != "Basic b3BzQGFjbWUudGVzdDphcGktdG9rLTE=" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /api/auth.test":
			_, _ = io.WriteString(w, `{"ok":true,"team":"Acme","team_id":"T1","url":"https://acme.slack.com/","user":"sous"}`)
		case "GET /drive/v3/about":
			require.Equal(t, "user", r.URL.Query().Get("fields"))
			_, _ = io.WriteString(w, `{"user":{"emailAddress":"ops@acme.test","displayName":"Ops"}}`)
		case "GET /rest/api/3/myself":
			_, _ = io.WriteString(w, `{"accountId":"5b10a","emailAddress":"ops@acme.test","displayName":"Ops"}`)
		case "GET /oauth/token/accessible-resources":
			_, _ = io.WriteString(w, `[{"id":"c-1","url":"https://one.atlassian.net","name":"one"},{"id":"c-2","url":"https://two.atlassian.net","name":"two"}]`)
		case "GET /v2/users/me":
			_, _ = io.WriteString(w, `{"email":"host@acme.test","account_id":"zacc"}`)
		case "GET /v1.0/me":
			_, _ = io.WriteString(w, `{"userPrincipalName":"ops@acme.onmicrosoft.com","mail":null}`)
		case "POST /2/users/get_current_account":
			body, _ := io.ReadAll(r.Body)
			require.Equal(t, "null", string(body))
			_, _ = io.WriteString(w, `{"email":"box@acme.test","account_id":"dbid:1"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		typ     string
		with    connector.Values
		account string
		extra   map[string]string
	}{
		{"slack", connector.Values{"token": "tok-1", "base_url": srv.URL + "/api/"}, "Acme (https://acme.slack.com/) as sous", map[string]string{"team_id": "T1"}},
		{"google", connector.Values{"token": "tok-1", "base_url": srv.URL + "/"}, "ops@acme.test", nil},
		{"jira", connector.Values{"base_url": srv.URL, "email": "ops@acme.test", "api_token": "api-tok-1"}, "Ops <ops@acme.test> on " + srv.URL, map[string]string{"account_id": "5b10a"}},
		{"jira", connector.Values{"token": "tok-1", "base_url": srv.URL, "cloud_id": "c-2"}, "https://two.atlassian.net", map[string]string{"cloud_id": "c-2"}},
		{"zoom", connector.Values{"token": "tok-1", "base_url": srv.URL + "/v2/"}, "host@acme.test", map[string]string{"account_id": "zacc"}},
		{"microsoft", connector.Values{"token": "tok-1", "base_url": srv.URL + "/v1.0/"}, "ops@acme.onmicrosoft.com", nil},
		{"dropbox", connector.Values{"token": "tok-1", "base_url": srv.URL + "/2/"}, "box@acme.test", map[string]string{"account_id": "dbid:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.typ+" "+tc.account, func(t *testing.T) {
			spec, ok := connector.Default.Connection(tc.typ)
			require.True(t, ok)
			conn := &connector.Connection{Name: "c", Type: tc.typ, Values: tc.with}
			cl, err := connector.NewClient(conn, spec, nil, connector.ClientHooks{})
			require.NoError(t, err)
			id, err := spec.Identity(context.Background(), cl, tc.with)
			require.NoError(t, err)
			require.Equal(t, tc.account, id.Account)
			require.Equal(t, tc.extra, id.Extra)

			// a token the service refuses: a permanent auth failure
			bad := connector.Values{}
			for k, v := range tc.with {
				bad[k] = v
			}
			bad["token"], bad["api_token"] = "wrong", "wrong"
			cl, err = connector.NewClient(&connector.Connection{Name: "c", Type: tc.typ, Values: bad}, spec, nil, connector.ClientHooks{})
			require.NoError(t, err)
			_, err = spec.Identity(context.Background(), cl, bad)
			require.Error(t, err)
			if tc.typ != "slack" { // Slack answers 401 here too, as the fake does
				require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason, "%v", err)
			}
			require.NotContains(t, err.Error(), "wrong")
		})
	}
}

// TestRevoke: each provider's revocation, as it documents it.
func TestRevoke(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		id, secret, basic := r.BasicAuth()
		body := r.PostForm.Get("token")
		if r.URL.Path == "/2/auth/token/revoke" {
			raw, _ := io.ReadAll(r.Body)
			body = string(raw)
		}
		got = append(got, fmt.Sprintf("%s %s basic=%v:%s:%s auth=%q token=%s", r.Method, r.URL.Path, basic, id, secret, r.Header.Get("Authorization"), body))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `null`)
	}))
	defer srv.Close()
	oauthBlock := map[string]any{"client_id": "cid", "client_secret": "csecret", "token_url": srv.URL + "/oauth/token"}
	tests := []struct {
		typ  string
		with connector.Values
		want string
	}{
		{"google", connector.Values{"oauth": oauthBlock}, `POST /oauth/revoke basic=false:: auth="" token=rt-1`},
		{"zoom", connector.Values{"oauth": oauthBlock}, `POST /oauth/revoke basic=true:cid:csecret auth="Basic Y2lkOmNzZWNyZXQ=" token=rt-1`},
		{"dropbox", connector.Values{"oauth": oauthBlock, "base_url": srv.URL + "/2/"}, `POST /2/auth/token/revoke basic=false:: auth="Bearer at-1" token=null`},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			got = nil
			spec, _ := connector.Default.Connection(tc.typ)
			cl, err := connector.NewClient(&connector.Connection{Name: "c", Type: tc.typ, Values: connector.Values{"token": "at-1"}}, spec, nil, connector.ClientHooks{})
			require.NoError(t, err)
			with := connector.Values{}
			for k, v := range tc.with {
				with[k] = v
			}
			with["token"] = "at-1"
			require.NoError(t, spec.OAuth.Revoke(context.Background(), cl, with, "rt-1"))
			require.Equal(t, []string{tc.want}, got)
		})
	}
	ms, _ := connector.Default.Connection("microsoft")
	require.Nil(t, ms.OAuth.Revoke, "Microsoft has no revocation endpoint")
}

// TestSelfMinted: Zoom's Server-to-Server OAuth (the account_credentials
// grant) and a Google service account (the JWT bearer grant, RFC 7523) mint
// their tokens without a person, as the providers document it.
func TestSelfMinted(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	var minted []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/zoom/oauth/token":
			id, secret, ok := r.BasicAuth()
			if !ok || id != "cid" || secret != "zoom-secret-1" || r.PostForm.Get("grant_type") != "account_credentials" || r.PostForm.Get("account_id") != "acc-1" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
				return
			}
			minted = append(minted, "zoom")
			_, _ = io.WriteString(w, `{"access_token":"s2s-1","token_type":"bearer","expires_in":3600}`)
		case "/google/token":
			if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"unsupported_grant_type"}`)
				return
			}
			parts := strings.Split(r.PostForm.Get("assertion"), ".")
			require.Len(t, parts, 3)
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			require.NoError(t, err)
			sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			require.NoError(t, rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, sum[:], sig), "RS256 with the account's key")
			claims, err := base64.RawURLEncoding.DecodeString(parts[1])
			require.NoError(t, err)
			var c struct{ Iss, Sub, Scope, Aud string }
			require.NoError(t, json.Unmarshal(claims, &c))
			require.Equal(t, "sa@proj.iam.gserviceaccount.com", c.Iss)
			require.Equal(t, "ops@acme.test", c.Sub, "domain-wide delegation")
			require.Equal(t, srv.URL+"/google/token", c.Aud)
			require.Contains(t, c.Scope, "https://www.googleapis.com/auth/drive.file")
			minted = append(minted, "google")
			_, _ = io.WriteString(w, `{"access_token":"sa-1","token_type":"Bearer","expires_in":3600}`)
		case "/v2/users/me":
			if r.Header.Get("Authorization") != "Bearer s2s-1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"email":"host@acme.test","account_id":"acc-1"}`)
		case "/drive/v3/about":
			if r.Header.Get("Authorization") != "Bearer sa-1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"user":{"emailAddress":"ops@acme.test"}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	keyPath := filepath.Join(t.TempDir(), "sa.json")
	keyJSON, err := json.Marshal(map[string]string{"type": "service_account", "client_email": "sa@proj.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "private_key_id": "k1",
		"token_uri": srv.URL + "/google/token"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, keyJSON, 0o600))

	tests := []struct {
		typ     string
		conns   string
		account string
	}{
		{"zoom", fmt.Sprintf("  z:\n    type: zoom\n    account_id: acc-1\n    base_url: %s/v2/\n    oauth: {client_id: cid, client_secret: zoom-secret-1, token_url: %s/zoom/oauth/token}\n", srv.URL, srv.URL), "host@acme.test"},
		{"google", fmt.Sprintf("  g:\n    type: google\n    service_account_file: %s\n    subject: ops@acme.test\n    base_url: %s/\n", keyPath, srv.URL), "ops@acme.test"},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			minted = nil
			cfg, diags := parse(t, tc.conns, nil)
			require.False(t, diags.HasErrors(), "%v", diags)
			for name := range cfg.Connections {
				c, err := cfg.Connection(name)
				require.NoError(t, err)
				spec, _ := connector.Default.Connection(c.Type)
				require.True(t, spec.OAuth.SelfMinted(c.Values))
				cl, err := connector.NewClient(c, spec, nil, connector.ClientHooks{})
				require.NoError(t, err)
				for range 2 {
					id, err := spec.Identity(context.Background(), cl, c.Values)
					require.NoError(t, err)
					require.Equal(t, tc.account, id.Account)
				}
				require.Equal(t, []string{tc.typ}, minted, "minted once, reused while valid")
			}
		})
	}
	t.Run("a file that is not a key", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(`{"private_key":"-----BEGIN secret"}`), 0o600))
		spec, _ := connector.Default.Connection("google")
		_, err := connector.NewClient(&connector.Connection{Name: "g", Type: "google", Values: connector.Values{"service_account_file": bad}}, spec, nil, connector.ClientHooks{})
		require.ErrorContains(t, err, "is not a service account's JSON key")
		require.NotContains(t, err.Error(), "BEGIN")
	})
}
