package oauth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
)

func TestGrantedScopes(t *testing.T) {
	requested := []string{"read", "write"}
	for _, tc := range []struct {
		name  string
		scope any
		want  []string
	}{
		{"none granted: the requested", nil, requested},
		{"empty: the requested", "", requested},
		{"space-separated (RFC 6749)", "read offline_access", []string{"read", "offline_access"}},
		{"comma-separated (Slack)", "chat:write,channels:read", []string{"chat:write", "channels:read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := (&oauth2.Token{AccessToken: "a"}).WithExtra(map[string]any{"scope": tc.scope})
			require.Equal(t, tc.want, oauth.GrantedScopes(tok, requested))
		})
	}
}

// TestSaveIdentityFails: a failed identity call does not lose the token;
// it is stored with the requested scopes and no account, and the failure
// is returned.
func TestSaveIdentityFails(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		v := newVault(t, b.st, genKey(t))
		spec := oauthSpec(false)
		spec.Identity = func(context.Context, *connector.Client, connector.Values) (*connector.Identity, error) {
			return nil, errors.New("identity down")
		}
		conn := &connector.Connection{Name: "acme", Type: "acme", Values: connector.Values{
			connector.ConnOAuth: map[string]any{"client_id": "c", "scopes": []any{"read", "write"}}}}
		tok := &oauth2.Token{AccessToken: "at-1", Expiry: time.Now().Add(time.Hour)}
		got, err := oauth.Save(ctx, v, conn, spec, tok, nil, "cli:bob", "")
		require.NoError(t, err)
		require.ErrorContains(t, got.IdentityErr, "identity down")
		_, meta, err := v.Get(ctx, "acme")
		require.NoError(t, err)
		require.Empty(t, meta.Account)
		require.Equal(t, []string{"read", "write"}, meta.Scopes)
		entries, err := b.st.ListAudit(ctx, time.Now().Add(-time.Minute), 2)
		require.NoError(t, err)
		require.Equal(t, "connection.connected", entries[0].Action)
		require.Equal(t, "cli:bob", entries[0].Actor)
		require.Equal(t, "connection.created", entries[1].Action)
		require.Equal(t, "cli:bob", entries[1].Actor)
	})
}
