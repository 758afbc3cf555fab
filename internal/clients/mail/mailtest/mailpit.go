package mailtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Mailpit is a mailpit (github.com/axllent/mailpit) a test started: an
// SMTP server that keeps what it receives, read back over its HTTP API.
type Mailpit struct {
	Server
	// API is the base URL of its HTTP API.
	API string
}

// MailpitVersion is the version scripts/test-services.sh installs.
const MailpitVersion = "v1.33.1"

// StartMailpit starts a mailpit of the test's own, its SMTP server
// accepting any login over plain text, its database in a temporary
// folder; it stops when the test ends. extra are more flags.
func StartMailpit(t testing.TB, extra ...string) *Mailpit {
	t.Helper()
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(string(bytes.TrimSpace(out)), "bin"))
	}
	bin := findBinary(t, "mailpit", dirs...)
	dir := t.TempDir()
	m := &Mailpit{Server: Server{Host: "127.0.0.1", Port: FreePort(t), User: "sender@example.com", Password: "pw-" + strconv.Itoa(os.Getpid()), Dir: dir,
		Log: filepath.Join(dir, "mailpit.log")}}
	httpPort := FreePort(t)
	m.API = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	args := []string{"--smtp", m.Addr(), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--database", filepath.Join(dir, "mailpit.db"), "--smtp-auth-accept-any", "--disable-version-check", "--quiet"}
	if !slices.Contains(extra, "--smtp-tls-cert") {
		// a login over plain text (mailpit refuses this flag with TLS)
		args = append(args, "--smtp-auth-allow-insecure")
	}
	args = append(args, extra...)
	logf, err := os.Create(m.Log)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(m.Log)
			t.Logf("mailpit log:\n%s", b)
		}
	})
	output := func() string { b, _ := os.ReadFile(m.Log); return string(b) }
	waitListening(t, m.Addr(), exited, output)
	waitListening(t, "127.0.0.1:"+strconv.Itoa(httpPort), exited, output)
	return m
}

// Summary is a message as mailpit lists it.
type Summary struct {
	ID        string `json:"ID"`
	MessageID string `json:"MessageID"`
	Subject   string `json:"Subject"`
}

// Messages lists what mailpit received, newest first.
func (m *Mailpit) Messages(t testing.TB) []Summary {
	t.Helper()
	var list struct {
		Messages []Summary `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(m.get(t, "/api/v1/messages"), &list))
	return list.Messages
}

// Raw is a received message's source, as it arrived.
func (m *Mailpit) Raw(t testing.TB, id string) []byte {
	t.Helper()
	return m.get(t, "/api/v1/message/"+id+"/raw")
}

func (m *Mailpit) get(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := http.Get(m.API + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "mailpit %s: %s", path, b)
	return b
}

// String names the server for messages.
func (m *Mailpit) String() string { return fmt.Sprintf("mailpit smtp %s api %s", m.Addr(), m.API) }
