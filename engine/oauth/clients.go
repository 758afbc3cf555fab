package oauth

import (
	"context"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
)

// UsesOAuth reports whether a connection authenticates with its OAuth
// app's stored token: its type has a provider, it sets an oauth block, no
// static token, and nothing its type mints tokens from by itself.
func UsesOAuth(c *connector.Connection, spec *connector.ConnectionSpec) bool {
	return spec.OAuth != nil && c.Values.Has(connector.ConnOAuth) && !c.Values.Has(connector.ConnToken) &&
		(spec.OAuth.SelfMinted == nil || !spec.OAuth.SelfMinted(c.Values))
}

// Tokens is what ClientFor needs to give an OAuth connection its stored
// token: the vault (opened on first need, since the master key is read
// then), the leases that serialise refreshes, and this process's name in
// them.
type Tokens struct {
	Vault  func() (*Vault, error)
	Leases Leaser
	Owner  string
	// Base sends the refresh requests (the default transport when nil).
	Base http.RoundTripper
	// Refreshed is told of each refresh's outcome (see Source).
	Refreshed func(conn, outcome string)
}

// ClientFor builds the client of a connection of type spec (see
// connector.NewClient): with the static credentials the type describes, or,
// for an OAuth app, the stored token kept fresh by a Source.
func ClientFor(c *connector.Connection, spec *connector.ConnectionSpec, tokens Tokens, base http.RoundTripper,
	hooks connector.ClientHooks) (*connector.Client, error) {
	if UsesOAuth(c, spec) {
		v, err := tokens.Vault()
		if err != nil {
			return nil, err
		}
		flow, err := NewFlow(c, spec, "")
		if err != nil {
			return nil, err
		}
		refresh := tokens.Base
		if refresh == nil {
			refresh = http.DefaultTransport
		}
		src := &Source{Vault: v, Connection: c.Name, Refresh: flow.Config(), Leases: tokens.Leases, Owner: tokens.Owner,
			Client: &http.Client{Transport: refresh}, Refreshed: tokens.Refreshed,
			Seed: seedOf(c.Values), SeedMeta: Meta{Type: c.Type, Scopes: flow.Config().Scopes}}
		own := *spec
		own.Authorize = func(connector.Values) (connector.Authorize, error) { return src.Authorize, nil }
		cl, err := connector.NewClient(c, &own, base, hooks)
		if err != nil {
			return nil, err
		}
		cl.Token = func(ctx context.Context) (string, error) {
			t, err := src.Token(ctx)
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		}
		return cl, nil
	}
	return connector.NewClient(c, spec, base, hooks)
}

// seedOf is the refresh token a connection's config gives
// (oauth.refresh_token), or "".
func seedOf(with connector.Values) string {
	rt, _ := with.Map(connector.ConnOAuth)[connector.OAuthRefreshToken].(string)
	return rt
}
