package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
// changed. A refresh the provider refuses with invalid_grant marks the
// connection needs_reauth, and every call fails permanently with reason
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
}

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
		s.cached = tok
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
			s.cached = tok
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
		s.cached = tok
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
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			msg := "the provider refused the refresh (invalid_grant): run `sous connect " + s.Connection + "`"
			s.refreshed("refused")
			why := "was refused a refresh by the provider (invalid_grant)"
			s.audit(ctx, "connection.needs_reauth", "the provider refused the refresh (invalid_grant)")
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
		if err := s.Vault.Put(ctx, s.Connection, fresh, meta); err != nil {
			// the provider may have rotated the refresh token: not saving
			// the new one loses the connection, so the call fails
			return nil, connector.Retryable(connector.ReasonServerError, 0,
				fmt.Errorf("connection %s: save the refreshed token: %w", s.Connection, err))
		}
	}
	s.refreshed("ok")
	s.audit(ctx, "connection.refreshed", "")
	s.cached = fresh
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
// token, whatever type the provider named it (Slack's "bot").
func (s *Source) Authorize(req *http.Request) error {
	tok, err := s.Token(req.Context())
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}
