package outlook_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/triggers/outlook"
)

// graphMessage is a message as Graph's v1.0 list gives it.
const graphMessage = `{"@odata.etag":"W/\"CQAAABYAAAA\"","id":"AAMkAGI1AAA=","receivedDateTime":"2026-03-02T10:00:00Z",
"sentDateTime":"2026-03-02T09:59:58Z","hasAttachments":false,"internetMessageId":"<CAF=x@mail.example.com>","subject":"Hello",
"bodyPreview":"Hi there","isRead":false,"webLink":"https://outlook.office365.com/owa/?ItemID=AAMkAGI1AAA%3D",
"body":{"contentType":"text","content":"Hi there"},"sender":{"emailAddress":{"name":"Ada","address":"ada@example.com"}},
"from":{"emailAddress":{"name":"Ada","address":"ada@example.com"}},"toRecipients":[{"emailAddress":{"name":"Me","address":"me@contoso.com"}}],
"ccRecipients":[],"replyTo":[],"conversationId":"AAQkAGI1"}`

func TestParseMessage(t *testing.T) {
	m, err := outlook.ParseMessage([]byte(graphMessage))
	require.NoError(t, err)
	ev := outlook.Payload(m, "inbox", nil)
	require.NoError(t, connectortest.Conforms(outlook.EmailReceived.Shape, ev))
	require.Equal(t, "CAF=x@mail.example.com", ev["message_id"])
	require.Equal(t, "Hi there", ev["text"])
	require.Equal(t, "", ev["html"])
	require.Equal(t, "2026-03-02T09:59:58Z", ev["sent_date"])
	for _, bad := range []string{`{`, `[]`, `{"id":""}`, `{"id":"x","receivedDateTime":"soon"}`, `{"id":"x"}`} {
		_, err := outlook.ParseMessage([]byte(bad))
		require.Error(t, err, bad)
	}
}

// FuzzParseMessage: any bytes give a message whose event has the declared
// shape and encodes as JSON, or an error; never a panic.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(graphMessage))
	f.Add([]byte(`{"id":"x","receivedDateTime":"2026-03-02T10:00:00.1234567Z","from":null,"body":{"contentType":"HTML"}}`))
	f.Add([]byte(`{"id":"x","receivedDateTime":"2026-03-02T10:00:00Z","toRecipients":[{}],"internetMessageId":"<"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := outlook.ParseMessage(data)
		if err != nil {
			return
		}
		ev := outlook.Payload(m, "inbox", nil)
		if err := connectortest.Conforms(outlook.EmailReceived.Shape, ev); err != nil {
			t.Fatalf("shape: %v", err)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("encode: %v", err)
		}
	})
}
