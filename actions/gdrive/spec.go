package gdrive

import (
	"fmt"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/content"
)

// Field names of the gdrive actions.
const (
	FieldFolderID         = "folder_id"
	FieldName             = "name"
	FieldMimeType         = "mime_type"
	FieldContent          = content.FieldContent
	FieldContentBase64    = content.FieldContentBase64
	FieldURL              = content.FieldURL
	FieldChunkSize        = "chunk_size"
	FieldMaxURLBytes      = content.FieldMaxURLBytes
	FieldFileID           = "file_id"
	FieldRole             = "role"
	FieldEmail            = "email"
	FieldAnyone           = "anyone"
	FieldType             = "type"
	FieldSendNotification = "send_notification"
	FieldMessage          = "message"
)

// Chunk sizes: Google's minimum and granularity is 256 KiB.
const (
	MinChunkSize     = 256 << 10
	DefaultChunkSize = 8 << 20
)

// DefaultMaxURLBytes bounds the content fetched from a url: 1 GiB.
const DefaultMaxURLBytes = 1 << 30

// FolderMimeType is a Drive folder's MIME type.
const FolderMimeType = "application/vnd.google-apps.folder"

var (
	leaf = connector.Leaf
	p    = connector.P
)

func fileProps() []connector.Prop {
	return []connector.Prop{
		p("id", leaf(connector.String, "The file's id")),
		p("name", leaf(connector.String, "The file's name")),
		p("web_view_link", leaf(connector.String, "The file in Google Drive")),
		p("size", leaf(connector.Int, "The size in bytes (0 for a folder)")),
		p("md5", leaf(connector.String, "The content's MD5, hex (empty for a folder)")),
		p("mime_type", leaf(connector.String, "The MIME type")),
		p("existed", leaf(connector.Bool, "Whether it existed before this call (a retried step, or a folder of that name)")),
	}
}

// The gdrive actions.
var (
	Upload = &connector.Spec{
		ID: "gdrive.upload", Kind: connector.KindAction, Summary: "Upload a file to Google Drive",
		Description: "Uploads `content` (text), `content_base64` or the body of `url` (fetched without the connection's " +
			"credentials and streamed through, never held whole in memory) into a folder. A file that fits one chunk " +
			"goes as one multipart request; a larger one uses Drive's resumable protocol, chunk_size bytes at a time, and " +
			"a chunk that fails (5xx, 429, a dropped connection) is sent again, not the file. The file is tagged with the " +
			"step's idempotency key (an app property), so a retried step finds the file its earlier attempt made instead of " +
			"uploading a second one.",
		Connection: "google", ConnectionRequired: true,
		Fields: []connector.Field{
			{Name: FieldFolderID, Type: connector.String, Example: "1AbCdEfGhIjKlMnOp", Description: "The folder to put it in (My Drive's root when not set)"},
			{Name: FieldName, Type: connector.String, Required: true, Example: "report.pdf", Description: "The file's name"},
			{Name: FieldMimeType, Type: connector.String, Example: "application/pdf",
				Description: "The content's MIME type; by default the URL's Content-Type, else sniffed from the content"},
			{Name: FieldContent, Type: connector.String, Example: "Hello", Description: "The content, as text"},
			{Name: FieldContentBase64, Type: connector.String, Check: content.CheckBase64, Example: "SGVsbG8=", Description: "The content, base64-encoded"},
			{Name: FieldURL, Type: connector.String, Pattern: `^https?://`, PatternHelp: "must be an http(s) URL",
				Example: "https://example.com/report.pdf", Description: "Where to fetch the content (GET, no credentials sent)"},
			{Name: FieldChunkSize, Type: connector.Int, Default: DefaultChunkSize, Example: DefaultChunkSize,
				Check: func(v any) error {
					if n := v.(int64); n < MinChunkSize || n%MinChunkSize != 0 {
						return fmt.Errorf("must be a multiple of 262144 (256 KiB), at least that")
					}
					return nil
				},
				Description: "The resumable upload's chunk size in bytes (a multiple of 256 KiB); a file of at most this size goes in one request"},
			{Name: FieldMaxURLBytes, Type: connector.Int, Default: int64(DefaultMaxURLBytes),
				Description: "The largest content fetched from a url, in bytes: a larger one fails the step (invalid) before it is uploaded whole"},
		},
		Validate: content.Validate,
		Shape:    connector.Obj(fileProps()...),
		Action:   connector.ActionFunc(upload),
	}
	CreateFolder = &connector.Spec{
		ID: "gdrive.create_folder", Kind: connector.KindAction, Summary: "Create a Google Drive folder, or find it",
		Description: "Returns the folder of that name in the parent when there is one (not in the trash), and creates it " +
			"otherwise: running it twice gives one folder. Two runs racing may still make two.",
		Connection: "google", ConnectionRequired: true,
		Fields: []connector.Field{
			{Name: FieldName, Type: connector.String, Required: true, Example: "Recordings", Description: "The folder's name"},
			{Name: FieldFolderID, Type: connector.String, Default: "root", Example: "1AbCdEfGhIjKlMnOp",
				Description: "The parent folder (My Drive's root by default)"},
		},
		Shape:  connector.Obj(fileProps()...),
		Action: connector.ActionFunc(createFolder),
	}
	Share = &connector.Spec{
		ID: "gdrive.share", Kind: connector.KindAction, Summary: "Share a Google Drive file or folder",
		Description: "Gives `email` (a user or a group) or, with `anyone: true` or `type: anyone`, everyone with the link a role on a file. " +
			"Sharing again with the same grantee changes the role rather than adding a permission.",
		Connection: "google", ConnectionRequired: true,
		Fields: []connector.Field{
			{Name: FieldFileID, Type: connector.String, Required: true, Example: "{{ steps.upload.output.id }}", Description: "The file or folder"},
			{Name: FieldRole, Type: connector.String, Default: "reader", Enum: []string{"reader", "commenter", "writer", "fileOrganizer", "organizer"},
				Description: "The role given"},
			{Name: FieldEmail, Type: connector.String, Example: "ada@example.com", Description: "Whom to share with (a user's or a group's email)"},
			{Name: FieldType, Type: connector.String, Default: "user", Enum: []string{"user", "group", TypeAnyone},
				Description: "What email is (user or group); anyone (Drive's word) shares with anyone who has the link, as anyone: true does, and takes no email"},
			{Name: FieldAnyone, Type: connector.Bool, Default: false, Description: "Share with anyone who has the link, instead of email (the same as type: anyone)"},
			{Name: FieldSendNotification, Type: connector.Bool, Default: false, Description: "Email the grantee (with email only)"},
			{Name: FieldMessage, Type: connector.String, Description: "The notification email's message"},
		},
		Validate: oneGrantee,
		Shape: connector.Obj(
			p("permission_id", leaf(connector.String, "The permission's id")),
			p("file_id", leaf(connector.String, "The file's id")),
			p("role", leaf(connector.String, "The role given")),
			p("type", leaf(connector.String, "user, group or anyone")),
			p("web_view_link", leaf(connector.String, "The file's link")),
		),
		Action: connector.ActionFunc(share),
	}
)

func init() { connector.Register(Upload, CreateFolder, Share) }

// TypeAnyone is the type value (Drive's permission type) sharing with
// anyone who has the link, the same as anyone: true.
const TypeAnyone = "anyone"

// toAnyone reports whether the grantee is anyone with the link: anyone:
// true or type: anyone.
func toAnyone(with connector.Values) bool {
	return with.Bool(FieldAnyone) || with.String(FieldType) == TypeAnyone
}

// oneGrantee: an email, or anyone with the link, not both.
func oneGrantee(with connector.Values) []connector.FieldError {
	if with.String(FieldEmail) == "" {
		return nil
	}
	switch {
	case with.Bool(FieldAnyone):
		return []connector.FieldError{{Field: FieldAnyone, Message: "set email or anyone, not both"}}
	case with.String(FieldType) == TypeAnyone:
		return []connector.FieldError{{Field: FieldType, Message: "type anyone shares with anyone who has the link: set no email"}}
	}
	return nil
}
