package outlook

import (
	"fmt"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/microsoft"
)

// Field names of outlook.email_received.
const (
	FieldUser               = "user"
	FieldFolder             = "folder"
	FieldFrom               = "from"
	FieldSubjectContains    = "subject_contains"
	FieldHasAttachments     = "has_attachments"
	FieldIncludeAttachments = "include_attachments"
	FieldMaxAttachmentBytes = "max_attachment_bytes"
	FieldBodyType           = "body_type"
	FieldPollInterval       = "poll_interval"
)

// DefaultMaxAttachmentBytes is the largest attachment whose content an
// event carries by default; MaxAttachmentBytes bounds the option, so that
// Graph's answer (base64, a third larger) stays under the client's 10 MiB.
const (
	DefaultMaxAttachmentBytes = 5 << 20
	MaxAttachmentBytes        = 7 << 20
)

var (
	leaf = connector.Leaf
	p    = connector.P
)

var attachmentShape = connector.Obj(
	p("filename", leaf(connector.String, "The file name (as email.received names it)")),
	p("name", leaf(connector.String, "The file name, as Graph names it")),
	p("content_type", leaf(connector.String, "The MIME type, e.g. application/pdf")),
	p("size", leaf(connector.Int, "The size in bytes, as Graph reports it")),
	p("inline", leaf(connector.Bool, "Whether it is an inline attachment (an image in the HTML body)")),
	p("content_base64", leaf(connector.String, "The content, base64; only with include_attachments, and not when larger than max_attachment_bytes")),
	p("omitted", leaf(connector.Bool, "True when include_attachments is set but the content was left out (too large, or not a file)")),
)

func addresses(desc string) *connector.Shape {
	return connector.ListOf(leaf(connector.String, "An address"), desc)
}

// EmailReceived is the spec of outlook.email_received.
var EmailReceived = &connector.Spec{
	ID: "outlook.email_received", Kind: connector.KindTrigger, Summary: "New mail arrived in an Outlook folder (Microsoft Graph)",
	Description: "Polls a mail folder (inbox by default) with Graph's message list, oldest first: " +
		"$filter=receivedDateTime ge the cursor, $orderby=receivedDateTime asc, pages followed by @odata.nextLink. The first " +
		"poll remembers the folder's newest message and starts no run for the mail already there; each later message " +
		"starts one run, once, even across restarts (the cursor, the last receivedDateTime and the ids seen at it, is saved " +
		"with the events; the message id is the dedup key). A message moved into the folder with an older receivedDateTime " +
		"than the cursor is not seen. from, subject_contains and has_attachments filter the messages. Attachments' names, " +
		"types and sizes are listed for messages that have some; their content, base64, only with include_attachments.",
	Connection: microsoft.Connection.Type, ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldUser, Type: connector.String, Example: "ada@contoso.com",
			Description: "The user whose mailbox is watched (a user id or principal name, through users/{user}/); the connection's own (me) when not set"},
		{Name: FieldFolder, Type: connector.String, Default: "inbox", Example: "inbox",
			Description: "The mail folder: a well-known name (inbox, archive, junkemail, sentitems...) or a folder id"},
		{Name: FieldFrom, Type: connector.String, Example: "@example.com",
			Description: "Only messages whose sender (address or name) contains this, ignoring case"},
		{Name: FieldSubjectContains, Type: connector.String, Example: "invoice",
			Description: "Only messages whose subject contains this, ignoring case"},
		{Name: FieldHasAttachments, Type: connector.Bool, Default: false, Description: "Only messages with at least one attachment"},
		{Name: FieldIncludeAttachments, Type: connector.Bool, Default: false,
			Description: "Fetch the attachments' content (base64) into the event, up to max_attachment_bytes each"},
		{Name: FieldMaxAttachmentBytes, Type: connector.Int, Default: int64(DefaultMaxAttachmentBytes),
			Check: func(v any) error {
				if n := v.(int64); n < 1 || n > MaxAttachmentBytes {
					return fmt.Errorf("must be 1 to %d", MaxAttachmentBytes)
				}
				return nil
			},
			Description: "The largest attachment whose content the event carries; larger ones keep name, type and size"},
		{Name: FieldBodyType, Type: connector.String, Default: "html", Enum: []string{"html", "text"},
			Description: "The body Graph returns: html (the event's html) or text (the event's text), through Prefer: outlook.body-content-type"},
		{Name: FieldPollInterval, Type: connector.Duration, Default: "1m", Description: "How often to check the folder"},
	},
	Shape: connector.Obj(
		p("id", leaf(connector.String, "Graph's message id (changes when the message is moved to another folder)")),
		p("message_id", leaf(connector.String, "The internetMessageId (Message-ID), without angle brackets")),
		p("from", leaf(connector.String, "The sender's address")),
		p("from_name", leaf(connector.String, "The sender's display name")),
		p("to", addresses("The To addresses")),
		p("cc", addresses("The Cc addresses")),
		p("reply_to", addresses("The Reply-To addresses")),
		p("subject", leaf(connector.String, "The subject")),
		p("date", leaf(connector.String, "When the message was received (receivedDateTime), RFC 3339 in UTC")),
		p("sent_date", leaf(connector.String, "When it was sent (sentDateTime), RFC 3339 in UTC")),
		p("text", leaf(connector.String, "The body, when Graph gave it as text (body_type: text)")),
		p("html", leaf(connector.String, "The body, when Graph gave it as HTML (body_type: html)")),
		p("preview", leaf(connector.String, "The first 255 characters of the body, as text (bodyPreview)")),
		p("has_attachments", leaf(connector.Bool, "Whether it has attachments")),
		p("attachments", connector.ListOf(attachmentShape, "The attachments")),
		p("is_read", leaf(connector.Bool, "Whether it was read when polled")),
		p("web_link", leaf(connector.String, "The message in Outlook on the web")),
		p("conversation_id", leaf(connector.String, "The conversation (thread) id")),
		p("folder", leaf(connector.String, "The folder watched")),
	),
}

func init() {
	EmailReceived.Trigger = &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: connector.PollerFunc(poll),
		Interval: func(with connector.Values) time.Duration { return with.Duration(FieldPollInterval) }}
	connector.Register(EmailReceived)
}
