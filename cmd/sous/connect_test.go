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
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/oauth"
)

// watched is an output the test reads while the command runs.
type watched struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *watched) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

var authURLRE = regexp.MustCompile(`(?m)^  (http://\S+/authorize\?\S+)$`)

// slackProvider answers as Slack's oauth.v2.access does: credentials in
// basic authentication, PKCE checked, token_type bot, errors as HTTP 200
// with ok:false.
func slackProvider(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	codes := map[string]string{} // code -> redirect
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := "code-" + q.Get("state")[:10]
		mu.Lock()
		codes[code] = q.Get("redirect_uri")
		mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		id, secret, ok := r.BasicAuth()
		mu.Lock()
		redirect, known := codes[r.PostForm.Get("code")]
		delete(codes, r.PostForm.Get("code"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case !ok || id != "cid" || secret != "slack-client-secret-1":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_client"})
		case !known || redirect != r.PostForm.Get("redirect_uri") || r.PostForm.Get("code_verifier") == "":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_code"})
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "access_token": "xoxb-connected-token-1",
				"token_type": "bot", "team": map[string]any{"id": "T1", "name": "Acme"}})
		}
	})
	mux.HandleFunc("/api/auth.test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer xoxb-connected-token-1" {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "team": "Acme", "team_id": "T1", "url": "https://acme.slack.com/", "user": "sous"})
	})
	mux.HandleFunc("/api/auth.revoke", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer xoxb-connected-token-1" {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "revoked": true})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func connectFixture(t *testing.T, provider string) (dir, config string) {
	t.Helper()
	t.Setenv(oauth.EnvMasterKey, "")
	t.Setenv("SLACK_CLIENT_SECRET", "slack-client-secret-1")
	dir = t.TempDir()
	config = writeFile(t, dir, "sous.yaml", fmt.Sprintf(`data_dir: %s/data
connections:
  slack:
    type: slack
    base_url: %s/api/
    oauth:
      client_id: cid
      client_secret: ${SLACK_CLIENT_SECRET}
      auth_url: %s/authorize
      token_url: %s/token
`, dir, provider, provider, provider))
	return dir, config
}

// storedToken reads the token sous connect stored.
func storedToken(t *testing.T, dataDir, conn string) string {
	t.Helper()
	key, err := oauth.LoadKey(dataDir, os.Getenv)
	require.NoError(t, err)
	v, err := oauth.NewVault(tokenStore(t, dataDir, ""), key)
	require.NoError(t, err)
	tok, meta, err := v.Get(context.Background(), conn)
	require.NoError(t, err)
	require.Equal(t, "slack", meta.Type)
	require.Equal(t, oauth.StateOK, meta.State)
	return tok.AccessToken
}

// run starts the CLI in the background and waits for the authorization
// address it prints.
func runConnect(t *testing.T, stdin io.Reader, args ...string) (authURL string, out *watched, done chan int) {
	t.Helper()
	out = &watched{}
	done = make(chan int, 1)
	go func() { done <- execute(args, stdin, out, out) }()
	require.Eventually(t, func() bool { return authURLRE.MatchString(out.String()) }, 10*time.Second, 5*time.Millisecond)
	return authURLRE.FindStringSubmatch(out.String())[1], out, done
}

func TestConnectLoopback(t *testing.T) {
	provider := slackProvider(t)
	dir, config := connectFixture(t, provider.URL)
	authURL, out, done := runConnect(t, strings.NewReader(""), "connect", "slack", "--config", config, "--timeout", "20s")
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	require.Equal(t, "S256", u.Query().Get("code_challenge_method"))
	// the browser: the provider sends it back to the loopback listener
	resp, err := http.Get(authURL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), "connection slack is authorized")
	require.Equal(t, 0, <-done, out.String())
	require.Contains(t, out.String(), "connection slack is connected: its token is stored encrypted under master key ")
	require.NotContains(t, out.String(), "xoxb-connected-token-1")
	require.Equal(t, "xoxb-connected-token-1", storedToken(t, dir+"/data", "slack"))
}

func TestConnectNoBrowser(t *testing.T) {
	provider := slackProvider(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	browse := func(t *testing.T, authURL string) *url.URL {
		t.Helper()
		resp, err := noFollow.Get(authURL)
		require.NoError(t, err)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "127.0.0.1:8085", loc.Host, "--no-browser's redirect port")
		return loc
	}
	t.Run("the pasted address", func(t *testing.T) {
		dir, config := connectFixture(t, provider.URL)
		in, paste := io.Pipe()
		authURL, out, done := runConnect(t, in, "connect", "slack", "--config", config, "--no-browser", "--timeout", "20s")
		loc := browse(t, authURL)
		_, err := fmt.Fprintln(paste, loc.String())
		require.NoError(t, err)
		require.Equal(t, 0, <-done, out.String())
		require.Equal(t, "xoxb-connected-token-1", storedToken(t, dir+"/data", "slack"))
	})
	t.Run("a wrong state is refused and nothing stored", func(t *testing.T) {
		_, config := connectFixture(t, provider.URL)
		in, paste := io.Pipe()
		authURL, out, done := runConnect(t, in, "connect", "slack", "--config", config, "--no-browser", "--timeout", "20s")
		loc := browse(t, authURL)
		q := loc.Query()
		q.Set("state", "forged-state")
		loc.RawQuery = q.Encode()
		_, err := fmt.Fprintln(paste, loc.String())
		require.NoError(t, err)
		require.Equal(t, 1, <-done)
		require.Contains(t, out.String(), "the state sent back is not the one sent")
	})
	t.Run("a connection that mints its own tokens", func(t *testing.T) {
		dir := t.TempDir()
		config := writeFile(t, dir, "sous.yaml", "data_dir: "+dir+"\nconnections:\n  zoom:\n    type: zoom\n    account_id: acc-1\n"+
			"    oauth: {client_id: cid, client_secret: \"${SLACK_CLIENT_SECRET}\"}\n")
		t.Setenv("SLACK_CLIENT_SECRET", "zoom-client-secret-1")
		r := sous(t, "", "connect", "zoom", "--config", config)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "connection zoom mints its own tokens")
	})
	t.Run("a connection without an oauth block", func(t *testing.T) {
		dir := t.TempDir()
		config := writeFile(t, dir, "sous.yaml", "data_dir: "+dir+"\nconnections:\n  bot:\n    type: slack\n    token: xoxb-static-token-1\n")
		r := sous(t, "", "connect", "bot", "--config", config)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "connection bot has no oauth block")
	})
}

func TestConnectionsList(t *testing.T) {
	provider := slackProvider(t)
	dir, _ := connectFixture(t, provider.URL)
	config := writeFile(t, dir, "sous.yaml", fmt.Sprintf(`data_dir: %s/data
connections:
  slack:
    type: slack
    base_url: %s/api/
    oauth: {client_id: cid, client_secret: "${SLACK_CLIENT_SECRET}", auth_url: %s/authorize, token_url: %s/token}
  bot:
    type: slack
    base_url: %s/api/
    token: xoxb-static-token-1
  site:
    type: jira
    base_url: https://acme.atlassian.net
    email: ops@acme.test
    api_token: jira-api-token-1
  web:
    type: http
    base_url: http://127.0.0.1:1/
`, dir, provider.URL, provider.URL, provider.URL, provider.URL))

	r := sous(t, "", "connections", "list", "--config", config)
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)^bot\s+slack\s+ok\s+token\s`, r.stdout)
	require.Regexp(t, `(?m)^site\s+jira\s+ok\s+config\s`, r.stdout)
	require.Regexp(t, `(?m)^slack\s+slack\s+unconfigured\s+oauth\s`, r.stdout)
	require.Regexp(t, `(?m)^web\s+http\s+ok\s+none\s`, r.stdout)
	for _, secret := range []string{"xoxb-static-token-1", "jira-api-token-1", "slack-client-secret-1"} {
		require.NotContains(t, r.stdout, secret)
	}
	r = sous(t, "", "connections", "show", "slack", "--config", config)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "run `sous connect slack` to authorize it")

	// connected: ok, with what the store knows
	authURL, out, done := runConnect(t, strings.NewReader(""), "connect", "slack", "--config", config, "--timeout", "20s")
	resp, err := http.Get(authURL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 0, <-done, out.String())
	r = sous(t, "", "connections", "list", "--config", config, "--json")
	require.Equal(t, 0, r.code, "%s", r)
	var sts []oauth.Status
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sts))
	require.Len(t, sts, 4)
	require.Equal(t, "slack", sts[2].Name)
	require.Equal(t, "ok", sts[2].State)
	require.Equal(t, []string{"chat:write", "channels:read", "channels:history", "reactions:read", "files:write"}, sts[2].Scopes)
	require.NotEmpty(t, sts[2].KeyID)
	require.NotContains(t, r.stdout, "xoxb-connected-token-1")

	require.Equal(t, "Acme (https://acme.slack.com/) as sous", sts[2].Account, "sous connect records who it acts as")
	r = sous(t, "", "connections", "list", "--config", config)
	require.Regexp(t, `(?m)^NAME\s+TYPE\s+STATE\s+CREDENTIALS\s+ACCOUNT\s+SCOPES\s+EXPIRES\s+REFRESHED\s+LAST ERROR$`, r.stdout)
	require.Regexp(t, `(?m)^slack\s+slack\s+ok\s+oauth\s+Acme .*\s+chat:write,channels:read,`, r.stdout, "the scopes are listed")
	r = sous(t, "", "connections", "test", "slack", "--config", config)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "connection slack works: it acts as Acme (https://acme.slack.com/) as sous")
	r = sous(t, "", "connections", "test", "bot", "--config", config)
	require.Equal(t, 1, r.code, "a static token the service refuses: %s", r)
	require.Contains(t, r.stderr, "slack auth.test: invalid_auth")
	require.NotContains(t, r.stderr, "xoxb-static-token-1")
	r = sous(t, "", "connections", "test", "web", "--config", config)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "has no identity call")

	r = sous(t, "", "connections", "revoke", "slack", "--config", config)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "connection slack: the grant is revoked at the provider")
	require.Contains(t, r.stdout, "the stored token is deleted")
	r = sous(t, "", "connections", "list", "--config", config)
	require.Regexp(t, `(?m)^slack\s+slack\s+unconfigured\s+oauth\s`, r.stdout)
	r = sous(t, "", "connections", "revoke", "slack", "--config", config)
	require.Equal(t, 1, r.code, "nothing left to revoke: %s", r)
	r = sous(t, "", "audit", "--config", config)
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `(?m)\scli\S*\s+connection\.connected\s+slack\s+acts as Acme`, r.stdout)
	require.Regexp(t, `(?m)\scli\S*\s+connection\.revoked\s+slack\s+revoked at the provider`, r.stdout)
	require.NotContains(t, r.stdout, "xoxb-connected-token-1")
	r = sous(t, "", "connections", "revoke", "bot", "--config", config)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "connection bot has no OAuth app")

	r = sous(t, "", "connections", "show", "nope", "--config", config)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `connection "nope" is not in`)
}
