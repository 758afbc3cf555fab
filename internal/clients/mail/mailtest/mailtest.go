// Package mailtest starts the real mail servers the email tests run
// against: Dovecot (Debian's dovecot-imapd) in the foreground for IMAP,
// mailpit for SMTP (it keeps what it receives and serves it over an HTTP
// API), and go-imap's in-memory server where a test needs to set what a
// real server decides (a mailbox's UIDVALIDITY, XOAUTH2). Each server is
// the test's own, on free ports, and stops when the test ends.
//
// A test that needs Dovecot or mailpit fails when the binary is missing
// (scripts/test-services.sh installs both), and skips under -short.
package mailtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
)

// FreePort is a port nothing listens on at the moment.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// findBinary looks a server's binary up on PATH and in the given folders;
// it skips under -short and fails otherwise when it is missing.
func findBinary(t testing.TB, name string, dirs ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts %s (skipped under -short)", name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Fatalf("%s is not installed: scripts/test-services.sh installs it (looked on PATH and in %v)", name, dirs)
	return ""
}

// Server is a mail server a test started.
type Server struct {
	Host     string
	Port     int
	User     string
	Password string
	// Dir is its scratch folder (config, state, mail, log).
	Dir string
	Log string
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Values are an imap or smtp connection's values for the server (no TLS).
func (s *Server) Values() connector.Values {
	return connector.Values{mail.FieldHost: s.Host, mail.FieldPort: int64(s.Port), mail.FieldTLS: mail.TLSNone,
		mail.FieldUsername: s.User, mail.FieldPassword: s.Password}
}

// Config is the mail.Config of a connection to the server.
func (s *Server) Config() mail.Config {
	return mail.Config{Name: "test", Host: s.Host, Port: s.Port, TLS: mail.TLSNone, Username: s.User, Password: s.Password}
}

const dovecotConf = `base_dir = {{DIR}}/run
state_dir = {{DIR}}/state
log_path = {{DIR}}/dovecot.log
info_log_path = {{DIR}}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {{FIRSTUID}}
mail_location = maildir:{{DIR}}/mail/%u/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{DIR}}/users
}
userdb {
  driver = static
  args = uid={{UID}} gid={{GID}} home={{DIR}}/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{PORT}}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
{{EXTRA}}`

// StartDovecot starts a Dovecot of the test's own in the foreground
// (`dovecot -F -c conf`), with user "bob" and a maildir under a temporary
// folder, and stops it when the test ends. As root, mail belongs to
// nobody (65534), as in Debian's own setup; as another user, Dovecot runs
// as that user.
func StartDovecot(t testing.TB) *Server {
	t.Helper()
	bin := findBinary(t, "dovecot", "/usr/sbin")
	dir := t.TempDir()
	// the mail user must reach its folders
	for _, d := range []string{filepath.Dir(dir), dir} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	s := &Server{Host: "127.0.0.1", Port: FreePort(t), User: "bob", Password: "pw-" + strconv.Itoa(os.Getpid()), Dir: dir,
		Log: filepath.Join(dir, "dovecot.log")}
	uid, gid, firstUID, extra := "65534", "65534", "100", ""
	if os.Getuid() != 0 {
		u, err := user.Current()
		require.NoError(t, err)
		g, err := user.LookupGroupId(u.Gid)
		require.NoError(t, err)
		uid, gid, firstUID = u.Uid, u.Gid, u.Uid
		extra = fmt.Sprintf("default_login_user = %s\ndefault_internal_user = %s\ndefault_internal_group = %s\n", u.Username, u.Username, g.Name)
	}
	conf := strings.NewReplacer("{{DIR}}", dir, "{{PORT}}", strconv.Itoa(s.Port), "{{UID}}", uid, "{{GID}}", gid,
		"{{FIRSTUID}}", firstUID, "{{EXTRA}}", extra).Replace(dovecotConf)
	confPath := filepath.Join(dir, "dovecot.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users"), []byte(s.User+":{PLAIN}"+s.Password+"::::\n"), 0o644))
	mailDir := filepath.Join(dir, "mail")
	require.NoError(t, os.MkdirAll(mailDir, 0o755))
	if os.Getuid() == 0 {
		require.NoError(t, os.Chown(mailDir, 65534, 65534))
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-F", "-c", confPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(s.Log)
			t.Logf("dovecot output:\n%s\ndovecot log:\n%s", out.String(), b)
		}
	})
	waitListening(t, s.Addr(), exited, func() string { b, _ := os.ReadFile(s.Log); return out.String() + string(b) })
	return s
}

// waitListening waits until addr accepts connections, failing when the
// server exits first or takes more than 20 s.
func waitListening(t testing.TB, addr string, exited <-chan struct{}, output func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("the server exited at start:\n%s", output())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the server does not listen on %s after 20 s:\n%s", addr, output())
}

// Dial logs in to an IMAP server as its user.
func (s *Server) Dial(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := mail.DialIMAP(context.Background(), s.Config(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Append adds a message to a mailbox of an IMAP server, as another
// client delivering it would.
func (s *Server) Append(t testing.TB, mailbox string, msg []byte) {
	t.Helper()
	c, err := mail.DialIMAP(context.Background(), s.Config(), nil)
	require.NoError(t, err)
	defer c.Close()
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	_, err = cmd.Write(msg)
	require.NoError(t, err)
	require.NoError(t, cmd.Close())
	_, err = cmd.Wait()
	require.NoError(t, err)
	require.NoError(t, c.Logout().Wait())
}

// Create creates a mailbox.
func (s *Server) Create(t testing.TB, mailbox string) {
	t.Helper()
	c := s.Dial(t)
	require.NoError(t, c.Create(mailbox, nil).Wait())
	_ = c.Logout().Wait()
}

// Recreate deletes a mailbox and creates it again: a new UIDVALIDITY.
func (s *Server) Recreate(t testing.TB, mailbox string) {
	t.Helper()
	c := s.Dial(t)
	require.NoError(t, c.Delete(mailbox).Wait())
	require.NoError(t, c.Create(mailbox, nil).Wait())
	_ = c.Logout().Wait()
}

// Status is a mailbox's STATUS (UIDVALIDITY, UIDNEXT, MESSAGES, UNSEEN).
func (s *Server) Status(t testing.TB, mailbox string) *imap.StatusData {
	t.Helper()
	c := s.Dial(t)
	st, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true, UIDNext: true, NumMessages: true, NumUnseen: true}).Wait()
	require.NoError(t, err)
	_ = c.Logout().Wait()
	return st
}
