package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/time/rate"

	"github.com/sous-run/sous/engine/connector"
)

// Config is what an imap or smtp connection says about its server and
// login, read from the connection's values.
type Config struct {
	// Name is the connection's name, for errors.
	Name     string
	Host     string
	Port     int
	TLS      string // TLSImplicit, TLSStartTLS or TLSNone
	Username string
	Password string
	// OAuth names the connection whose access token logs in (XOAUTH2).
	OAuth string
	// AccessToken gives that token (Connection.AccessToken).
	AccessToken func(ctx context.Context) (string, error)
	// TLSConfig, when set, replaces the default TLS configuration (a test
	// server's own CA); its ServerName is set to Host when empty.
	TLSConfig *tls.Config
	// Limiter is the connection's rate_limit (its client's), waited for
	// before each dial: an IMAP session, an SMTP send. nil: none.
	Limiter *rate.Limiter
}

// wait waits for the connection's rate limit, if it has one.
func (c Config) wait(ctx context.Context, what string) error {
	if c.Limiter == nil || c.Limiter.Allow() {
		return nil
	}
	if err := c.Limiter.Wait(ctx); err != nil {
		return connector.Retryable(connector.ReasonRateLimited, 0,
			fmt.Errorf("%s connection %s: waiting for its rate limit: %w", what, c.Name, err))
	}
	return nil
}

// ConfigOf reads a connection's values; defaultPort applies when the
// values have none.
func ConfigOf(c *connector.Connection, defaultPort int) Config {
	cfg := Config{Name: c.Name, Host: c.Values.String(FieldHost), Port: int(c.Values.Int(FieldPort)),
		TLS: TLSMode(c.Values.String(FieldTLS)), Username: c.Values.String(FieldUsername), Password: c.Values.String(FieldPassword),
		OAuth: c.Values.String(FieldOAuth), AccessToken: c.AccessToken}
	if cfg.Port == 0 {
		cfg.Port = defaultPort
	}
	if c.Client != nil {
		cfg.Limiter = c.Client.Limiter
	}
	return cfg
}

// Addr is host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

func (c Config) tlsConfig() *tls.Config {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSConfig != nil {
		t = c.TLSConfig.Clone()
	}
	if t.ServerName == "" {
		t.ServerName = c.Host
	}
	return t
}

// Token is the XOAUTH2 access token of a connection that sets
// oauth_connection. A connection whose runtime gave it no token source
// fails permanently, with reason auth.
func (c Config) Token(ctx context.Context) (string, error) {
	if c.AccessToken == nil {
		return "", connector.Permanent(connector.ReasonAuth,
			fmt.Errorf("connection %s: oauth_connection %q gives no access token (is it an oauth connection that was connected?)", c.Name, c.OAuth))
	}
	tok, err := c.AccessToken(ctx)
	if err != nil {
		return "", fmt.Errorf("connection %s: access token of %s: %w", c.Name, c.OAuth, err)
	}
	return tok, nil
}

// DialTimeout bounds a dial and its TLS handshake.
const DialTimeout = 30 * time.Second

// DialIMAP connects to an imap connection's server in its TLS mode and
// logs in (XOAUTH2 with oauth_connection, LOGIN with the password
// otherwise), after waiting for the connection's rate limit. opts may be
// nil. The client is closed when ctx ends before the login is done. Errors are classified: a refused login is permanent
// (auth), a network failure retryable.
func DialIMAP(ctx context.Context, cfg Config, opts *imapclient.Options) (*imapclient.Client, error) {
	if opts == nil {
		opts = &imapclient.Options{}
	}
	if err := cfg.wait(ctx, "imap"); err != nil {
		return nil, err
	}
	o := *opts
	o.TLSConfig = cfg.tlsConfig()
	d := &net.Dialer{Timeout: DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr())
	if err != nil {
		return nil, NetError(fmt.Errorf("imap connection %s: dial %s: %w", cfg.Name, cfg.Addr(), err))
	}
	// a dial's context ends the handshake and login too
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	var c *imapclient.Client
	switch cfg.TLS {
	case TLSNone:
		c = imapclient.New(raw, &o)
	case TLSStartTLS:
		if c, err = imapclient.NewStartTLS(raw, &o); err != nil {
			_ = raw.Close()
			return nil, NetError(fmt.Errorf("imap connection %s: starttls: %w", cfg.Name, err))
		}
	default:
		conn := tls.Client(raw, o.TLSConfig)
		if err := conn.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, NetError(fmt.Errorf("imap connection %s: tls: %w", cfg.Name, err))
		}
		c = imapclient.New(conn, &o)
	}
	if err := c.WaitGreeting(); err != nil {
		_ = c.Close()
		return nil, NetError(fmt.Errorf("imap connection %s: greeting: %w", cfg.Name, err))
	}
	if cfg.OAuth != "" {
		tok, err := cfg.Token(ctx)
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		err = c.Authenticate(NewXOAuth2Client(cfg.Username, tok))
		if err != nil {
			_ = c.Close()
			return nil, loginError(cfg, "XOAUTH2", err)
		}
	} else if err := c.Login(cfg.Username, cfg.Password).Wait(); err != nil {
		_ = c.Close()
		return nil, loginError(cfg, "login", err)
	}
	if ctx.Err() != nil {
		_ = c.Close()
		return nil, ctx.Err()
	}
	return c, nil
}

// loginError classifies a refused login as a permanent auth error and
// anything else (the connection dropped) as a network one.
func loginError(cfg Config, how string, err error) error {
	err = fmt.Errorf("imap connection %s: %s as %q refused: %w", cfg.Name, how, cfg.Username, err)
	var ie *imap.Error
	if errors.As(err, &ie) {
		return connector.Permanent(connector.ReasonAuth, err)
	}
	return NetError(err)
}

// NetError classifies a failure to reach a server: a timeout is retryable
// with reason timeout, anything else with reason network.
func NetError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return connector.Retryable(connector.ReasonTimeout, 0, err)
	}
	return connector.Retryable(connector.ReasonNetwork, 0, err)
}
