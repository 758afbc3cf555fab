package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/internal/httpx"
)

// pendingTTL is how long an authorization started at /oauth/NAME/start
// waits for its callback.
const pendingTTL = 10 * time.Minute

// pendingFlow is an authorization started and not finished, by its state.
type pendingFlow struct {
	flow    *oauth.Flow
	pending *oauth.Pending
	conn    *connector.Connection
	spec    *connector.ConnectionSpec
	actor   string
	expires time.Time
}

// flows holds the authorizations in progress in this process: the
// callback must come back to the process that started it.
type flows struct {
	mu sync.Mutex
	m  map[string]*pendingFlow
}

func (f *flows) put(state string, p *pendingFlow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*pendingFlow{}
	}
	for k, v := range f.m {
		if time.Now().After(v.expires) {
			delete(f.m, k)
		}
	}
	f.m[state] = p
}

// take removes and returns the flow of a state, if it has not expired.
func (f *flows) take(state string) *pendingFlow {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.m[state]
	delete(f.m, state)
	if p == nil || time.Now().After(p.expires) {
		return nil
	}
	return p
}

// callbackURL is where the provider sends the browser back: this server,
// as the request that started the flow reached it.
func callbackURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/oauth/callback"
}

// oauthStart begins the authorization of a connection's OAuth app (GET
// /oauth/NAME/start, behind an API key): it answers the address to send
// the person's browser to.
func (s *Server) oauthStart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.cfg.Connection == nil || s.cfg.Vault == nil {
		writeError(w, http.StatusNotFound, "not_found", "this server has no connections")
		return
	}
	conn, err := s.cfg.Connection(name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no connection %q in the config", name))
		return
	}
	spec, ok := s.cfg.Registry.Connection(conn.Type)
	if !ok || !oauth.UsesOAuth(conn, spec) {
		writeError(w, http.StatusBadRequest, "no_oauth_app", fmt.Sprintf("connection %s has no OAuth app to authorize", name))
		return
	}
	flow, err := oauth.NewFlow(conn, spec, callbackURL(r))
	var p *oauth.Pending
	if err == nil {
		p, err = flow.Start()
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "no_oauth_app", err.Error())
		return
	}
	u, _ := url.Parse(p.URL)
	s.flows.put(u.Query().Get("state"), &pendingFlow{flow: flow, pending: p, conn: conn, spec: spec, actor: "api:" + keyName(r.Context()),
		expires: time.Now().Add(pendingTTL)})
	writeJSON(w, http.StatusOK, map[string]any{"authorize_url": p.URL, "expires_in": int(pendingTTL.Seconds()),
		"redirect_uri": callbackURL(r)})
}

// oauthCallback finishes an authorization (GET /oauth/callback): the state
// names the flow, which is used once; the token is stored encrypted.
func (s *Server) oauthCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := s.flows.take(q.Get("state"))
	if p == nil {
		writeError(w, http.StatusBadRequest, "unknown_state", "no authorization in progress has this state: start again")
		return
	}
	tok, err := p.flow.Finish(r.Context(), p.pending, q)
	if err != nil {
		code := "not_authorized"
		if errors.Is(err, oauth.ErrStateMismatch) || errors.Is(err, oauth.ErrUsed) {
			code = "unknown_state"
		}
		writeError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	v, err := s.cfg.Vault()
	var saved oauth.Connected
	if err == nil {
		// as sous connect does: who it acts as, its scopes, the audit entry
		saved, err = oauth.Save(r.Context(), v, p.conn, p.spec, tok, &httpx.Transport{}, p.actor, "through sous serve")
	}
	if err != nil {
		s.log.Error("store a token", "connection", p.conn.Name, "error", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the token could not be stored: start again")
		return
	}
	if saved.IdentityErr != nil {
		s.log.Warn("the identity call failed: `sous connections test` tries again", "connection", p.conn.Name, "error", saved.IdentityErr)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "Sous: connection %s is authorized. You can close this window.\n", p.conn.Name)
}
