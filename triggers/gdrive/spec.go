package gdrive

import (
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// Field names of the trigger.
const (
	FieldFolderID     = "folder_id"
	FieldMimeType     = "mime_type"
	FieldPollInterval = "poll_interval"
)

var (
	leaf = connector.Leaf
	p    = connector.P
	obj  = connector.Obj
)

// FileShape is the event of gdrive.file_created.
var FileShape = obj(
	p("id", leaf(connector.String, "The file id")),
	p("name", leaf(connector.String, "The file's name")),
	p("mime_type", leaf(connector.String, "Its MIME type (application/vnd.google-apps.folder for a folder, application/vnd.google-apps.document for a Doc)")),
	p("parents", connector.ListOf(leaf(connector.String, "A folder id"), "The folders it is in")),
	p("folder_id", leaf(connector.String, "The folder the recipe watches, empty when it watches all of Drive")),
	p("created_time", leaf(connector.String, "When it was created, RFC 3339")),
	p("modified_time", leaf(connector.String, "When it was last modified, RFC 3339")),
	p("size", leaf(connector.Int, "Its size in bytes (0 for Google Docs and folders)")),
	p("md5", leaf(connector.String, "The MD5 of its content, hex (empty for Google Docs and folders)")),
	p("web_view_link", leaf(connector.String, "The file in Drive's web interface")),
	p("owners", connector.ListOf(obj(
		p("email", leaf(connector.String, "The owner's email")),
		p("display_name", leaf(connector.String, "The owner's name")),
	), "Its owners (none for a file of a shared drive)")),
	p("change_time", leaf(connector.String, "When Drive recorded the change that showed it, RFC 3339")),
)

// FileCreated is the spec of gdrive.file_created.
var FileCreated = &connector.Spec{
	ID: "gdrive.file_created", Kind: connector.KindTrigger, Summary: "A file was created in Google Drive",
	Description: "Polls Drive's changes feed (changes.getStartPageToken, then changes.list, following nextPageToken and " +
		"keeping newStartPageToken). The first poll takes the start token and starts no run: a new recipe starts from " +
		"now. Each later change of a file created after the last completed poll began (less a minute's overlap), not " +
		"trashed and not removed, whose parents hold folder_id (when set) and whose type is mime_type (when set), starts " +
		"one run, keyed by the file id: edits, renames and moves of older files start nothing (a file moved into the folder " +
		"is not new). The changes feed covers My Drive, not shared drives.",
	Connection: google.Connection.Type, ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldFolderID, Type: connector.String, Example: "1AbCdEfGhIjKlMnOpQrStUvWxYz",
			Description: "Only files directly in this folder (its id, from the folder's URL); any folder when unset"},
		{Name: FieldMimeType, Type: connector.String, Example: "application/pdf",
			Description: "Only files of this MIME type; any when unset"},
		{Name: FieldPollInterval, Type: connector.Duration, Default: "1m", Description: "How often to ask Drive for changes"},
	},
	Shape: FileShape,
}

func init() {
	FileCreated.Trigger = &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: connector.PollerFunc(Poll),
		Interval: func(with connector.Values) time.Duration { return with.Duration(FieldPollInterval) }}
	connector.Register(FileCreated)
}
