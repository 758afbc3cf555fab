package oauth

import (
	"context"
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

// Leaser serialises the refreshes of a connection across the processes
// sharing a store (store.Store's LeasePoll and ReleasePoll).
type Leaser interface {
	LeasePoll(ctx context.Context, key, owner string, now time.Time, ttl time.Duration) (bool, []byte, error)
	ReleasePoll(ctx context.Context, key, owner string) error
}

// Source is the token of one connection, kept fresh: the stored token
// while it is valid; past its expiry (less x/oauth2's 10 s), one refresh
// under a lease in the store, since a rotating refresh token is single
// use: a process that does not hold the lease waits for the token the
// holder saves. A refreshed token is saved once, and only when it
// changed. A refresh the provider refuses with invalid_grant (or Slack's
// invalid_refresh_token) marks the connection needs_reauth, and every call fails permanently with reason
// auth and a message naming `sous connect NAME`.
type Source struct {
	Vault      *Vault
	Connection string
	// Refresh is the OAuth app and the provider's token endpoint (the flow's
	// config: see NewFlow's Config).
	Refresh *oauth2.Config
	// Client makes the refresh requests (the default client when nil).
	Client *http.Client
	Leases Leaser
	Owner  string // this process, in the lease
	// Actor names this process in the audit log ("serve" when empty).
	Actor string
	// Refreshed, when set, is told of each refresh this process made:
	// "ok", "refused" (invalid_grant) or "error".
	Refreshed func(conn, outcome string)
	// LeaseTTL bounds a refresh (30 s when zero); Poll is how often a
	// process that waits for another's refresh looks (100 ms when zero).
	LeaseTTL, Poll time.Duration
	// Seed, when set, stands in for a stored token the connection does not
	// have yet: a refresh token from the config (oauth.refresh_token),
	// refreshed on first use and the result stored with SeedMeta. Once a
	// token is stored, the stored one is used.
	Seed     string
	SeedMeta Meta

	mu     sync.Mutex
	cached *oauth2.Token
	meta   Meta // the metadata stored with cached
}

// deadGrant lists the error codes of a refresh that mean the refresh token
// is dead, so that only a person connecting again mends the connection:
// OAuth's invalid_grant (RFC 6749), and Slack's invalid_refresh_token
// (oauth.v2.access answers HTTP 200 with ok:false and its own codes).
var deadGrant = map[string]bool{"invalid_grant": true, "invalid_refresh_token": true}

// refreshKey is the lease of a connection's refreshes.
func refreshKey(conn string) string { return "refresh:" + conn }

// authError is the permanent auth failure of a connection that needs a
// person to connect it again.
func authError(conn, why string) error {
	return connector.Permanent(connector.ReasonAuth,
		fmt.Errorf("connection %s %s: run `sous connect %s`", conn, why, conn))
}

// Token returns a valid access token of the connection.
func (s *Source) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached.Valid() {
		return s.cached, nil
	}
	tok, meta, err := s.stored(ctx)
	if err != nil {
		return nil, err
	}
	if tok.Valid() {
		s.cached, s.meta = tok, meta
		return tok, nil
	}
	ttl, poll := s.LeaseTTL, s.Poll
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	key := refreshKey(s.Connection)
	for {
		held, _, err := s.Leases.LeasePoll(ctx, key, s.Owner, time.Now(), ttl)
		if err != nil {
			return nil, connector.Retryable(connector.ReasonServerError, 0, fmt.Errorf("connection %s: %w", s.Connection, err))
		}
		if held {
			break
		}
		// another process refreshes: wait for the token it saves
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
		if tok, meta, err = s.stored(ctx); err != nil {
			return nil, err
		}
		if tok.Valid() {
			s.cached, s.meta = tok, meta
			return tok, nil
		}
	}
	defer func() {
		_ = s.Leases.ReleasePoll(context.WithoutCancel(ctx), key, s.Owner)
	}()
	// refreshed by another process between the first read and the lease
	if tok, meta, err = s.stored(ctx); err != nil {
		return nil, err
	}
	if tok.Valid() {
		s.cached, s.meta = tok, meta
		return tok, nil
	}
	if tok.RefreshToken == "" {
		return nil, authError(s.Connection, "has an expired token and no refresh token")
	}
	rctx := ctx
	if s.Client != nil {
		rctx = context.WithValue(ctx, oauth2.HTTPClient, s.Client)
	}
	fresh, err := s.Refresh.TokenSource(rctx, tok).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && deadGrant[re.ErrorCode] {
			msg := "the provider refused the refresh (" + re.ErrorCode + "): run `sous connect " + s.Connection + "`"
			s.refreshed("refused")
			why := "was refused a refresh by the provider (" + re.ErrorCode + ")"
			s.audit(ctx, "connection.needs_reauth", "the provider refused the refresh ("+re.ErrorCode+")")
			if serr := s.Vault.SetState(context.WithoutCancel(ctx), s.Connection, StateNeedsReauth, msg); serr != nil {
				// the other processes will try the refresh too, and learn the same
				why += "; recording needs_reauth failed: " + serr.Error()
			}
			return nil, authError(s.Connection, why)
		}
		s.refreshed("error")
		return nil, connector.Retryable(connector.ReasonAuth, 0,
			fmt.Errorf("connection %s: %w", s.Connection, httpx.TokenError("refresh the token", err)))
	}
	if fresh.AccessToken != tok.AccessToken || fresh.RefreshToken != tok.RefreshToken {
		meta.RefreshedAt = time.Now()
		meta.State, meta.LastError = StateOK, ""
		actor := s.Actor
		if actor == "" {
			actor = "serve"
		}
		if err := s.Vault.put(ctx, nil, actor, s.Connection, fresh, meta); err != nil {
			// the provider may have rotated the refresh token: not saving
			// the new one loses the connection, so the call fails
			return nil, connector.Retryable(connector.ReasonServerError, 0,
				fmt.Errorf("connection %s: save the refreshed token: %w", s.Connection, err))
		}
	}
	s.refreshed("ok")
	s.audit(ctx, "connection.refreshed", "")
	s.cached, s.meta = fresh, meta
	return fresh, nil
}

// refreshed tells the Refreshed hook of a refresh's outcome.
func (s *Source) refreshed(outcome string) {
	if s.Refreshed != nil {
		s.Refreshed(s.Connection, outcome)
	}
}

// audit records what became of the connection; the audit log failing
// does not fail the call.
func (s *Source) audit(ctx context.Context, action, detail string) {
	actor := s.Actor
	if actor == "" {
		actor = "serve"
	}
	_ = s.Vault.Audit(context.WithoutCancel(ctx), actor, action, s.Connection, detail)
}

// stored reads the connection's token, failing permanently when it has
// none or needs a person to connect it again.
func (s *Source) stored(ctx context.Context) (*oauth2.Token, Meta, error) {
	tok, meta, err := s.Vault.Get(ctx, s.Connection)
	if errors.Is(err, ErrNoToken) && s.Seed != "" {
		return &oauth2.Token{RefreshToken: s.Seed, Expiry: time.Unix(1, 0)}, s.SeedMeta, nil
	}
	if errors.Is(err, ErrNoToken) {
		return nil, Meta{}, authError(s.Connection, "is not connected")
	}
	if err != nil {
		return nil, Meta{}, connector.Permanent(connector.ReasonAuth, err)
	}
	if meta.State == StateNeedsReauth {
		return nil, Meta{}, authError(s.Connection, "needs to be connected again")
	}
	return tok, meta, nil
}

// Authorize sends the connection's current access token as a bearer
// token, whatever type the provider named it (Slack's "bot"). A path
// segment {KEY} of the request is filled in with the identifier KEY stored
// beside the token (Meta.Extra, recorded by the connection's identity call
// when it was connected): a type whose API root holds one, as Atlassian's
// api.atlassian.com/ex/jira/{cloud_id}/, reaches it without its being in
// the config.
func (s *Source) Authorize(req *http.Request) error {
	tok, err := s.Token(req.Context())
	if err != nil {
		return err
	}
	if strings.Contains(req.URL.Path, "{") {
		if err := s.fillPath(req.Context(), req.URL); err != nil {
			return err
		}
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}

// fillPath replaces each path segment {KEY} of u with the stored
// identifier KEY.
func (s *Source) fillPath(ctx context.Context, u *url.URL) error {
	segs := strings.Split(u.Path, "/")
	filled := false
	for i, seg := range segs {
		if len(seg) < 3 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			continue
		}
		v, err := s.extra(ctx, seg[1:len(seg)-1])
		if err != nil {
			return err
		}
		segs[i], filled = v, true
	}
	if filled {
		u.Path, u.RawPath = strings.Join(segs, "/"), ""
	}
	return nil
}

// extra is the identifier key stored beside the connection's token: the
// one read with it, else the one stored since (`sous connections test`
// records it).
func (s *Source) extra(ctx context.Context, key string) (string, error) {
	s.mu.Lock()
	v := s.meta.Extra[key]
	s.mu.Unlock()
	if v == "" {
		if _, meta, err := s.Vault.Get(ctx, s.Connection); err == nil && meta.Extra[key] != "" {
			v = meta.Extra[key]
			s.mu.Lock()
			s.meta.Extra = meta.Extra
			s.mu.Unlock()
		}
	}
	if v == "" {
		return "", connector.Permanent(connector.ReasonAuth, fmt.Errorf(
			"connection %s has no %s stored beside its token: run `sous connections test %s` to record it (or `sous connect %s`)",
			s.Connection, key, s.Connection, s.Connection))
	}
	if v == "." || v == ".." || strings.ContainsAny(v, "/?#") {
		return "", connector.Permanent(connector.ReasonAuth, fmt.Errorf("connection %s: the stored %s is not a path segment", s.Connection, key))
	}
	return v, nil
}
