package mail_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gomail "github.com/wneessen/go-mail"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
	"github.com/sous-run/sous/internal/clients/mail/mailtest"
)

// TestIMAPTLSModes: implicit TLS and STARTTLS against go-imap's server
// with a certificate the client trusts; an untrusted certificate fails.
func TestIMAPTLSModes(t *testing.T) {
	cert := mailtest.SelfSigned(t)
	tests := []struct {
		name     string
		implicit bool
		mode     string
	}{
		{"implicit", true, mail.TLSImplicit},
		{"starttls", false, mail.TLSStartTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := mailtest.StartMemIMAPTLS(t, cert, tt.implicit)
			cfg := mem.Config()
			cfg.TLS, cfg.TLSConfig = tt.mode, cert.Client
			c, err := mail.DialIMAP(t.Context(), cfg, nil)
			require.NoError(t, err)
			require.NoError(t, c.Noop().Wait())
			_ = c.Logout().Wait()

			cfg.TLSConfig = nil // the system's roots: the test certificate is not among them
			_, err = mail.DialIMAP(t.Context(), cfg, nil)
			require.ErrorContains(t, err, "certificate")
			require.True(t, connector.Classify(err).Retryable)
		})
	}
}

// TestSMTPTLSModes: STARTTLS and implicit TLS to mailpit with a
// certificate the client trusts, with a password login over TLS.
func TestSMTPTLSModes(t *testing.T) {
	cert := mailtest.SelfSigned(t)
	tests := []struct {
		name string
		mode string
		flag string
		// what a plain-text client gets: a 530 (permanent), or no greeting
		// until its context ends (retryable)
		plainRetryable bool
	}{
		{"starttls", mail.TLSStartTLS, "--smtp-require-starttls", false},
		{"implicit", mail.TLSImplicit, "--smtp-require-tls", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pit := mailtest.StartMailpit(t, "--smtp-tls-cert", cert.CertFile, "--smtp-tls-key", cert.KeyFile, tt.flag)
			cfg := pit.Config()
			cfg.TLS, cfg.TLSConfig = tt.mode, cert.Client
			c, err := mail.NewSMTPClient(t.Context(), cfg)
			require.NoError(t, err)
			m := gomail.NewMsg()
			require.NoError(t, m.From("sender@example.com"))
			require.NoError(t, m.To("alice@example.com"))
			m.Subject("over " + tt.name)
			m.SetBodyString(gomail.TypeTextPlain, "hello")
			require.NoError(t, c.DialAndSendWithContext(t.Context(), m))
			require.Eventually(t, func() bool {
				msgs := pit.Messages(t)
				return len(msgs) == 1 && msgs[0].Subject == "over "+tt.name
			}, 5*time.Second, 20*time.Millisecond)

			// plain text to a server that requires TLS is refused
			cfg.TLS = mail.TLSNone
			// (a plain client waits for a greeting a TLS server never sends:
			// the context ends the wait)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			c, err = mail.NewSMTPClient(ctx, cfg)
			require.NoError(t, err)
			start := time.Now()
			err = mail.SMTPError(cfg, c.DialAndSendWithContext(ctx, m))
			require.Error(t, err)
			require.Equal(t, tt.plainRetryable, connector.Classify(err).Retryable, "%v", err)
			require.Less(t, time.Since(start), 10*time.Second)
		})
	}
}
