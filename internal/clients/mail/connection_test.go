package mail_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
)

// TestTLSAliases: the tls field takes plain, false and off for none, ssl,
// tls and true for implicit (a YAML boolean too), and the connection reads
// them as their mode; another word is refused.
func TestTLSAliases(t *testing.T) {
	for _, spec := range []*connector.ConnectionSpec{mail.IMAP, mail.SMTP} {
		f, ok := spec.Field(mail.FieldTLS)
		require.True(t, ok)
		for _, tc := range []struct {
			in   any
			want string
		}{
			{"implicit", mail.TLSImplicit}, {"starttls", mail.TLSStartTLS}, {"none", mail.TLSNone},
			{"plain", mail.TLSNone}, {"false", mail.TLSNone}, {false, mail.TLSNone}, {"off", mail.TLSNone},
			{"ssl", mail.TLSImplicit}, {"tls", mail.TLSImplicit}, {"true", mail.TLSImplicit}, {true, mail.TLSImplicit},
		} {
			t.Run(spec.Type+"/"+connectorString(tc.in), func(t *testing.T) {
				v, err := f.CheckValue(tc.in)
				require.NoError(t, err)
				conn := &connector.Connection{Name: "m", Type: spec.Type,
					Values: connector.Values{mail.FieldHost: "mail.test", mail.FieldTLS: v}}
				require.Equal(t, tc.want, mail.ConfigOf(conn, 25).TLS)
			})
		}
		_, err := f.CheckValue("maybe")
		require.ErrorContains(t, err, "is not one of")
	}
}

func connectorString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v.(bool) {
		return "yaml-true"
	}
	return "yaml-false"
}

// TestRateLimit: an imap or smtp connection's rate_limit is its client's
// limiter, waited for before each dial: past it, a dial that would wait
// beyond its deadline fails as rate_limited, retryable, without dialing.
func TestRateLimit(t *testing.T) {
	for _, spec := range []*connector.ConnectionSpec{mail.IMAP, mail.SMTP} {
		t.Run(spec.Type, func(t *testing.T) {
			f, _ := spec.Field(connector.ConnRateLimit)
			v, err := f.CheckValue("1/h")
			require.NoError(t, err)
			conn := &connector.Connection{Name: "m", Type: spec.Type,
				Values: connector.Values{mail.FieldHost: "127.0.0.1", mail.FieldPort: int64(1), mail.FieldTLS: mail.TLSNone, connector.ConnRateLimit: v}}
			cl, err := connector.NewClient(conn, spec, nil, connector.ClientHooks{})
			require.NoError(t, err)
			conn.Client = cl
			cfg := mail.ConfigOf(conn, 25)
			require.Same(t, cl.Limiter, cfg.Limiter)
			require.True(t, cfg.Limiter.Allow(), "the one call of the hour")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if spec == mail.IMAP {
				_, err = mail.DialIMAP(ctx, cfg, nil)
			} else {
				_, err = mail.NewSMTPClient(ctx, cfg)
			}
			require.ErrorContains(t, err, "waiting for its rate limit")
			ce := connector.Classify(err)
			require.Equal(t, connector.ReasonRateLimited, ce.Reason)
			require.True(t, ce.Retryable)
		})
	}
}
