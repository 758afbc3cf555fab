package slack

import (
	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

// The actions' field names.
const (
	FieldChannel        = "channel"
	FieldText           = "text"
	FieldBlocks         = "blocks"
	FieldThreadTS       = "thread_ts"
	FieldReplyBroadcast = "reply_broadcast"
	FieldUnfurlLinks    = "unfurl_links"
	FieldUnfurlMedia    = "unfurl_media"
	FieldTS             = "ts"
	FieldFilename       = "filename"
	FieldContent        = "content"
	FieldContentBase64  = "content_base64"
	FieldTitle          = "title"
	FieldInitialComment = "initial_comment"
	FieldName           = "name"
	FieldIsPrivate      = "is_private"
)

var (
	leaf = connector.Leaf
	p    = connector.P
	obj  = connector.Obj
)

const errorsDoc = " Slack's errors: 429 and ratelimited are retried after Retry-After, 5xx and internal errors retried; " +
	"invalid_auth, not_authed and token_revoked fail the step (auth), as do channel_not_found (naming the channel) and other ok:false errors."

var (
	channelField = connector.Field{Name: FieldChannel, Type: connector.String, Required: true, Example: "#general",
		Description: "The channel: its id (C0123456789) or its name (general or #general)"}
	textField = connector.Field{Name: FieldText, Type: connector.String, Example: "Deploy finished :rocket:",
		Description: "The message text (mrkdwn); the notification's fallback when blocks are given"}
	blocksField = connector.Field{Name: FieldBlocks, Type: connector.List,
		Example:     []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*Deployed*"}}},
		Description: "Block Kit blocks, as Slack's JSON"}
)

func messageOutput() *connector.Shape {
	return obj(
		p("channel", leaf(connector.String, "The channel's id")),
		p("ts", leaf(connector.String, "The message's timestamp (its id in the channel)")),
		p("permalink", leaf(connector.String, "The message's link (chat.getPermalink); empty when that call fails")),
		p("thread_ts", leaf(connector.String, "The thread the message is in, when it is a reply")),
	)
}

// The Slack actions.
var (
	PostMessage = &connector.Spec{
		ID: "slack.post_message", Kind: connector.KindAction, Summary: "Post a message to a Slack channel",
		Description: "chat.postMessage with text and/or blocks, in a thread with thread_ts; the output has the message's " +
			"channel id, ts and permalink. The message carries metadata (event type sous_step) tagged with the step's " +
			"idempotency key, hashed; a retried attempt first looks for that tag in the channel's last 1,000 messages (or " +
			"the thread's) and returns the message it finds (existed: true) rather than posting again. The search needs " +
			"the channels:history scope (groups:history for private channels); without it the retry posts." + errorsDoc,
		Connection: sc.Connection.Type, ConnectionRequired: true,
		Fields: []connector.Field{channelField, textField, blocksField,
			{Name: FieldThreadTS, Type: connector.String, Example: "1700000000.000100",
				Description: "Reply in the thread of this message (its ts)"},
			{Name: FieldReplyBroadcast, Type: connector.Bool, Default: false,
				Description: "With thread_ts, also show the reply in the channel"},
			{Name: FieldUnfurlLinks, Type: connector.Bool, Description: "Unfurl links to text content (Slack's default when unset)"},
			{Name: FieldUnfurlMedia, Type: connector.Bool, Description: "Unfurl media links (Slack's default, true, when unset)"},
		},
		Shape: obj(append(messageOutput().Props,
			p("existed", leaf(connector.Bool, "True when a retried attempt found the message its earlier attempt posted, and posted none")))...),
		Action: connector.ActionFunc(postMessage),
	}
	UpdateMessage = &connector.Spec{
		ID: "slack.update_message", Kind: connector.KindAction, Summary: "Edit a Slack message",
		Description: "chat.update: replaces a message's text and/or blocks. The output has its channel id, ts and permalink." + errorsDoc,
		Connection:  sc.Connection.Type, ConnectionRequired: true,
		Fields: []connector.Field{channelField,
			{Name: FieldTS, Type: connector.String, Required: true, Example: "{{ steps.post.output.ts }}",
				Description: "The message's ts"},
			textField, blocksField},
		Shape:  messageOutput(),
		Action: connector.ActionFunc(updateMessage),
	}
	UploadFile = &connector.Spec{
		ID: "slack.upload_file", Kind: connector.KindAction, Summary: "Upload a file to Slack, shared in a channel",
		Description: "The external-upload flow: files.getUploadURLExternal, the upload, then files.completeUploadExternal " +
			"sharing it in channel (in a thread with thread_ts). The output has the file's id and permalink." + errorsDoc,
		Connection: sc.Connection.Type, ConnectionRequired: true,
		Fields: []connector.Field{
			{Name: FieldChannel, Type: connector.String, Example: "#reports",
				Description: "Share the file in this channel (id or name); unset: uploaded, not shared"},
			{Name: FieldFilename, Type: connector.String, Required: true, Example: "report.csv", Description: "The file's name"},
			{Name: FieldContent, Type: connector.String, Example: "a,b\n1,2\n", Description: "The file's content, as text"},
			{Name: FieldContentBase64, Type: connector.String, Example: "YSxiCjEsMgo=", Description: "The file's content, base64 (binary files)"},
			{Name: FieldTitle, Type: connector.String, Example: "Weekly report", Description: "The file's title (the filename when unset)"},
			{Name: FieldInitialComment, Type: connector.String, Example: "This week's numbers", Description: "A message shared with the file"},
			{Name: FieldThreadTS, Type: connector.String, Description: "Share it in the thread of this message (its ts)"},
		},
		Validate: func(w connector.Values) []connector.FieldError {
			if w.Has(FieldContent) && w.Has(FieldContentBase64) {
				return []connector.FieldError{{Field: FieldContentBase64, Message: "give content or content_base64, not both"}}
			}
			return nil
		},
		Shape: obj(
			p("file_id", leaf(connector.String, "The file's id")),
			p("title", leaf(connector.String, "The file's title")),
			p("permalink", leaf(connector.String, "The file's link")),
			p("channel", leaf(connector.String, "The channel id it was shared in, when any")),
			p("size", leaf(connector.Int, "Its size in bytes")),
		),
		Action: connector.ActionFunc(uploadFile),
	}
	CreateChannel = &connector.Spec{
		ID: "slack.create_channel", Kind: connector.KindAction, Summary: "Create a Slack channel, or find the one of that name",
		Description: "conversations.create; when a channel of that name exists (name_taken), it is looked up and returned " +
			"(created: false), so that a retried step or a second run gives one channel." + errorsDoc,
		Connection: sc.Connection.Type, ConnectionRequired: true,
		Fields: []connector.Field{
			{Name: FieldName, Type: connector.String, Required: true, Example: "incident-42",
				Pattern: `^#?[a-z0-9][a-z0-9_-]{0,79}$`, PatternHelp: "must be a Slack channel name: lower case letters, digits, - and _, at most 80",
				Description: "The channel's name (a leading # is dropped)"},
			{Name: FieldIsPrivate, Type: connector.Bool, Default: false, Description: "Create a private channel"},
		},
		Shape: obj(
			p("id", leaf(connector.String, "The channel's id")),
			p("name", leaf(connector.String, "Its name")),
			p("is_private", leaf(connector.Bool, "Whether it is private")),
			p("created", leaf(connector.Bool, "Whether this step created it (false: it existed)")),
		),
		Action: connector.ActionFunc(createChannel),
	}
)

func init() { connector.Register(PostMessage, UpdateMessage, UploadFile, CreateChannel) }
