package mail_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
	"github.com/sous-run/sous/internal/clients/mail/mailtest"
)

func TestDialIMAP(t *testing.T) {
	dove := mailtest.StartDovecot(t)
	mem := mailtest.StartMemIMAP(t)
	token := func(tok string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return tok, nil }
	}
	closed := mailtest.FreePort(t)
	tests := []struct {
		name   string
		cfg    func() mail.Config
		reason connector.Reason // "" for success
		retry  bool
		msg    string
	}{
		{name: "dovecot password", cfg: dove.Config},
		{name: "dovecot wrong password", cfg: func() mail.Config { c := dove.Config(); c.Password = "nope-secret"; return c },
			reason: connector.ReasonAuth, msg: "login as \"bob\" refused"},
		{name: "xoauth2", cfg: func() mail.Config {
			c := mem.Config()
			c.Password, c.OAuth, c.AccessToken = "", "google", token(mem.Token)
			return c
		}},
		{name: "xoauth2 refused token", cfg: func() mail.Config {
			c := mem.Config()
			c.OAuth, c.AccessToken = "google", token("ya29.revoked-secret")
			return c
		}, reason: connector.ReasonAuth, msg: "XOAUTH2 as \"bob\" refused"},
		{name: "xoauth2 without a token source", cfg: func() mail.Config {
			c := mem.Config()
			c.OAuth = "google"
			return c
		}, reason: connector.ReasonAuth, msg: "connection test: oauth_connection \"google\" gives no access token"},
		{name: "connection refused", cfg: func() mail.Config { c := dove.Config(); c.Port = closed; return c },
			reason: connector.ReasonNetwork, retry: true, msg: "dial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := mail.DialIMAP(t.Context(), tt.cfg(), nil)
			if tt.reason == "" {
				require.NoError(t, err)
				require.NoError(t, c.Noop().Wait())
				require.NoError(t, c.Logout().Wait())
				return
			}
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tt.reason, ce.Reason, "%v", err)
			require.Equal(t, tt.retry, ce.Retryable, "%v", err)
			require.Contains(t, err.Error(), tt.msg)
			require.NotContains(t, err.Error(), "secret")
		})
	}
	require.Equal(t, 1, mem.XOAuth2, "one XOAUTH2 login accepted")
}

func TestTokenError(t *testing.T) {
	cfg := mail.Config{Name: "inbox", OAuth: "google", AccessToken: func(context.Context) (string, error) {
		return "", connector.Permanent(connector.ReasonAuth, errors.New("needs_reauth"))
	}}
	_, err := cfg.Token(t.Context())
	require.ErrorContains(t, err, "connection inbox: access token of google: needs_reauth")
	require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason)
}
