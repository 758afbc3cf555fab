package dropbox

import (
	"fmt"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/content"
)

// Field names of dropbox.upload.
const (
	FieldPath          = "path"
	FieldContent       = content.FieldContent
	FieldContentBase64 = content.FieldContentBase64
	FieldURL           = content.FieldURL
	FieldMode          = "mode"
	FieldAutorename    = "autorename"
	FieldMute          = "mute"
	FieldChunkSize     = "chunk_size"
	FieldMaxURLBytes   = content.FieldMaxURLBytes
)

// Chunk sizes: a file of at most chunk_size goes in one files/upload
// (whose limit is 150 MiB); a larger one through an upload session.
const (
	MinChunkSize     = 1 << 20
	MaxChunkSize     = 150 << 20
	DefaultChunkSize = 8 << 20
)

// DefaultMaxURLBytes bounds the content fetched from a url: 1 GiB.
const DefaultMaxURLBytes = 1 << 30

var (
	leaf = connector.Leaf
	p    = connector.P
)

// Upload is dropbox.upload.
var Upload = &connector.Spec{
	ID: "dropbox.upload", Kind: connector.KindAction, Summary: "Upload a file to Dropbox",
	Description: "Uploads `content` (text), `content_base64` or the body of `url` (fetched without the connection's " +
		"credentials and streamed through, one chunk in memory at a time) to `path`. A file of at most chunk_size bytes " +
		"goes in one files/upload call; a larger one through an upload session (start, append_v2, finish), and a chunk " +
		"whose call fails (5xx, 429, a dropped connection) is sent again from the offset Dropbox reports, not the file. " +
		"With mode add, a retried step does not make \"name (1).ext\": before committing, the file already at path is " +
		"compared by Dropbox's content hash with the content, and returned (existed: true) when they are equal (with " +
		"autorename, the renamed \"name (n).ext\" files too); a conflict at commit is compared the same way.",
	Connection: "dropbox", ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldPath, Type: connector.String, Required: true, Pattern: `^/.*[^/]$`, PatternHelp: "must start with / and name a file",
			Example: "/Reports/2026-03.csv", Description: "Where to put the file, from the Dropbox (or app folder) root"},
		{Name: FieldContent, Type: connector.String, Example: "Hello", Description: "The content, as text"},
		{Name: FieldContentBase64, Type: connector.String, Check: content.CheckBase64, Example: "SGVsbG8=", Description: "The content, base64-encoded"},
		{Name: FieldURL, Type: connector.String, Pattern: `^https?://`, PatternHelp: "must be an http(s) URL",
			Example: "https://example.com/report.pdf", Description: "Where to fetch the content (GET, no credentials sent), streamed to Dropbox"},
		{Name: FieldMode, Type: connector.String, Default: "add", Enum: []string{"add", "overwrite"},
			Description: "add: never replace a file (a different file at path is a conflict, or is renamed with autorename); overwrite: replace it"},
		{Name: FieldAutorename, Type: connector.Bool, Default: false,
			Description: "With mode add, when a different file is at path, let Dropbox add a number to the name instead of failing"},
		{Name: FieldMute, Type: connector.Bool, Default: false, Description: "Do not notify the user's desktop clients of the change"},
		{Name: FieldChunkSize, Type: connector.Int, Default: DefaultChunkSize, Example: DefaultChunkSize,
			Check: func(v any) error {
				if n := v.(int64); n < MinChunkSize || n > MaxChunkSize {
					return fmt.Errorf("must be from 1048576 (1 MiB) to 157286400 (150 MiB)")
				}
				return nil
			},
			Description: "The upload session's chunk size in bytes; a file of at most this size goes in one request"},
		{Name: FieldMaxURLBytes, Type: connector.Int, Default: int64(DefaultMaxURLBytes),
			Description: "The largest content fetched from a url, in bytes: a larger one fails the step (invalid) and its upload session is never finished"},
	},
	Validate: content.Validate,
	Shape: connector.Obj(
		p("id", leaf(connector.String, "The file's id (id:...)")),
		p("name", leaf(connector.String, "The file's name")),
		p("path_display", leaf(connector.String, "The file's path, as cased by the user")),
		p("path_lower", leaf(connector.String, "The file's path, lower-cased")),
		p("size", leaf(connector.Int, "The size in bytes")),
		p("rev", leaf(connector.String, "The file's revision")),
		p("content_hash", leaf(connector.String, "Dropbox's content hash of the file, hex")),
		p("server_modified", leaf(connector.String, "When Dropbox last changed the file, RFC 3339 in UTC")),
		p("existed", leaf(connector.Bool, "True when an equal file was already at path (a retried step) and nothing was uploaded")),
	),
	Action: connector.ActionFunc(upload),
}

func init() { connector.Register(Upload) }
