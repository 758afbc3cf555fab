package email

import (
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
)

// Field names of email.received.
const (
	FieldMailbox            = "mailbox"
	FieldFrom               = "from"
	FieldSubjectContains    = "subject_contains"
	FieldHasAttachments     = "has_attachments"
	FieldMarkSeen           = "mark_seen"
	FieldMoveTo             = "move_to"
	FieldPollInterval       = "poll_interval"
	FieldMaxAttachmentBytes = "max_attachment_bytes"
	FieldIdle               = "idle"
)

// DefaultMaxAttachmentBytes is the largest attachment whose content an
// event carries by default.
const DefaultMaxAttachmentBytes = 5 << 20

var attachmentShape = connector.Obj(
	connector.P("filename", connector.Leaf(connector.String, "The file name (\"attachment\" plus an extension when the part names none)")),
	connector.P("name", connector.Leaf(connector.String, "The same as filename")),
	connector.P("content_type", connector.Leaf(connector.String, "The MIME type, e.g. application/pdf")),
	connector.P("size", connector.Leaf(connector.Int, "The decoded size in bytes")),
	connector.P("content_base64", connector.Leaf(connector.String, "The content, base64; absent when larger than max_attachment_bytes")),
	connector.P("omitted", connector.Leaf(connector.Bool, "True when the content was larger than max_attachment_bytes and left out")),
)

// Received is the spec of email.received.
var Received = &connector.Spec{
	ID: "email.received", Kind: connector.KindTrigger, Summary: "New mail arrived in an IMAP mailbox",
	Description: "Watches a mailbox over an imap connection. The first poll remembers the mailbox's UIDNEXT and starts " +
		"no run for the mail already there; each later message starts one run, once, even across restarts (the cursor, " +
		"UIDVALIDITY and UIDNEXT, is saved with the events). When the server offers IDLE, a new message starts a run " +
		"within about a second; otherwise the mailbox is checked every poll_interval. A UIDVALIDITY change (the " +
		"mailbox was recreated) starts again from the mailbox's end without replaying it. from, subject_contains and " +
		"has_attachments filter the messages; mark_seen and move_to act on the messages that started a run, after their " +
		"events are stored (at the next check, which follows at once), so that a crash cannot lose a message.",
	Connection: mail.IMAP.Type, ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldMailbox, Type: connector.String, Default: "INBOX", Description: "The mailbox (folder) to watch", Example: "INBOX"},
		{Name: FieldFrom, Type: connector.String, Example: "@example.com",
			Description: "Only messages whose sender (address or name) contains this, ignoring case"},
		{Name: FieldSubjectContains, Type: connector.String, Example: "invoice",
			Description: "Only messages whose subject contains this, ignoring case"},
		{Name: FieldHasAttachments, Type: connector.Bool, Default: false, Description: "Only messages with at least one attachment"},
		{Name: FieldMarkSeen, Type: connector.Bool, Default: false,
			Description: "Flag the messages that started a run as seen (\\Seen); otherwise they are read without changing their flags"},
		{Name: FieldMoveTo, Type: connector.String, Example: "Processed",
			Description: "Move the messages that started a run to this mailbox (which must exist)"},
		{Name: FieldPollInterval, Type: connector.Duration, Default: "1m",
			Description: "How often to check the mailbox when the server has no IDLE; with IDLE, how long one IDLE lasts before a fresh check (at most 25m)"},
		{Name: FieldMaxAttachmentBytes, Type: connector.Int, Default: int64(DefaultMaxAttachmentBytes),
			Description: "The largest attachment (decoded) whose content the event carries as base64; larger ones keep name, type and size"},
		{Name: FieldIdle, Type: connector.Bool, Default: true, Description: "Wait in IDLE for new mail when the server offers it"},
	},
	Shape: connector.Obj(
		connector.P("from", connector.Leaf(connector.String, "The sender's address")),
		connector.P("from_name", connector.Leaf(connector.String, "The sender's display name")),
		connector.P("to", connector.ListOf(connector.Leaf(connector.String, "An address"), "The To addresses")),
		connector.P("cc", connector.ListOf(connector.Leaf(connector.String, "An address"), "The Cc addresses")),
		connector.P("reply_to", connector.ListOf(connector.Leaf(connector.String, "An address"), "The Reply-To addresses")),
		connector.P("subject", connector.Leaf(connector.String, "The subject, decoded")),
		connector.P("date", connector.Leaf(connector.String, "The Date header, RFC 3339 in UTC")),
		connector.P("message_id", connector.Leaf(connector.String, "The Message-ID, without angle brackets")),
		connector.P("in_reply_to", connector.Leaf(connector.String, "The first In-Reply-To id, without angle brackets")),
		connector.P("text", connector.Leaf(connector.String, "The text/plain body, UTF-8 (up to 1 MiB)")),
		connector.P("html", connector.Leaf(connector.String, "The text/html body, UTF-8 (up to 1 MiB)")),
		connector.P("attachments", connector.ListOf(attachmentShape, "The attachments, in order")),
		connector.P("uid", connector.Leaf(connector.Int, "The message's IMAP UID")),
		connector.P("uidvalidity", connector.Leaf(connector.Int, "The mailbox's UIDVALIDITY")),
		connector.P("mailbox", connector.Leaf(connector.String, "The mailbox it arrived in")),
		connector.P("size", connector.Leaf(connector.Int, "The message's size in bytes")),
	),
}

func init() {
	Received.Trigger = &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: connector.PollerFunc(poll),
		Interval: func(with connector.Values) time.Duration { return with.Duration(FieldPollInterval) }}
	connector.Register(Received)
}
