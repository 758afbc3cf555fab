package email_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/triggers/email"
)

const latin1 = "From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>\r\n" +
	"To: a@example.com, \"B\" <b@example.com>\r\n" +
	"Subject: =?ISO-8859-1?Q?caf=E9?=\r\n" +
	"Message-ID: <abc@example.com>\r\n" +
	"Content-Type: text/plain; charset=ISO-8859-1\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
	"caf=E9 cr=E8me\r\n"

const withInlineImage = "From: a@example.com\r\nSubject: pic\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/related; boundary=XX\r\n\r\n" +
	"--XX\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:1\">\r\n" +
	"--XX\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <1>\r\n\r\niVBORw0KGgo=\r\n" +
	"--XX\r\nContent-Type: application/pdf; name=\"big.pdf\"\r\nContent-Disposition: attachment; filename=\"big.pdf\"\r\n\r\n0123456789abcdef\r\n" +
	"--XX--\r\n"

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		limit int64
		check func(t *testing.T, m *email.Message)
	}{
		{"latin-1, quoted-printable, encoded words", latin1, 100, func(t *testing.T, m *email.Message) {
			require.Equal(t, "andre@example.com", m.From)
			require.Equal(t, "André", m.FromName)
			require.Equal(t, "café", m.Subject)
			require.Equal(t, "café crème\r\n", m.Text)
			require.Equal(t, []string{"a@example.com", "b@example.com"}, m.To)
			require.Equal(t, "abc@example.com", m.MessageID)
			require.Empty(t, m.Attachments)
		}},
		{"inline image and an attachment over the limit", withInlineImage, 10, func(t *testing.T, m *email.Message) {
			require.Equal(t, "<img src=\"cid:1\">", m.HTML)
			require.Len(t, m.Attachments, 2)
			png := m.Attachments[0]
			require.Equal(t, "image/png", png.ContentType)
			require.True(t, strings.HasPrefix(png.Filename, "attachment"))
			b, _ := base64.StdEncoding.DecodeString(png.ContentBase64)
			require.Equal(t, "\x89PNG\r\n\x1a\n", string(b))
			pdf := m.Attachments[1]
			require.Equal(t, "big.pdf", pdf.Filename)
			require.Equal(t, pdf.Filename, pdf.Name, "name is filename again")
			require.EqualValues(t, 16, pdf.Size)
			require.True(t, pdf.Omitted)
			require.Empty(t, pdf.ContentBase64)
		}},
		{"headers only", "Subject: x\r\n\r\n", 10, func(t *testing.T, m *email.Message) {
			require.Equal(t, "x", m.Subject)
			require.Equal(t, "", m.Text)
		}},
		{"a bad From keeps its text", "From: not an address\r\nSubject: y\r\n\r\nbody", 10, func(t *testing.T, m *email.Message) {
			require.Equal(t, "not an address", m.From)
			require.Equal(t, "body", m.Text)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := email.ParseMessage([]byte(tt.raw), tt.limit)
			require.NoError(t, err)
			tt.check(t, m)
		})
	}
}

// FuzzParseMessage: any bytes give a message or an error, never a panic,
// and a message always encodes as the event's JSON.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(latin1))
	f.Add([]byte(withInlineImage))
	f.Add([]byte("Subject: x\r\n\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: x-weird\r\n\r\nabc"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := email.ParseMessage(raw, 64)
		if m == nil {
			require.Error(t, err)
			return
		}
		_, err = json.Marshal(m)
		require.NoError(t, err)
		for _, a := range m.Attachments {
			if !a.Omitted {
				b, err := base64.StdEncoding.DecodeString(a.ContentBase64)
				require.NoError(t, err)
				require.EqualValues(t, a.Size, len(b))
			}
		}
	})
}
