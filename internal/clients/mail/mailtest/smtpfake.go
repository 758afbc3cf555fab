package mailtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/clients/mail"
)

// SMTPFake is an in-memory SMTP server (go-smtp) whose replies a test
// sets: a reply code at MAIL, RCPT or DATA, and the logins it takes
// (PLAIN with the password, XOAUTH2 with Token).
type SMTPFake struct {
	Server
	Token string

	mu sync.Mutex
	// Fail maps a stage ("auth", "mail", "rcpt", "data") to the error it
	// answers with.
	Fail map[string]*smtp.SMTPError
	// Mechs lists the logins accepted ("PLAIN" or "XOAUTH2").
	Mechs []string
	// Received holds the messages' data.
	Received [][]byte
}

// StartSMTPFake starts an SMTP fake on a free port, stopped when the
// test ends.
func StartSMTPFake(t testing.TB) *SMTPFake {
	t.Helper()
	f := &SMTPFake{Server: Server{Host: "127.0.0.1", User: "sender@example.com", Password: "pw"}, Token: "ya29.smtp-token",
		Fail: map[string]*smtp.SMTPError{}}
	s := smtp.NewServer(f)
	s.AllowInsecureAuth = true
	s.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return f
}

// SetFail makes a stage answer with code (0 clears it).
func (f *SMTPFake) SetFail(stage string, code int, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if code == 0 {
		delete(f.Fail, stage)
		return
	}
	f.Fail[stage] = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

func (f *SMTPFake) fail(stage string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.Fail[stage]; e != nil {
		return e
	}
	return nil
}

// NewSession is the go-smtp backend.
func (f *SMTPFake) NewSession(*smtp.Conn) (smtp.Session, error) { return &fakeSession{f: f}, nil }

type fakeSession struct{ f *SMTPFake }

func (s *fakeSession) AuthMechanisms() []string { return []string{sasl.Plain, mail.XOAuth2} }

func (s *fakeSession) Auth(mech string) (sasl.Server, error) {
	if err := s.f.fail("auth"); err != nil {
		return nil, err
	}
	ok := func() error {
		s.f.mu.Lock()
		s.f.Mechs = append(s.f.Mechs, mech)
		s.f.mu.Unlock()
		return nil
	}
	refused := &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error {
			if user != s.f.User || pass != s.f.Password {
				return refused
			}
			return ok()
		}), nil
	case mail.XOAuth2:
		return &xoauth2SMTP{check: func(resp []byte) error {
			if !bytes.Equal(resp, mail.XOAuth2Response(s.f.User, s.f.Token)) {
				return refused
			}
			return ok()
		}}, nil
	}
	return nil, errors.New("unsupported mechanism")
}

type xoauth2SMTP struct{ check func([]byte) error }

func (x *xoauth2SMTP) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	return nil, true, x.check(resp)
}

func (s *fakeSession) Mail(string, *smtp.MailOptions) error { return s.f.fail("mail") }
func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "reject") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	return s.f.fail("rcpt")
}
func (s *fakeSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.f.fail("data"); err != nil {
		return err
	}
	s.f.mu.Lock()
	s.f.Received = append(s.f.Received, b)
	s.f.mu.Unlock()
	return nil
}
func (s *fakeSession) Reset()        {}
func (s *fakeSession) Logout() error { return nil }

// Messages is the data of the messages received so far.
func (f *SMTPFake) Messages() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.Received...)
}

// Logins lists the mechanisms of the logins accepted so far.
func (f *SMTPFake) Logins() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.Mechs...)
}
