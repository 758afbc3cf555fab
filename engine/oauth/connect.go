package oauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
)

// Connected is what Save recorded of a connection just authorized.
type Connected struct {
	// Account is who the connection acts as ("" when the type has no
	// identity call, or it failed).
	Account string
	// Scopes are the scopes recorded: those the provider granted, else
	// those requested.
	Scopes []string
	// IdentityErr is the failure of the identity call, if it failed: the
	// token is stored all the same.
	IdentityErr error
}

// Save finishes an authorization the way `sous connect` and `sous serve`
// (GET /oauth/callback) both do: it makes the type's identity call with the
// token just obtained (over base; the default transport when nil), and
// stores the token encrypted with its account, the identifiers the type
// needs beside it (Atlassian's cloud id) and its scopes (GrantedScopes),
// then records connection.connected in the audit log by actor, with the
// account and via ("through sous serve") in its detail. A failed identity
// call does not fail Save: it is returned in Connected.IdentityErr.
func Save(ctx context.Context, v *Vault, conn *connector.Connection, spec *connector.ConnectionSpec, tok *oauth2.Token,
	base http.RoundTripper, actor, via string) (Connected, error) {
	var requested []string
	if block, ok := conn.Values[connector.ConnOAuth].(map[string]any); ok {
		if l, ok := block[connector.OAuthScopes].([]any); ok {
			for _, s := range l {
				requested = append(requested, fmt.Sprint(s))
			}
		}
	}
	out := Connected{Scopes: GrantedScopes(tok, requested)}
	meta := Meta{Type: conn.Type, Scopes: out.Scopes, RefreshedAt: time.Now()}
	if spec.Identity != nil {
		id, err := identify(ctx, conn, spec, tok, base)
		if err != nil {
			out.IdentityErr = fmt.Errorf("connection %s: %w", conn.Name, err)
		} else {
			out.Account, meta.Account, meta.Extra = id.Account, id.Account, id.Extra
		}
	}
	if err := v.put(ctx, nil, actor, conn.Name, tok, meta); err != nil {
		return out, err
	}
	var detail []string
	if out.Account != "" {
		detail = append(detail, "acts as "+out.Account)
	}
	if via != "" {
		detail = append(detail, via)
	}
	// the audit log failing does not undo the connection
	_ = v.Audit(context.WithoutCancel(ctx), actor, "connection.connected", conn.Name, strings.Join(detail, "; "))
	return out, nil
}

// identify makes the type's identity call with tok as a bearer token,
// through the connection's rate limit.
func identify(ctx context.Context, conn *connector.Connection, spec *connector.ConnectionSpec, tok *oauth2.Token,
	base http.RoundTripper) (*connector.Identity, error) {
	own := *spec
	own.Authorize = func(connector.Values) (connector.Authorize, error) {
		return connector.BearerAuthorize(tok.AccessToken), nil
	}
	cl, err := connector.NewClient(conn, &own, base, connector.ClientHooks{})
	if err != nil {
		return nil, err
	}
	cl.Token = func(context.Context) (string, error) { return tok.AccessToken, nil }
	return spec.Identity(ctx, cl, conn.Values)
}

// GrantedScopes are the scopes of a token response's `scope` (RFC 6749
// §5.1: space-separated; Slack separates them with commas) when it has
// one, else requested.
func GrantedScopes(tok *oauth2.Token, requested []string) []string {
	s, _ := tok.Extra("scope").(string)
	granted := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	if len(granted) == 0 {
		return requested
	}
	return granted
}
