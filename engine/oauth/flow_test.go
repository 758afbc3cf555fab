package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
)

// provider is an authorization server that answers as the providers
// document: PKCE S256 checked, codes single use, client credentials in
// the header or the form as the provider wants, and Slack's errors as
// HTTP 200 with ok:false.
type provider struct {
	t        *testing.T
	srv      *httptest.Server
	header   bool // client credentials in a basic Authorization header
	slack    bool
	mu       sync.Mutex
	codes    map[string]grant // code -> what it was issued for
	authURLs []url.Values
}

type grant struct {
	challenge, redirect string
	used                bool
}

func newProvider(t *testing.T, header, slack bool) *provider {
	p := &provider{t: t, header: header, slack: slack, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		p.authURLs = append(p.authURLs, q)
		code := "code-" + q.Get("state")[:8]
		p.codes[code] = grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		p.mu.Unlock()
		if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || q.Get("client_id") != "cid" {
			http.Redirect(w, r, q.Get("redirect_uri")+"?error=invalid_request&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
			return
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		fail := func(code string) {
			w.Header().Set("Content-Type", "application/json")
			if p.slack {
				_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": "refused by the test provider"})
		}
		require.NoError(t, r.ParseForm())
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if basic != p.header || id != "cid" || secret != "the-client-secret" {
			fail("invalid_client")
			return
		}
		p.mu.Lock()
		g, ok := p.codes[r.PostForm.Get("code")]
		if ok {
			p.codes[r.PostForm.Get("code")] = grant{challenge: g.challenge, redirect: g.redirect, used: true}
		}
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case r.PostForm.Get("grant_type") != "authorization_code":
			fail("unsupported_grant_type")
		case !ok || g.used:
			fail("invalid_grant") // unknown or replayed code
		case r.PostForm.Get("code_verifier") == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			fail("invalid_grant") // PKCE: missing or wrong verifier
		case r.PostForm.Get("redirect_uri") != g.redirect:
			fail("invalid_grant")
		default:
			w.Header().Set("Content-Type", "application/json")
			tok := map[string]any{"access_token": "at-secret-value-1", "refresh_token": "rt-secret-value-1", "expires_in": 3600, "token_type": "Bearer"}
			if p.slack {
				tok = map[string]any{"ok": true, "access_token": "xoxb-secret-value-1", "token_type": "bot", "team": map[string]any{"id": "T1", "name": "Acme"}}
			}
			_ = json.NewEncoder(w).Encode(tok)
		}
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) connection(t *testing.T, spec *connector.ConnectionSpec) *connector.Connection {
	t.Helper()
	f, _ := spec.Field(connector.ConnOAuth)
	v, err := f.CheckValue(map[string]any{"client_id": "cid", "client_secret": "the-client-secret",
		"auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token"})
	require.NoError(t, err)
	return &connector.Connection{Name: "acme", Type: spec.Type, Values: connector.Values{connector.ConnOAuth: v}}
}

func oauthSpec(header bool) *connector.ConnectionSpec {
	spec := &connector.ConnectionSpec{Type: "acme", Fields: []connector.Field{connector.OAuthField([]string{"read", "write"}, "", "")},
		OAuth: &connector.OAuthSpec{CredentialsInHeader: header, AuthParams: map[string]string{"access_type": "offline"}}}
	if err := connector.NewRegistry().AddConnection(spec); err != nil {
		panic(err)
	}
	return spec
}

// browser follows the authorization URL as a browser would, redirects and
// all, to the loopback listener.
func browser(t *testing.T) func(string) {
	return func(u string) {
		go func() {
			resp, err := http.Get(u) //nolint:noctx // a test's browser
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
}

func TestLoopbackFlow(t *testing.T) {
	for _, tc := range []struct {
		name          string
		header, slack bool
		access        string
	}{
		{"credentials in the form", false, false, "at-secret-value-1"},
		{"credentials in the header", true, false, "at-secret-value-1"},
		{"slack: token_type bot", true, true, "xoxb-secret-value-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, tc.header, tc.slack)
			spec := oauthSpec(tc.header)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tok, err := oauth.Loopback(ctx, p.connection(t, spec), spec, nil, 0, browser(t))
			require.NoError(t, err)
			require.Equal(t, tc.access, tok.AccessToken)
			q := p.authURLs[0]
			require.Equal(t, "offline", q.Get("access_type"), "the provider's own parameters")
			require.Equal(t, "read write", q.Get("scope"))
			require.Regexp(t, `^http://127\.0\.0\.1:[0-9]+/callback$`, q.Get("redirect_uri"))
			require.GreaterOrEqual(t, len(q.Get("state")), 43, "32 random bytes")
		})
	}
}

func TestFinishRefuses(t *testing.T) {
	p := newProvider(t, false, false)
	spec := oauthSpec(false)
	redirect := "http://127.0.0.1:1/callback"
	f, err := oauth.NewFlow(p.connection(t, spec), spec, redirect)
	require.NoError(t, err)
	ctx := context.Background()
	authorize := func(t *testing.T, pend *oauth.Pending) url.Values {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(pend.URL)
		require.NoError(t, err)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		return loc.Query()
	}

	t.Run("a wrong state, and the flow goes on", func(t *testing.T) {
		pend, err := f.Start()
		require.NoError(t, err)
		answer := authorize(t, pend)
		forged := url.Values{"code": {answer.Get("code")}, "state": {"not-the-state"}}
		_, err = f.Finish(ctx, pend, forged)
		require.ErrorIs(t, err, oauth.ErrStateMismatch)
		tok, err := f.Finish(ctx, pend, answer)
		require.NoError(t, err)
		require.Equal(t, "rt-secret-value-1", tok.RefreshToken)
	})
	t.Run("a replayed answer and a replayed code", func(t *testing.T) {
		pend, err := f.Start()
		require.NoError(t, err)
		answer := authorize(t, pend)
		_, err = f.Finish(ctx, pend, answer)
		require.NoError(t, err)
		_, err = f.Finish(ctx, pend, answer)
		require.ErrorIs(t, err, oauth.ErrUsed)
		// the same code under a new flow: the provider refuses it
		other, err := f.Start()
		require.NoError(t, err)
		_, err = f.Finish(ctx, other, url.Values{"code": {answer.Get("code")}, "state": {stateOf(t, other)}})
		require.ErrorContains(t, err, "the provider refused: invalid_grant")
	})
	t.Run("a missing verifier: the provider checks PKCE", func(t *testing.T) {
		pend, err := f.Start()
		require.NoError(t, err)
		answer := authorize(t, pend)
		resp, err := http.PostForm(p.srv.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {answer.Get("code")},
			"redirect_uri": {redirect}, "client_id": {"cid"}, "client_secret": {"the-client-secret"}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "without the verifier the code is refused")
	})
	t.Run("a denial and an answer without a code", func(t *testing.T) {
		pend, err := f.Start()
		require.NoError(t, err)
		_, err = f.Finish(ctx, pend, url.Values{"error": {"access_denied"}, "state": {stateOf(t, pend)}})
		require.ErrorIs(t, err, oauth.ErrDenied)
		pend, err = f.Start()
		require.NoError(t, err)
		_, err = f.Finish(ctx, pend, url.Values{"state": {stateOf(t, pend)}})
		require.ErrorIs(t, err, oauth.ErrDenied)
	})
	t.Run("errors hold no secret", func(t *testing.T) {
		bad := newProvider(t, true, true) // wants the header: the form is refused, Slack-style
		g, err := oauth.NewFlow(bad.connection(t, spec), spec, redirect)
		require.NoError(t, err)
		pend, err := g.Start()
		require.NoError(t, err)
		answer := authorize(t, pend)
		_, err = g.Finish(ctx, pend, answer)
		require.ErrorContains(t, err, "the provider refused: invalid_client")
		require.NotContains(t, err.Error(), "the-client-secret")
		require.NotContains(t, err.Error(), answer.Get("code"))
	})
}

func stateOf(t *testing.T, p *oauth.Pending) string {
	t.Helper()
	u, err := url.Parse(p.URL)
	require.NoError(t, err)
	return u.Query().Get("state")
}

func TestParseRedirect(t *testing.T) {
	q, err := oauth.ParseRedirect("  http://127.0.0.1:8085/callback?code=abc&state=xyz \n")
	require.NoError(t, err)
	require.Equal(t, "abc", q.Get("code"))
	require.Equal(t, "xyz", q.Get("state"))
	_, err = oauth.ParseRedirect("abc")
	require.ErrorContains(t, err, "paste the whole address")
}
