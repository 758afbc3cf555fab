package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// Flow is the authorization-code flow of one connection, with PKCE and a
// random state: Start gives the URL to open, Finish checks what the
// provider sent back and exchanges the code for a token.
type Flow struct {
	Connection string
	conf       *oauth2.Config
	params     []oauth2.AuthCodeOption
	// Client is the HTTP client of the token exchange (the default
	// client when nil).
	Client *http.Client
}

// NewFlow builds the flow of a connection from its oauth block and its
// type's OAuthSpec; redirect is the URL the provider sends the browser
// back to.
func NewFlow(conn *connector.Connection, spec *connector.ConnectionSpec, redirect string) (*Flow, error) {
	block, _ := conn.Values[connector.ConnOAuth].(map[string]any)
	if block == nil {
		if spec.OAuth == nil {
			return nil, fmt.Errorf("connection %s (type %s) has no OAuth flow: it signs in with the credentials of its config", conn.Name, conn.Type)
		}
		return nil, fmt.Errorf("connection %s has no oauth block: set oauth.client_id and oauth.client_secret (its OAuth app's) to connect it", conn.Name)
	}
	str := func(k string) string { s, _ := block[k].(string); return s }
	authURL, tokenURL := str(connector.OAuthAuthURL), str(connector.OAuthTokenURL)
	os := spec.OAuth
	if os == nil {
		os = &connector.OAuthSpec{}
	}
	if os.Endpoints != nil {
		authURL, tokenURL = os.Endpoints(conn.Values, authURL, tokenURL)
	}
	if tokenURL == "" {
		return nil, fmt.Errorf("connection %s: oauth.token_url is needed", conn.Name)
	}
	var scopes []string
	if l, ok := block[connector.OAuthScopes].([]any); ok {
		for _, s := range l {
			scopes = append(scopes, fmt.Sprint(s))
		}
	}
	style := oauth2.AuthStyleInParams
	if os.CredentialsInHeader {
		style = oauth2.AuthStyleInHeader
	}
	f := &Flow{Connection: conn.Name, conf: &oauth2.Config{
		ClientID: str(connector.OAuthClientID), ClientSecret: str(connector.OAuthClientSecret), Scopes: scopes,
		RedirectURL: redirect, Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL, AuthStyle: style},
	}}
	for k, v := range os.AuthParams {
		f.params = append(f.params, oauth2.SetAuthURLParam(k, v))
	}
	return f, nil
}

// Pending is a flow started and not finished: what Finish checks the
// provider's answer against. It is used once.
type Pending struct {
	URL      string // the URL to open in a browser
	state    string
	verifier string
	mu       sync.Mutex
	used     bool
}

// Start begins the flow: a random state and PKCE verifier, and the URL to
// open.
func (f *Flow) Start() (*Pending, error) {
	if f.conf.Endpoint.AuthURL == "" {
		return nil, fmt.Errorf("connection %s: oauth.auth_url is needed to authorize", f.Connection)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make a state: %w", err)
	}
	p := &Pending{state: base64.RawURLEncoding.EncodeToString(b), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(p.verifier)}, f.params...)
	p.URL = f.conf.AuthCodeURL(p.state, opts...)
	return p, nil
}

// Errors of a callback that Finish refuses.
var (
	ErrStateMismatch = errors.New("the state sent back is not the one sent: the answer is not for this request")
	ErrUsed          = errors.New("this authorization was used already: start again")
	ErrDenied        = errors.New("the provider did not authorize the connection")
)

// Finish checks the provider's answer (the redirect's query) against p
// and exchanges the code, with p's PKCE verifier, for a token. It refuses
// an answer whose state differs, an error answer, a missing code, and a
// second use of p.
func (f *Flow) Finish(ctx context.Context, p *Pending, answer url.Values) (*oauth2.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used {
		return nil, ErrUsed
	}
	if subtle.ConstantTimeCompare([]byte(answer.Get("state")), []byte(p.state)) != 1 {
		return nil, ErrStateMismatch
	}
	p.used = true
	if e := answer.Get("error"); e != "" {
		return nil, fmt.Errorf("%w: %s %s", ErrDenied, e, answer.Get("error_description"))
	}
	code := answer.Get("code")
	if code == "" {
		return nil, fmt.Errorf("%w: the answer carries no code", ErrDenied)
	}
	if f.Client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, f.Client)
	}
	tok, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", f.Connection, httpx.TokenError("exchange the code", err))
	}
	return tok, nil
}

// ParseRedirect reads the URL the browser was sent back to, as pasted
// (sous connect --no-browser), into its query.
func ParseRedirect(pasted string) (url.Values, error) {
	u, err := url.Parse(strings.TrimSpace(pasted))
	if err != nil || u.RawQuery == "" {
		return nil, errors.New("paste the whole address the browser was sent to, with its code and state parameters")
	}
	return u.Query(), nil
}

// Loopback runs the flow through a listener on 127.0.0.1, as `gh auth
// login` does: the redirect URL is http://127.0.0.1:PORT/callback, show is
// given the URL to open, and the first callback with this flow's state
// finishes it (another is answered 400 and waited past). port 0 takes a
// free one; set it when the app's redirect URL must match exactly. It
// gives up when ctx ends.
func Loopback(ctx context.Context, conn *connector.Connection, spec *connector.ConnectionSpec, client *http.Client,
	port int, show func(authURL string)) (*oauth2.Token, error) {
	ln, err := listenLoopback(port)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	f, err := NewFlow(conn, spec, "http://"+ln.Addr().String()+"/callback")
	if err != nil {
		return nil, err
	}
	f.Client = client
	p, err := f.Start()
	if err != nil {
		return nil, err
	}
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		tok, err := f.Finish(r.Context(), p, r.URL.Query())
		if errors.Is(err, ErrStateMismatch) || errors.Is(err, ErrUsed) {
			http.Error(w, "This answer is not for the authorization in progress.", http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, "The connection was not authorized: "+err.Error(), http.StatusBadRequest)
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = fmt.Fprintf(w, "Sous: connection %s is authorized. You can close this window.\n", conn.Name)
		}
		select {
		case done <- result{tok, err}:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		// gracefully: the browser's answer is written out before the
		// listener goes (Close could cut it, and the browser saw nothing)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	show(p.URL)
	select {
	case r := <-done:
		return r.tok, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("connection %s: no answer from the browser: %w", conn.Name, ctx.Err())
	}
}

// Config is the flow's OAuth app and endpoints, which also refresh the
// connection's tokens (see Source).
func (f *Flow) Config() *oauth2.Config { return f.conf }
