package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/clients/mail/mailtest"
)

// mailSink records what the email recipes post: one entry per request.
type mailSink struct {
	mu   sync.Mutex
	got  []map[string]any
	seen map[string]int // by subject
}

func (s *mailSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	s.got = append(s.got, body)
	s.seen[fmt.Sprint(body["subject"])]++
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *mailSink) count(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[subject]
}

func (s *mailSink) find(subject string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.got {
		if b["subject"] == subject {
			return b
		}
	}
	return nil
}

func (s *mailSink) subjects() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.seen {
		out[k] = v
	}
	return out
}

// e2eMessage is a message with an optional binary attachment.
func e2eMessage(t *testing.T, subject string, attachment []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{{Name: "Alice", Address: "alice@example.com"}})
	h.SetAddressList("To", []*gomail.Address{{Address: "bob@example.com"}})
	h.SetSubject(subject)
	h.SetDate(time.Now())
	require.NoError(t, h.GenerateMessageID())
	w, err := gomail.CreateWriter(&buf, h)
	require.NoError(t, err)
	var ih gomail.InlineHeader
	ih.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	tw, err := w.CreateSingleInline(ih)
	require.NoError(t, err)
	_, _ = io.WriteString(tw, "body of "+subject)
	require.NoError(t, tw.Close())
	if attachment != nil {
		var ah gomail.AttachmentHeader
		ah.SetContentType("application/octet-stream", nil)
		ah.SetFilename("blob.bin")
		aw, err := w.CreateAttachment(ah)
		require.NoError(t, err)
		_, _ = aw.Write(attachment)
		require.NoError(t, aw.Close())
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// emailServe is a `sous serve` set up in a folder: config, recipes, data.
type emailServe struct {
	t                         *testing.T
	bin, dir, config, recipes string
	data, addr                string
	children                  []*child
}

func newEmailServe(t *testing.T, connections string, recipes map[string]string) *emailServe {
	t.Helper()
	s := &emailServe{t: t, bin: buildSous(t), dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "sous.yaml")
	s.recipes = filepath.Join(s.dir, "recipes")
	s.data = filepath.Join(s.dir, "data")
	s.addr = freeAddr(t)
	require.NoError(t, os.MkdirAll(s.recipes, 0o755))
	for name, src := range recipes {
		require.NoError(t, os.WriteFile(filepath.Join(s.recipes, name), []byte(src), 0o600))
	}
	require.NoError(t, os.WriteFile(s.config, []byte("log_level: warn\nconnections:\n"+connections), 0o600))
	t.Cleanup(func() {
		if t.Failed() {
			for i, c := range s.children {
				t.Logf("--- sous serve %d log:\n%s", i+1, c.output())
			}
		}
	})
	return s
}

func (s *emailServe) start() *child {
	s.t.Helper()
	c := startChild(s.t, s.bin, filepath.Join(s.dir, fmt.Sprintf("serve%d.log", len(s.children)+1)), nil,
		"serve", "--recipes", s.recipes, "--data", s.data, "--listen", s.addr, "--config", s.config)
	s.children = append(s.children, c)
	waitReady(s.t, "http://"+s.addr, c)
	return c
}

func (s *emailServe) db() *sql.DB {
	s.t.Helper()
	write, read, err := store.OpenSQLite(context.Background(), s.data)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { read.Close(); write.Close() })
	return read
}

// cursors are the email pollers' saved cursors, by UIDNEXT's presence:
// nil before both polled once.
func (s *emailServe) cursors(db *sql.DB) []map[string]any {
	rows, err := db.Query(`SELECT cursor FROM polls WHERE key LIKE 'poll:email.received:%' ORDER BY key`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var raw []byte
		if rows.Scan(&raw) != nil || len(raw) == 0 {
			return nil
		}
		var c map[string]any
		_ = json.Unmarshal(raw, &c)
		out = append(out, c)
	}
	return out
}

// validities are the UIDVALIDITY values of the pollers' cursors.
func (s *emailServe) validities(db *sql.DB) map[float64]bool {
	out := map[float64]bool{}
	for _, c := range s.cursors(db) {
		v, _ := c["uidvalidity"].(float64)
		out[v] = true
	}
	return out
}

// sinkStep posts a message's fields to the sink.
const sinkStep = `
  - id: post
    action: http.request
    connection: web
    with:
      method: POST
      url: /sink
      json:
        subject: "{{ event.subject }}"
        from: "{{ event.from }}"
        uid: "{{ event.uid }}"
        attachments: "{{ len(event.attachments) }}"
        content: "{{ len(event.attachments) > 0 ? event.attachments[0].content_base64 : '' }}"
`

// TestEmailReceivedE2E: through `sous serve` and a real Dovecot: the mail
// there before the recipe is not replayed; a new message starts a run
// within 5 s (IDLE); its attachment reaches the recipe's step byte for
// byte; mail appended while sous serve is killed with SIGKILL runs once
// after the restart; a mailbox created again (a new UIDVALIDITY) is not
// replayed; and every message runs exactly once.
func TestEmailReceivedE2E(t *testing.T) {
	dove := mailtest.StartDovecot(t)
	dove.Create(t, "Watched")
	dove.Create(t, "Recreated")
	dove.Append(t, "Watched", e2eMessage(t, "before the recipe", nil))
	sink := &mailSink{seen: map[string]int{}}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	s := newEmailServe(t, fmt.Sprintf(`  inbox:
    type: imap
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password: %s
  web:
    type: http
    base_url: %s
`, dove.Port, dove.User, dove.Password, srv.URL), map[string]string{"mail.yaml": `version: 1
name: mail-to-sink
trigger: {type: email.received, connection: inbox, with: {mailbox: Watched, poll_interval: 10m}}
steps:` + sinkStep, "recreated.yaml": `version: 1
name: recreated-to-sink
trigger: {type: email.received, connection: inbox, with: {mailbox: Recreated, poll_interval: 2s}}
steps:` + sinkStep})
	c := s.start()
	db := s.db()
	t.Cleanup(func() {
		if t.Failed() {
			rows, err := db.Query(`SELECT status, error_step, error FROM runs`)
			if err == nil {
				defer rows.Close()
				for rows.Next() {
					var st, step, msg string
					_ = rows.Scan(&st, &step, &msg)
					t.Logf("run: %s %s %s", st, step, msg)
				}
			}
			var n int
			_ = db.QueryRow(`SELECT count(*) FROM events`).Scan(&n)
			t.Logf("events: %d, cursors %v", n, s.cursors(db))
		}
	})
	require.Eventually(t, func() bool { return len(s.cursors(db)) == 2 }, 20*time.Second, 20*time.Millisecond, "the pollers seed their cursors")
	time.Sleep(300 * time.Millisecond) // lets the next poll enter IDLE; the bound below is what is asserted

	blob := make([]byte, 100_000)
	_, _ = rand.Read(blob)
	sent := time.Now()
	dove.Append(t, "Watched", e2eMessage(t, "pushed", blob))
	require.Eventually(t, func() bool { return sink.count("pushed") == 1 }, 5*time.Second, 10*time.Millisecond,
		"IDLE: a new message starts a run within 5 s (poll_interval is 10m)")
	t.Logf("a new message reached the sink %s after its APPEND", time.Since(sent).Round(time.Millisecond))
	got := sink.find("pushed")
	require.Equal(t, "alice@example.com", got["from"])
	content, err := base64.StdEncoding.DecodeString(fmt.Sprint(got["content"]))
	require.NoError(t, err)
	require.Equal(t, blob, content, "the attachment byte for byte")

	for i := range 3 {
		dove.Append(t, "Watched", e2eMessage(t, fmt.Sprintf("live %d", i), nil))
	}
	require.Eventually(t, func() bool { return sink.count("live 2") == 1 && sink.count("live 0") == 1 }, 10*time.Second, 10*time.Millisecond)

	// no run in flight at the kill (a step in flight then runs again
	// after the restart, as any step: at-least-once for its remote)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM runs WHERE status = 'succeeded'`).Scan(&n))
		return n == 4
	}, 10*time.Second, 10*time.Millisecond)
	// killed: the mail that arrives meanwhile runs after the restart, once
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	<-c.done
	for i := range 3 {
		dove.Append(t, "Watched", e2eMessage(t, fmt.Sprintf("while down %d", i), nil))
	}
	s.start()
	require.Eventually(t, func() bool {
		return sink.count("while down 0") == 1 && sink.count("while down 1") == 1 && sink.count("while down 2") == 1
	}, 20*time.Second, 20*time.Millisecond, "the mail of the downtime runs after the restart")
	dove.Append(t, "Watched", e2eMessage(t, "after restart", nil))
	require.Eventually(t, func() bool { return sink.count("after restart") == 1 }, 5*time.Second, 10*time.Millisecond)

	// a mailbox deleted and created again, with mail in it: not replayed
	// (its poller, with poll_interval 2s, sees the new UIDVALIDITY at its
	// next check: an IDLE on a deleted mailbox hears nothing of it)
	dove.Append(t, "Recreated", e2eMessage(t, "in recreated", nil))
	require.Eventually(t, func() bool { return sink.count("in recreated") == 1 }, 5*time.Second, 10*time.Millisecond)
	was := s.validities(db)
	time.Sleep(1100 * time.Millisecond) // Dovecot's UIDVALIDITY counts seconds
	dove.Recreate(t, "Recreated")
	for i := range 3 {
		dove.Append(t, "Recreated", e2eMessage(t, fmt.Sprintf("restored %d", i), nil))
	}
	require.Eventually(t, func() bool {
		for v := range s.validities(db) {
			if !was[v] {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the poller re-seeds on the new UIDVALIDITY")
	dove.Append(t, "Recreated", e2eMessage(t, "after recreate", nil))
	require.Eventually(t, func() bool { return sink.count("after recreate") == 1 }, 10*time.Second, 10*time.Millisecond)

	want := map[string]int{"pushed": 1, "live 0": 1, "live 1": 1, "live 2": 1, "while down 0": 1, "while down 1": 1,
		"while down 2": 1, "after restart": 1, "in recreated": 1, "after recreate": 1}
	var runs int
	require.Eventually(t, func() bool {
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM runs WHERE status = 'succeeded'`).Scan(&runs))
		return runs == len(want)
	}, 10*time.Second, 20*time.Millisecond, "one run per message")
	require.Equal(t, want, sink.subjects(), "each message once; nothing from before the recipe or from the recreated mailbox")
	var events, keys int
	require.NoError(t, db.QueryRow(`SELECT count(*), count(DISTINCT dedup_key) FROM events WHERE type = 'email.received'`).Scan(&events, &keys))
	require.Equal(t, len(want), events)
	require.Equal(t, len(want), keys)
}

// TestEmailSendE2E: a webhook starts a recipe whose email.send step sends
// through mailpit; mailpit received the message, and the run record holds
// the step's output (the Message-ID mailpit saw, the recipients).
func TestEmailSendE2E(t *testing.T) {
	pit := mailtest.StartMailpit(t)
	s := newEmailServe(t, fmt.Sprintf(`  outbox:
    type: smtp
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password: %s
`, pit.Port, pit.User, pit.Password), map[string]string{"send.yaml": `version: 1
name: alert-by-mail
trigger: {type: webhook.received, with: {path: /alert}}
filter: event.body.severity == "high"
steps:
  - id: mail
    action: email.send
    connection: outbox
    with:
      to: "{{ event.body.to }}"
      cc: [ops@example.com]
      subject: "Alert: {{ event.body.title }}"
      text: "{{ event.body.title }} is {{ event.body.severity }}"
      html: "<p><b>{{ event.body.title }}</b></p>"
      attachments:
        - {filename: alert.json, content: "{{ toJSON(event.body) }}", content_type: application/json}
`})
	c := s.start()
	post := func(body string) {
		resp, err := http.Post("http://"+s.addr+"/hooks/alert", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 300)
	}
	post(`{"severity":"low","title":"disk 70%","to":"alice@example.com"}`)
	post(`{"severity":"high","title":"disk full","to":"alice@example.com"}`)
	var msgs []mailtest.Summary
	require.Eventually(t, func() bool { msgs = pit.Messages(t); return len(msgs) >= 1 }, 15*time.Second, 20*time.Millisecond)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	<-c.done
	require.Len(t, msgs, 1, "the filter let one through")
	require.Equal(t, "Alert: disk full", msgs[0].Subject)
	raw := string(pit.Raw(t, msgs[0].ID))
	require.Contains(t, raw, "alice@example.com")
	require.Contains(t, raw, "ops@example.com")
	require.Contains(t, raw, "alert.json")

	db := s.db()
	var record []byte
	require.NoError(t, db.QueryRow(`SELECT record FROM runs WHERE recipe = 'alert-by-mail' AND status = 'succeeded'`).Scan(&record))
	var rec struct {
		Steps []struct {
			ID     string         `json:"id"`
			Output map[string]any `json:"output"`
		} `json:"steps"`
	}
	require.NoError(t, json.Unmarshal(record, &rec))
	require.Len(t, rec.Steps, 1)
	out := rec.Steps[0].Output
	require.Equal(t, msgs[0].MessageID, out["message_id"], "the run record holds the Message-ID mailpit received")
	require.Equal(t, []any{"alice@example.com", "ops@example.com"}, out["accepted"])
	require.NotContains(t, string(record), pit.Password, "no secret in the run record")
}
