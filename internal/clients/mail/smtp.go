package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"

	gomail "github.com/wneessen/go-mail"

	"github.com/sous-run/sous/engine/connector"
)

// NewSMTPClient is a go-mail client for an smtp connection: its TLS mode
// (implicit TLS, STARTTLS required, or none for local servers), and its
// login: XOAUTH2 with the oauth_connection's token, or the password (PLAIN
// or LOGIN, as the server offers; over an unencrypted connection only with
// tls: none; PLAIN with implicit TLS), or none without a username. ctx
// is the send's: when it ends, the client's connection is closed. It
// first waits for the connection's rate limit.
func NewSMTPClient(ctx context.Context, cfg Config) (*gomail.Client, error) {
	if err := cfg.wait(ctx, "smtp"); err != nil {
		return nil, err
	}
	tlsConfig := cfg.tlsConfig()
	// go-mail bounds the dial by ctx, not the SMTP exchange after it: the
	// connection is closed when ctx ends, which ends any read or write
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{Timeout: DialTimeout}
		conn, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		if cfg.TLS == TLSImplicit {
			tc := tls.Client(conn, tlsConfig)
			if err := tc.HandshakeContext(dctx); err != nil {
				_ = conn.Close()
				return nil, err
			}
			conn = tc
		}
		context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(DialTimeout), gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(dial)}
	switch cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	switch {
	case cfg.OAuth != "":
		tok, err := cfg.Token(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthXOAUTH2), gomail.WithUsername(cfg.Username), gomail.WithPassword(tok))
	case cfg.Username != "":
		auth := gomail.SMTPAuthAutoDiscover
		switch cfg.TLS {
		case TLSNone:
			auth = gomail.SMTPAuthPlainNoEnc
		case TLSImplicit:
			// the dialer above makes the TLS connection, so go-mail does
			// not know it is encrypted and its discovery would refuse
			// PLAIN and LOGIN; PLAIN itself sees the TLS connection
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("smtp connection %s: %w", cfg.Name, err))
	}
	return c, nil
}

// SMTPError classifies a failed send: a 4xx reply is retryable, a 5xx
// permanent (535, authentication refused, with reason auth), a server
// that cannot be reached or does not answer in time retryable.
func SMTPError(cfg Config, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("smtp connection %s (%s): %w", cfg.Name, cfg.Addr(), err)
	var se *gomail.SendError
	code := 0
	if errors.As(err, &se) {
		code = se.ErrorCode()
	}
	var te *textproto.Error
	if code == 0 && errors.As(err, &te) {
		code = te.Code
	}
	var ne net.Error
	switch {
	case code == 535 || code == 534 || code == 530 || errors.Is(err, gomail.ErrSMTPAuthMethodIsNil):
		return connector.Permanent(connector.ReasonAuth, err)
	case code >= 500:
		return connector.Permanent(connector.ReasonClientError, err)
	case code >= 400:
		return connector.Retryable(connector.ReasonServerError, 0, err)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return connector.Retryable(connector.ReasonTimeout, 0, err)
	case se != nil && se.IsTemp():
		return connector.Retryable(connector.ReasonServerError, 0, err)
	}
	return connector.Retryable(connector.ReasonNetwork, 0, err)
}
