package email_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
	"github.com/sous-run/sous/internal/clients/mail/mailtest"
	"github.com/sous-run/sous/triggers/email"
)

// Msg builds a message; attachments are name -> content.
func Msg(t testing.TB, from, subject, text string, attachments map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{{Name: "Alice Sender", Address: from}})
	h.SetAddressList("To", []*gomail.Address{{Address: "bob@example.com"}, {Address: "carol@example.com"}})
	h.SetAddressList("Cc", []*gomail.Address{{Address: "dave@example.com"}})
	h.SetSubject(subject)
	h.SetDate(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	h.SetMessageID(fmt.Sprintf("%d.%s@example.com", time.Now().UnixNano(), "test"))
	h.SetMsgIDList("In-Reply-To", []string{"parent@example.com"})
	w, err := gomail.CreateWriter(&buf, h)
	require.NoError(t, err)
	iw, err := w.CreateInline()
	require.NoError(t, err)
	for ct, body := range map[string]string{"text/plain": text, "text/html": "<p>" + text + "</p>"} {
		var ih gomail.InlineHeader
		ih.SetContentType(ct, map[string]string{"charset": "utf-8"})
		pw, err := iw.CreatePart(ih)
		require.NoError(t, err)
		_, _ = pw.Write([]byte(body))
		require.NoError(t, pw.Close())
	}
	require.NoError(t, iw.Close())
	for name, content := range attachments {
		var ah gomail.AttachmentHeader
		ah.SetContentType("application/octet-stream", nil)
		ah.SetFilename(name)
		aw, err := w.CreateAttachment(ah)
		require.NoError(t, err)
		_, _ = aw.Write(content)
		require.NoError(t, aw.Close())
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// poller polls email.received as the engine does: the cursor each poll
// returns is the next one's.
type poller struct {
	t      *testing.T
	conn   *connector.Connection
	with   connector.Values
	cursor json.RawMessage
}

func newPoller(t *testing.T, values connector.Values, with map[string]any) *poller {
	w := connector.Values{}
	for _, f := range email.Received.Fields {
		if f.Default != nil {
			w[f.Name] = f.Default
		}
	}
	for k, v := range with {
		w[k] = v
	}
	return &poller{t: t, conn: &connector.Connection{Name: "inbox", Type: "imap", Values: values}, with: w}
}

func (p *poller) poll(ctx context.Context) (*connector.PollResult, error) {
	res, err := email.Received.Trigger.Poller.Poll(ctx, &connector.PollRequest{Type: email.Received.ID, With: p.with,
		Connection: p.conn, Cursor: p.cursor, Logger: slog.Default()})
	if err == nil && res.Next != nil {
		p.cursor = res.Next
	}
	return res, err
}

func (p *poller) mustPoll() *connector.PollResult {
	p.t.Helper()
	res, err := p.poll(p.t.Context())
	require.NoError(p.t, err)
	return res
}

func subjects(res *connector.PollResult) []string {
	var out []string
	for _, ev := range res.Events {
		out = append(out, ev.Payload["subject"].(string))
	}
	return out
}

// TestPollDovecot: against a real Dovecot, the first poll replays
// nothing, each new message is one event with its fields, the filters
// choose, and mark_seen and move_to act once the events are stored.
func TestPollDovecot(t *testing.T) {
	dove := mailtest.StartDovecot(t)
	dove.Append(t, "INBOX", Msg(t, "old@example.com", "old mail", "old", nil))
	dove.Create(t, "Processed")

	t.Run("new mail only, once each", func(t *testing.T) {
		p := newPoller(t, dove.Values(), map[string]any{email.FieldIdle: false})
		res := p.mustPoll()
		require.Empty(t, res.Events, "the first poll replays nothing")
		require.False(t, res.More)
		pdf := make([]byte, 70_000)
		_, _ = rand.Read(pdf)
		dove.Append(t, "INBOX", Msg(t, "alice@example.com", "first", "hello", nil))
		dove.Append(t, "INBOX", Msg(t, "alice@example.com", "second", "again", map[string][]byte{"report.pdf": pdf}))
		res = p.mustPoll()
		require.Equal(t, []string{"first", "second"}, subjects(res))
		ev := res.Events[1].Payload
		require.Equal(t, "alice@example.com", ev["from"])
		require.Equal(t, "Alice Sender", ev["from_name"])
		require.Equal(t, []any{"bob@example.com", "carol@example.com"}, ev["to"])
		require.Equal(t, []any{"dave@example.com"}, ev["cc"])
		require.Equal(t, "again", ev["text"])
		require.Equal(t, "<p>again</p>", ev["html"])
		require.Equal(t, "parent@example.com", ev["in_reply_to"])
		require.Equal(t, "2026-12-07T10:00:00Z", ev["date"])
		require.Equal(t, "INBOX", ev["mailbox"])
		require.NotEmpty(t, ev["message_id"])
		atts := ev["attachments"].([]any)
		require.Len(t, atts, 1)
		a := atts[0].(map[string]any)
		require.Equal(t, "report.pdf", a["filename"])
		require.EqualValues(t, len(pdf), a["size"])
		got, err := base64.StdEncoding.DecodeString(a["content_base64"].(string))
		require.NoError(t, err)
		require.Equal(t, pdf, got, "the attachment byte for byte")
		require.Equal(t, fmt.Sprintf("%v:%v", ev["uidvalidity"], ev["uid"]), res.Events[1].DedupKey)
		require.Empty(t, p.mustPoll().Events, "nothing twice")
		require.EqualValues(t, 3, *dove.Status(t, "INBOX").NumUnseen, "read without flagging them seen")
	})

	t.Run("filters", func(t *testing.T) {
		tests := []struct {
			name string
			with map[string]any
			want []string
		}{
			{"from address", map[string]any{email.FieldFrom: "@Partner.example"}, []string{"from partner"}},
			{"from name", map[string]any{email.FieldFrom: "alice sender"}, []string{"from partner", "Invoice 42", "with file"}},
			{"subject", map[string]any{email.FieldSubjectContains: "INVOICE"}, []string{"Invoice 42"}},
			{"attachments", map[string]any{email.FieldHasAttachments: true}, []string{"with file"}},
		}
		polls := make([]*poller, len(tests))
		for i, tt := range tests {
			tt.with[email.FieldIdle] = false
			polls[i] = newPoller(t, dove.Values(), tt.with)
			polls[i].mustPoll()
		}
		dove.Append(t, "INBOX", Msg(t, "x@partner.example", "from partner", "a", nil))
		dove.Append(t, "INBOX", Msg(t, "y@example.com", "Invoice 42", "b", nil))
		dove.Append(t, "INBOX", Msg(t, "z@example.com", "with file", "c", map[string][]byte{"a.txt": []byte("data")}))
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := polls[i].mustPoll()
				want := map[string]bool{}
				for _, s := range tt.want {
					want[s] = true
				}
				got := map[string]bool{}
				for _, s := range subjects(res) {
					got[s] = true
				}
				require.Equal(t, want, got)
			})
		}
	})

	t.Run("mark_seen and move_to after the events are stored", func(t *testing.T) {
		p := newPoller(t, dove.Values(), map[string]any{email.FieldIdle: false, email.FieldMarkSeen: true, email.FieldMoveTo: "Processed"})
		p.mustPoll()
		before := *dove.Status(t, "INBOX").NumMessages
		dove.Append(t, "INBOX", Msg(t, "alice@example.com", "to move", "m", nil))
		res := p.mustPoll()
		require.Equal(t, []string{"to move"}, subjects(res))
		require.EqualValues(t, before+1, *dove.Status(t, "INBOX").NumMessages, "not moved before its event is stored")
		var cur email.Cursor
		require.NoError(t, json.Unmarshal(p.cursor, &cur))
		require.Len(t, cur.Pending, 1)
		require.Empty(t, p.mustPoll().Events)
		require.EqualValues(t, before, *dove.Status(t, "INBOX").NumMessages, "moved at the next poll")
		moved := dove.Status(t, "Processed")
		require.EqualValues(t, 1, *moved.NumMessages)
		require.EqualValues(t, 0, *moved.NumUnseen, "marked seen")
	})
}

// TestIdle: with IDLE, a poll that finds nothing waits in it, and a new
// message ends it within a few seconds (Dovecot announces EXISTS in about
// half a second), well before poll_interval.
func TestIdle(t *testing.T) {
	dove := mailtest.StartDovecot(t)
	p := newPoller(t, dove.Values(), map[string]any{email.FieldPollInterval: time.Minute})
	res := p.mustPoll()
	require.True(t, res.More, "with IDLE the poller comes back at once")
	type out struct {
		res *connector.PollResult
		err error
	}
	done := make(chan out, 1)
	start := time.Now()
	go func() { r, err := p.poll(t.Context()); done <- out{r, err} }()
	time.Sleep(500 * time.Millisecond) // let it enter IDLE (not an assertion)
	dove.Append(t, "INBOX", Msg(t, "alice@example.com", "pushed", "p", nil))
	var got out
	require.Eventually(t, func() bool {
		select {
		case got = <-done:
			return true
		default:
			return false
		}
	}, 5*time.Second, 10*time.Millisecond, "IDLE gives the message within 5 s")
	require.NoError(t, got.err)
	require.Equal(t, []string{"pushed"}, subjects(got.res))
	require.True(t, got.res.More)
	t.Logf("the message arrived %s after the poll began", time.Since(start).Round(time.Millisecond))

	// a cancelled poll ends its IDLE at once
	ctx, cancel := context.WithCancel(t.Context())
	go func() { r, err := p.poll(ctx); done <- out{r, err} }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case got = <-done:
		require.ErrorIs(t, got.err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled poll goes on idling")
	}
}

// TestUIDValidityDovecot: a mailbox deleted and created again (a new
// UIDVALIDITY) is not replayed.
func TestUIDValidityDovecot(t *testing.T) {
	dove := mailtest.StartDovecot(t)
	dove.Create(t, "Watched")
	p := newPoller(t, dove.Values(), map[string]any{email.FieldIdle: false, email.FieldMailbox: "Watched"})
	p.mustPoll()
	dove.Append(t, "Watched", Msg(t, "a@example.com", "one", "1", nil))
	require.Equal(t, []string{"one"}, subjects(p.mustPoll()))
	var was email.Cursor
	require.NoError(t, json.Unmarshal(p.cursor, &was))

	time.Sleep(1100 * time.Millisecond) // Dovecot's UIDVALIDITY is a time in seconds
	dove.Recreate(t, "Watched")
	for i := range 3 {
		dove.Append(t, "Watched", Msg(t, "a@example.com", fmt.Sprintf("restored %d", i), "r", nil))
	}
	res := p.mustPoll()
	require.Empty(t, res.Events, "a new UIDVALIDITY replays nothing")
	var now email.Cursor
	require.NoError(t, json.Unmarshal(p.cursor, &now))
	require.NotEqual(t, was.UIDValidity, now.UIDValidity)
	dove.Append(t, "Watched", Msg(t, "a@example.com", "after", "a", nil))
	require.Equal(t, []string{"after"}, subjects(p.mustPoll()))
}

// TestMemServer: against go-imap's in-memory server, a UIDVALIDITY set by
// the test, and an XOAUTH2 login through the connection's AccessToken.
func TestMemServer(t *testing.T) {
	mem := mailtest.StartMemIMAP(t)
	values := mem.Values()
	delete(values, mail.FieldPassword)
	values[mail.FieldOAuth] = "google"
	p := newPoller(t, values, map[string]any{email.FieldIdle: false})
	p.conn.AccessToken = func(context.Context) (string, error) { return mem.Token, nil }
	p.mustPoll()
	mem.Append(t, "INBOX", Msg(t, "a@example.com", "over xoauth2", "x", nil))
	require.Equal(t, []string{"over xoauth2"}, subjects(p.mustPoll()))
	require.Equal(t, 2, mem.XOAuth2)

	// the mailbox deleted and created again: the server gives it the
	// next UIDVALIDITY, and its mail is not replayed
	var was email.Cursor
	require.NoError(t, json.Unmarshal(p.cursor, &was))
	require.NoError(t, mem.Mem.Delete("INBOX"))
	require.NoError(t, mem.Mem.Create("INBOX", nil))
	mem.Append(t, "INBOX", Msg(t, "a@example.com", "old in new", "x", nil))
	require.Empty(t, p.mustPoll().Events)
	var cur email.Cursor
	require.NoError(t, json.Unmarshal(p.cursor, &cur))
	require.Equal(t, was.UIDValidity+1, cur.UIDValidity)
	mem.Append(t, "INBOX", Msg(t, "a@example.com", "new in new", "x", nil))
	require.Equal(t, []string{"new in new"}, subjects(p.mustPoll()))

	t.Run("no token source", func(t *testing.T) {
		p := newPoller(t, values, nil)
		_, err := p.poll(t.Context())
		require.ErrorContains(t, err, `connection inbox: oauth_connection "google" gives no access token`)
		ce := connector.Classify(err)
		require.Equal(t, connector.ReasonAuth, ce.Reason)
		require.False(t, ce.Retryable)
	})
}

// TestMissingMailbox: a mailbox that does not exist fails permanently.
func TestMissingMailbox(t *testing.T) {
	mem := mailtest.StartMemIMAP(t)
	p := newPoller(t, mem.Values(), map[string]any{email.FieldMailbox: "Nope"})
	_, err := p.poll(t.Context())
	require.ErrorContains(t, err, "select Nope")
	require.False(t, connector.Classify(err).Retryable)
}

// BenchmarkPollDovecot: one poll that finds nothing, idle off: a dial,
// LOGIN, SELECT, UID SEARCH and LOGOUT against a local Dovecot (what
// dialing per poll costs).
func BenchmarkPollDovecot(b *testing.B) {
	dove := mailtest.StartDovecot(b)
	p := &poller{conn: &connector.Connection{Name: "inbox", Type: "imap", Values: dove.Values()},
		with: connector.Values{email.FieldIdle: false, email.FieldMailbox: "INBOX"}}
	ctx := context.Background()
	if _, err := p.poll(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
