package service

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/recipes"
)

// TestAccessToken: a connection whose type logs in with another
// connection's token (ConnectionSpec.TokenFrom, imap's oauth_connection)
// gets that connection's current token, static or stored by `sous
// connect`; a reference to a connection without a token of its own, or to
// itself, is an error naming both.
func TestAccessToken(t *testing.T) {
	reg := connector.NewRegistry()
	require.NoError(t, reg.AddConnection(&connector.ConnectionSpec{Type: "app", Summary: "an OAuth provider",
		Fields: []connector.Field{connector.TokenField("a token"), connector.OAuthField(nil, "https://auth.test/a", "https://auth.test/t")},
		OAuth:  &connector.OAuthSpec{}}))
	require.NoError(t, reg.AddConnection(&connector.ConnectionSpec{Type: "mailbox", Summary: "logs in with another's token",
		Fields: []connector.Field{{Name: "via", Type: connector.String, Description: "the connection to log in with"}}, TokenFrom: "via"}))
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte(`connections:
  static: {type: app, token: static-access-token}
  stored: {type: app, oauth: {client_id: cid, client_secret: csecret}}
  bare: {type: mailbox}
  by_static: {type: mailbox, via: static}
  by_stored: {type: mailbox, via: stored}
  by_mailbox: {type: mailbox, via: by_static}
  by_self: {type: mailbox, via: by_self}
  by_nothing: {type: mailbox, via: nowhere}
`), func(string) (string, bool) { return "", false }, reg)
	require.False(t, diags.HasErrors(), "%v", diags)
	dir := t.TempDir()
	svc, err := Open(context.Background(), Options{Config: cfg, RecipesDir: t.TempDir(), Listen: "127.0.0.1:0", DataDir: dir,
		Settings: testSettings(), Registry: reg})
	require.NoError(t, err)
	t.Cleanup(svc.closeAll)
	v, err := svc.conns.Vault()
	require.NoError(t, err)
	require.NoError(t, v.Put(context.Background(), "stored",
		&oauth2.Token{AccessToken: "stored-access-token", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}, oauth.Meta{}))

	for _, tc := range []struct{ name, want, err string }{
		{"static", "static-access-token", ""},
		{"stored", "stored-access-token", ""},
		{"by_static", "static-access-token", ""},
		{"by_stored", "stored-access-token", ""},
		{"by_mailbox", "", `connection by_mailbox: via "by_static" must name a connection with a token of its own`},
		{"by_self", "", `connection by_self: via "by_self" must name a connection with a token of its own`},
		{"by_nothing", "", "connection by_nothing: via: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // built, then from the cache
				c, err := svc.conns.Connection(tc.name)
				if tc.err != "" {
					require.ErrorContains(t, err, tc.err)
					continue
				}
				require.NoError(t, err)
				require.NotNil(t, c.AccessToken)
				got, err := c.AccessToken(context.Background())
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
			}
		})
	}
	t.Run("a connection without a token has none", func(t *testing.T) {
		c, err := svc.conns.Connection("bare")
		require.NoError(t, err)
		require.Nil(t, c.AccessToken)
	})
}
