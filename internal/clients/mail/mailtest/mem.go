package mailtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/clients/mail"
)

// MemIMAP is go-imap's in-memory IMAP server with one user, for tests
// that set what a real server decides: a mailbox's UIDVALIDITY
// (imapmemserver.NewMailbox) and an XOAUTH2 login.
type MemIMAP struct {
	Server
	// User is the server's one user; add mailboxes to it.
	Mem *imapmemserver.User
	// Token is the access token XOAUTH2 accepts for the user.
	Token string
	// XOAuth2 counts the XOAUTH2 logins accepted.
	XOAuth2 int
}

// StartMemIMAP starts an in-memory IMAP server (IDLE, MOVE, XOAUTH2 and
// plain LOGIN over an unencrypted connection) with user "bob" and an
// INBOX, stopped when the test ends.
func StartMemIMAP(t testing.TB) *MemIMAP {
	t.Helper()
	return startMem(t, nil, false)
}

// StartMemIMAPTLS is StartMemIMAP with TLS: implicit (TLS from the
// start), or STARTTLS offered on a plain connection.
func StartMemIMAPTLS(t testing.TB, cert *Cert, implicit bool) *MemIMAP {
	t.Helper()
	return startMem(t, cert.Server, implicit)
}

func startMem(t testing.TB, tlsConfig *tls.Config, implicit bool) *MemIMAP {
	t.Helper()
	m := &MemIMAP{Server: Server{Host: "127.0.0.1", User: "bob", Password: "pw"}, Token: "ya29.test-access-token"}
	m.Mem = imapmemserver.NewUser(m.User, m.Password)
	require.NoError(t, m.Mem.Create("INBOX", nil))
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &memSession{UserSession: imapmemserver.NewUserSession(m.Mem), m: m}, nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapIdle: {}, imap.CapMove: {},
			imap.CapSASLIR: {}, imap.Cap("AUTH=" + mail.XOAuth2): {}},
		InsecureAuth: tlsConfig == nil,
		TLSConfig:    tlsConfig,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if implicit {
		ln = tls.NewListener(ln, tlsConfig)
	}
	m.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return m
}

// memSession is a session of the in-memory server's one user, which
// logs in with its password or an XOAUTH2 token.
type memSession struct {
	*imapmemserver.UserSession
	m      *MemIMAP
	authed bool
}

func (s *memSession) Login(username, password string) error {
	if username != s.m.User || password != s.m.Password {
		return imapserver.ErrAuthFailed
	}
	s.authed = true
	return nil
}

func (s *memSession) AuthenticateMechanisms() []string { return []string{mail.XOAuth2} }

func (s *memSession) Authenticate(mech string) (sasl.Server, error) {
	if mech != mail.XOAuth2 {
		return nil, errors.New("unsupported mechanism")
	}
	return &xoauth2Server{s: s}, nil
}

// xoauth2Server checks the XOAUTH2 initial response; a wrong one is
// answered with the JSON challenge Gmail sends, then refused.
type xoauth2Server struct {
	s       *memSession
	refused bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.refused {
		return nil, true, imapserver.ErrAuthFailed
	}
	if bytes.Equal(resp, mail.XOAuth2Response(x.s.m.User, x.s.m.Token)) {
		x.s.authed = true
		x.s.m.XOAuth2++
		return nil, true, nil
	}
	x.refused = true
	return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
}

// Append adds a message to a mailbox of the in-memory server.
func (m *MemIMAP) Append(t testing.TB, mailbox string, msg []byte) {
	t.Helper()
	c, err := mail.DialIMAP(t.Context(), m.Config(), nil)
	require.NoError(t, err)
	defer c.Close()
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	_, err = cmd.Write(msg)
	require.NoError(t, err)
	require.NoError(t, cmd.Close())
	_, err = cmd.Wait()
	require.NoError(t, err)
}

// Addr is host:port.
func (m *MemIMAP) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }
