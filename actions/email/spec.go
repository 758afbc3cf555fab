package email

import (
	"fmt"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
)

// Field names of email.send.
const (
	FieldFrom        = "from"
	FieldTo          = "to"
	FieldCc          = "cc"
	FieldBcc         = "bcc"
	FieldReplyTo     = "reply_to"
	FieldSubject     = "subject"
	FieldText        = "text"
	FieldHTML        = "html"
	FieldAttachments = "attachments"
	FieldHeaders     = "headers"
	FieldMaxURLBytes = "max_url_bytes"
)

// Keys of an attachment.
const (
	AttFilename      = "filename"
	AttContent       = "content"
	AttContentBase64 = "content_base64"
	AttURL           = "url"
	AttContentType   = "content_type"
)

// DefaultMaxURLBytes bounds an attachment fetched from a URL.
const DefaultMaxURLBytes = 25 << 20

var recipients = "An address, or a list of them"

// Send is the spec of email.send.
var Send = &connector.Spec{
	ID: "email.send", Kind: connector.KindAction, Summary: "Send an email over SMTP",
	Description: "Builds a message with go-mail and sends it over an smtp connection (STARTTLS, implicit TLS, or none for " +
		"local servers; password or XOAUTH2 through oauth_connection). The Message-ID is derived from the run and step, " +
		"so that a retried send carries the same one and can be recognised downstream. Attachments come from content " +
		"(text), content_base64, or a url fetched with a plain HTTP client and streamed through a temporary file. An SMTP " +
		"4xx reply is retried; a 5xx fails the step (535, a refused login, with reason auth).",
	Connection: mail.SMTP.Type, ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldFrom, Type: connector.String, Example: "Sous <ops@example.com>",
			Description: "The sender; the connection's username when not set"},
		{Name: FieldTo, Type: connector.Any, Required: true, Example: []any{"alice@example.com", "Bob <bob@example.com>"},
			Check: checkAddresses, Description: "The recipients: " + recipients},
		{Name: FieldCc, Type: connector.Any, Check: checkAddresses, Example: "team@example.com", Description: "Cc: " + recipients},
		{Name: FieldBcc, Type: connector.Any, Check: checkAddresses, Example: "audit@example.com", Description: "Bcc (not in the headers): " + recipients},
		{Name: FieldReplyTo, Type: connector.String, Example: "support@example.com", Description: "The Reply-To address"},
		{Name: FieldSubject, Type: connector.String, Required: true, Example: "Build {{ event.body.id }} failed", Description: "The subject"},
		{Name: FieldText, Type: connector.String, Example: "The build failed.", Description: "The text/plain body"},
		{Name: FieldHTML, Type: connector.String, Example: "<p>The build failed.</p>",
			Description: "The text/html body; with text, the message is multipart/alternative"},
		{Name: FieldAttachments, Type: connector.List, Check: checkAttachments,
			Example:     []any{map[string]any{AttFilename: "report.csv", AttContent: "a,b\n1,2\n", AttContentType: "text/csv"}},
			Description: "Files: each {filename, content | content_base64 | url, content_type}; content_type is guessed from the name when not set"},
		{Name: FieldHeaders, Type: connector.StringMap, Example: map[string]any{"X-Ticket": "OPS-42"},
			Description: "More headers (not From, To, Cc, Bcc, Subject, Message-ID, MIME ones)"},
		{Name: FieldMaxURLBytes, Type: connector.Int, Default: int64(DefaultMaxURLBytes),
			Description: "The largest attachment fetched from a url"},
	},
	Shape: connector.Obj(
		connector.P("message_id", connector.Leaf(connector.String, "The Message-ID sent, without angle brackets")),
		connector.P("accepted", connector.ListOf(connector.Leaf(connector.String, "An address"), "The recipients the server accepted (to, cc and bcc)")),
		connector.P("size", connector.Leaf(connector.Int, "The message's size in bytes")),
	),
}

func checkAddresses(v any) error {
	_, err := addressList(v)
	return err
}

func checkAttachments(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("is not a list")
	}
	for i, a := range list {
		if _, err := attachmentOf(a); err != nil {
			return fmt.Errorf("attachment %d: %w", i+1, err)
		}
	}
	return nil
}

func init() {
	Send.Action = connector.ActionFunc(send)
	connector.Register(Send)
}
