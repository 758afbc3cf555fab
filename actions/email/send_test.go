package email_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/actions/email"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/mail"
	"github.com/sous-run/sous/internal/clients/mail/mailtest"
)

func call(t *testing.T, ctx context.Context, values connector.Values, with map[string]any, key string) (map[string]any, error) {
	t.Helper()
	w, err := connectortest.With(email.Send, with)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, err)
	}
	return email.Send.Action.Run(ctx, &connector.Request{Recipe: "r", RunID: "run-1", Step: "mail", With: w, IdempotencyKey: key,
		Connection: &connector.Connection{Name: "outbox", Type: "smtp", Values: values}})
}

// received is a message as read back from its source.
type received struct {
	header      gomessage.Header
	text, html  string
	attachments map[string][]byte
	types       map[string]string
}

func parse(t *testing.T, raw []byte) *received {
	t.Helper()
	mr, err := gomessage.CreateReader(bytes.NewReader(raw))
	require.NoError(t, err)
	r := &received{header: mr.Header, attachments: map[string][]byte{}, types: map[string]string{}}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch h := p.Header.(type) {
		case *gomessage.InlineHeader:
			ct, _, _ := h.ContentType()
			if ct == "text/html" {
				r.html = string(b)
			} else {
				r.text = string(b)
			}
		case *gomessage.AttachmentHeader:
			name, _ := h.Filename()
			ct, _, _ := h.ContentType()
			r.attachments[name], r.types[name] = b, ct
		}
	}
	return r
}

// TestSendMailpit: a message sent to a real SMTP server (mailpit) arrives
// with its recipients, both bodies, its attachments byte for byte (from
// content, content_base64 and a url), its headers and the Message-ID
// derived from the step's idempotency key.
func TestSendMailpit(t *testing.T) {
	pit := mailtest.StartMailpit(t)
	pdf := make([]byte, 300_000)
	_, _ = rand.Read(pdf)
	png := make([]byte, 5000)
	_, _ = rand.Read(png)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/report.pdf" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(pdf)
	}))
	defer files.Close()
	with := map[string]any{
		"from": "Sous <sous@example.com>", "to": []any{"alice@example.com", "Bob <bob@example.com>"},
		"cc": "carol@example.com", "bcc": []any{"audit@example.com"}, "reply_to": "support@example.com",
		"subject": "Report ✓", "text": "plain body", "html": "<p>html body</p>",
		"headers": map[string]any{"X-Ticket": "OPS-42"},
		"attachments": []any{
			map[string]any{"filename": "notes.txt", "content": "line 1\nline 2\n"},
			map[string]any{"filename": "pixel.png", "content_base64": base64.StdEncoding.EncodeToString(png), "content_type": "image/png"},
			map[string]any{"url": files.URL + "/files/report.pdf"},
		},
	}
	out, err := call(t, t.Context(), pit.Values(), with, "run-1/mail")
	require.NoError(t, err)
	require.NoError(t, connectortest.Conforms(email.Send.Shape, out))
	id := out["message_id"].(string)
	require.Equal(t, email.MessageID("run-1/mail", "sous@example.com"), id)
	require.True(t, strings.HasSuffix(id, "@example.com"))
	require.Equal(t, []any{"alice@example.com", "bob@example.com", "carol@example.com", "audit@example.com"}, out["accepted"])

	var msgs []mailtest.Summary
	require.Eventually(t, func() bool { msgs = pit.Messages(t); return len(msgs) == 1 }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, id, msgs[0].MessageID)
	raw := pit.Raw(t, msgs[0].ID)
	got := parse(t, raw)
	to, _ := got.header.AddressList("To")
	require.Len(t, to, 2)
	require.Equal(t, "bob@example.com", to[1].Address)
	cc, _ := got.header.AddressList("Cc")
	require.Equal(t, "carol@example.com", cc[0].Address)
	// mailpit adds the envelope's other recipients as a Bcc header of its
	// own (the fake in TestSendXOAuth2 shows that none is sent)
	require.Equal(t, "audit@example.com", got.header.Get("Bcc"))
	require.Contains(t, got.header.Get("Reply-To"), "support@example.com")
	subj, _ := got.header.Subject()
	require.Equal(t, "Report ✓", subj)
	require.Equal(t, "OPS-42", got.header.Get("X-Ticket"))
	mid, _ := got.header.MessageID()
	require.Equal(t, id, mid)
	require.Equal(t, "plain body", strings.TrimRight(got.text, "\r\n"))
	require.Equal(t, "<p>html body</p>", strings.TrimRight(got.html, "\r\n"))
	require.Equal(t, "line 1\nline 2\n", strings.ReplaceAll(string(got.attachments["notes.txt"]), "\r\n", "\n"))
	require.Equal(t, png, got.attachments["pixel.png"], "byte for byte")
	require.Equal(t, "image/png", got.types["pixel.png"])
	require.Equal(t, pdf, got.attachments["report.pdf"], "byte for byte, from the url")
	require.Equal(t, "application/pdf", got.types["report.pdf"])

	// mailpit saw the Bcc recipient in the envelope
	var detail struct {
		Bcc []struct{ Address string } `json:"Bcc"`
	}
	resp, err := http.Get(pit.API + "/api/v1/message/" + msgs[0].ID)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&detail))
	resp.Body.Close()
	require.Len(t, detail.Bcc, 1)
	require.Equal(t, "audit@example.com", detail.Bcc[0].Address)

	// a retried step sends the same Message-ID; another step another one
	out2, err := call(t, t.Context(), pit.Values(), map[string]any{"to": "x@example.com", "subject": "s", "text": "t", "from": "sous@example.com"}, "run-1/mail")
	require.NoError(t, err)
	require.Equal(t, id, out2["message_id"])
	out3, err := call(t, t.Context(), pit.Values(), map[string]any{"to": "x@example.com", "subject": "s", "text": "t", "from": "sous@example.com"}, "run-2/mail")
	require.NoError(t, err)
	require.NotEqual(t, id, out3["message_id"])
}

// TestSendErrors: SMTP replies and failures map to the error kinds.
func TestSendErrors(t *testing.T) {
	fake := mailtest.StartSMTPFake(t)
	base := map[string]any{"to": "alice@example.com", "subject": "s", "text": "t"}
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone.bin" {
			http.NotFound(w, r)
			return
		}
		for range 8 { // 32 KiB, no Content-Length
			_, _ = w.Write(make([]byte, 4096))
			w.(http.Flusher).Flush()
		}
	}))
	defer big.Close()
	tests := []struct {
		name   string
		stage  string
		code   int
		with   map[string]any
		values func() connector.Values
		reason connector.Reason
		retry  bool
	}{
		{name: "451 at RCPT is retryable", stage: "rcpt", code: 451, reason: connector.ReasonServerError, retry: true},
		{name: "421 at MAIL is retryable", stage: "mail", code: 421, reason: connector.ReasonServerError, retry: true},
		{name: "554 at DATA is permanent", stage: "data", code: 554, reason: connector.ReasonClientError},
		{name: "550 unknown recipient is permanent", with: map[string]any{"to": "reject@example.com"}, reason: connector.ReasonClientError},
		{name: "535 is auth", values: func() connector.Values {
			v := fake.Values()
			v[mail.FieldPassword] = "wrong-secret"
			return v
		}, reason: connector.ReasonAuth},
		{name: "connection refused is retryable", values: func() connector.Values {
			v := fake.Values()
			v[mail.FieldPort] = int64(mailtest.FreePort(t))
			return v
		}, reason: connector.ReasonNetwork, retry: true},
		{name: "no body is invalid", with: map[string]any{"text": ""}, reason: connector.ReasonInvalid},
		{name: "bad address is invalid", with: map[string]any{"to": "not an address"}, reason: connector.ReasonInvalid},
		{name: "an attachment url past max_url_bytes is invalid", with: map[string]any{"max_url_bytes": 10_000,
			"attachments": []any{map[string]any{"url": big.URL + "/big.bin"}}}, reason: connector.ReasonInvalid},
		{name: "an attachment url answering 404 is not_found", with: map[string]any{
			"attachments": []any{map[string]any{"url": big.URL + "/gone.bin"}}}, reason: connector.ReasonNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.stage != "" {
				fake.SetFail(tt.stage, tt.code, "test failure")
				defer fake.SetFail(tt.stage, 0, "")
			}
			with := map[string]any{}
			for k, v := range base {
				with[k] = v
			}
			for k, v := range tt.with {
				with[k] = v
			}
			values := fake.Values()
			if tt.values != nil {
				values = tt.values()
			}
			_, err := call(t, t.Context(), values, with, "k")
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tt.reason, ce.Reason, "%v", err)
			require.Equal(t, tt.retry, ce.Retryable, "%v", err)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

// TestSendXOAuth2: with oauth_connection, the login is XOAUTH2 with the
// connection's access token; without a token source it fails with auth.
func TestSendXOAuth2(t *testing.T) {
	fake := mailtest.StartSMTPFake(t)
	values := fake.Values()
	delete(values, mail.FieldPassword)
	values[mail.FieldOAuth] = "google"
	w, err := connectortest.With(email.Send, map[string]any{"to": "alice@example.com", "bcc": "hidden@example.com", "subject": "s", "text": "t"})
	require.NoError(t, err)
	conn := &connector.Connection{Name: "outbox", Type: "smtp", Values: values,
		AccessToken: func(context.Context) (string, error) { return fake.Token, nil }}
	out, err := email.Send.Action.Run(t.Context(), &connector.Request{With: w, Connection: conn, IdempotencyKey: "x"})
	require.NoError(t, err)
	require.Equal(t, []string{mail.XOAuth2}, fake.Logins())
	require.Len(t, fake.Messages(), 1)
	require.Contains(t, string(fake.Messages()[0]), "Message-ID: <"+out["message_id"].(string)+">")
	require.NotContains(t, string(fake.Messages()[0]), "hidden@example.com", "Bcc is not sent as a header")

	conn.AccessToken = nil
	_, err = email.Send.Action.Run(t.Context(), &connector.Request{With: w, Connection: conn, IdempotencyKey: "x"})
	require.ErrorContains(t, err, `connection outbox: oauth_connection "google" gives no access token`)
	require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason)
	require.False(t, connector.Classify(err).Retryable)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		msg  string
	}{
		{"bad to", map[string]any{"to": []any{"a@example.com", 3}, "subject": "s", "text": "t"}, "3 is not an address"},
		{"two contents", map[string]any{"to": "a@example.com", "subject": "s", "text": "t",
			"attachments": []any{map[string]any{"filename": "a", "content": "x", "content_base64": "eA=="}}}, "set one of content"},
		{"bad url", map[string]any{"to": "a@example.com", "subject": "s", "text": "t",
			"attachments": []any{map[string]any{"url": "ftp://x/y"}}}, "is not an http(s) URL"},
		{"unknown key", map[string]any{"to": "a@example.com", "subject": "s", "text": "t",
			"attachments": []any{map[string]any{"filename": "a", "content": "x", "mime": "y"}}}, `unknown key "mime"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := connectortest.With(email.Send, tt.with)
			require.ErrorContains(t, err, tt.msg)
		})
	}
}
