package dropbox

import (
	"time"

	"github.com/sous-run/sous/engine/connector"
)

// Field names of dropbox.file_changed.
const (
	FieldPath           = "path"
	FieldRecursive      = "recursive"
	FieldIncludeDeleted = "include_deleted"
	FieldIncludeFolders = "include_folders"
	FieldPollInterval   = "poll_interval"
)

// PageLimit is the most entries one poll asks for (Dropbox's limit is 2000).
const PageLimit = 500

var (
	leaf = connector.Leaf
	p    = connector.P
)

// FileChanged is dropbox.file_changed.
var FileChanged = &connector.Spec{
	ID: "dropbox.file_changed", Kind: connector.KindTrigger, Summary: "A file changed in a Dropbox folder",
	Description: "Polls a folder with files/list_folder/continue from a saved cursor. The first poll takes " +
		"files/list_folder/get_latest_cursor, so nothing already there starts a run; each later change (a file added or " +
		"edited, and with the options a folder created or an entry deleted) starts one run, once, across restarts: the " +
		"cursor is saved with the events, a page at a time (has_more polls again at once). A reset cursor (Dropbox " +
		"answers reset) starts again from the folder's present state without replaying it. The dedup key is the file's id " +
		"and rev; a folder's is its id and path; a deletion's is its path and the cursor it was listed from.",
	Connection: "dropbox", ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldPath, Type: connector.String, Default: "", Pattern: `^(/.*)?$`, PatternHelp: "must be empty (the root) or start with /",
			Example: "/Invoices", Description: "The folder to watch (\"\" or unset: the whole Dropbox, or the app folder)"},
		{Name: FieldRecursive, Type: connector.Bool, Default: false, Description: "Watch the folder's subfolders too"},
		{Name: FieldIncludeDeleted, Type: connector.Bool, Default: false, Description: "Also start a run for a deleted entry (tag deleted)"},
		{Name: FieldIncludeFolders, Type: connector.Bool, Default: false, Description: "Also start a run for a folder created (tag folder)"},
		{Name: FieldPollInterval, Type: connector.Duration, Default: "1m", Description: "How often to ask Dropbox for changes"},
	},
	Shape: connector.Obj(
		p("tag", leaf(connector.String, "file, folder or deleted")),
		p("id", leaf(connector.String, "The entry's id (id:...; empty for deleted)")),
		p("name", leaf(connector.String, "The last component of the path")),
		p("path_display", leaf(connector.String, "The path, as cased by the user")),
		p("path_lower", leaf(connector.String, "The path, lower-cased")),
		p("size", leaf(connector.Int, "The file's size in bytes (0 otherwise)")),
		p("rev", leaf(connector.String, "The file's revision (empty otherwise)")),
		p("content_hash", leaf(connector.String, "Dropbox's content hash of the file, hex (empty otherwise)")),
		p("server_modified", leaf(connector.String, "When Dropbox last changed the file, RFC 3339 (empty otherwise)")),
	),
}

func init() {
	FileChanged.Trigger = &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: connector.PollerFunc(poll),
		Interval: func(with connector.Values) time.Duration { return with.Duration(FieldPollInterval) }}
	connector.Register(FileChanged)
}
