package dropbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/dropbox"
)

// Cursor is the poller's cursor: Dropbox's list_folder cursor.
type Cursor struct {
	Cursor string `json:"cursor"`
}

// Page is one list_folder/continue answer, parsed.
type Page struct {
	Entries []dropbox.Metadata
	Cursor  string
	HasMore bool
}

// ParsePage parses a files/list_folder (or continue) answer: entries of
// tags other than file, folder and deleted are left out; a page without
// a cursor is an error.
func ParsePage(raw []byte) (*Page, error) {
	var res dropbox.ListFolderResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("list_folder answer: %w", err)
	}
	if res.Cursor == "" {
		return nil, errors.New("list_folder answer: no cursor")
	}
	pg := &Page{Cursor: res.Cursor, HasMore: res.HasMore}
	for _, e := range res.Entries {
		switch e.Tag {
		case "file", "folder", "deleted":
			if e.PathLower == "" && e.PathDisplay == "" {
				continue
			}
			pg.Entries = append(pg.Entries, e)
		}
	}
	return pg, nil
}

// Events turns a page's entries into events, as the options choose (files
// always, folders and deletions when asked); from is the cursor the page
// was listed from, part of a deletion's dedup key.
func (pg *Page) Events(with connector.Values, from string) []connector.Event {
	sum := sha256.Sum256([]byte(from))
	pos := hex.EncodeToString(sum[:8])
	var evs []connector.Event
	for _, e := range pg.Entries {
		var key string
		switch e.Tag {
		case "file":
			key = "file:" + e.ID + ":" + e.Rev
		case "folder":
			if !with.Bool(FieldIncludeFolders) {
				continue
			}
			key = "folder:" + e.ID + ":" + e.PathLower
		case "deleted":
			if !with.Bool(FieldIncludeDeleted) {
				continue
			}
			key = "deleted:" + e.PathLower + ":" + pos
		}
		evs = append(evs, connector.Event{DedupKey: key, Payload: payload(e)})
	}
	return evs
}

func payload(e dropbox.Metadata) map[string]any {
	return map[string]any{"tag": e.Tag, "id": e.ID, "name": e.Name, "path_display": e.PathDisplay, "path_lower": e.PathLower,
		"size": e.Size, "rev": e.Rev, "content_hash": e.ContentHash, "server_modified": e.ServerModified}
}

// folder is the path option as Dropbox names it: "" for the root.
func folder(with connector.Values) string {
	p := strings.TrimSuffix(with.String(FieldPath), "/")
	return p
}

// poll lists the changes since the saved cursor, one page a poll. The
// first poll, and a poll whose cursor Dropbox reset, only takes the latest
// cursor.
func poll(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	if req.Connection == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("dropbox.file_changed needs a dropbox connection"))
	}
	var cur Cursor
	if len(req.Cursor) > 0 && string(req.Cursor) != "null" {
		if err := json.Unmarshal(req.Cursor, &cur); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("dropbox.file_changed cursor: %w", err))
		}
	}
	if cur.Cursor == "" {
		return seed(ctx, req)
	}
	var raw json.RawMessage
	err := dropbox.Call(ctx, req.Connection, "files/list_folder/continue", map[string]any{"cursor": cur.Cursor}, &raw)
	if _, ok := dropbox.AsAPIError(err, "reset"); ok {
		if req.Logger != nil {
			req.Logger.Warn("dropbox reset the folder's cursor: starting again from its present state, without replaying it",
				"path", folder(req.With))
		}
		return seed(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("dropbox.file_changed: list changes: %w", err)
	}
	pg, err := ParsePage(raw)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonClientError, fmt.Errorf("dropbox.file_changed: %w", err))
	}
	next, _ := json.Marshal(Cursor{Cursor: pg.Cursor})
	return &connector.PollResult{Events: pg.Events(req.With, cur.Cursor), Next: next, More: pg.HasMore}, nil
}

// seed takes the folder's latest cursor: deletions are always listed (and
// filtered by the options), so the cursor serves either choice.
func seed(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	var out struct {
		Cursor string `json:"cursor"`
	}
	arg := map[string]any{"path": folder(req.With), "recursive": req.With.Bool(FieldRecursive), "include_deleted": true, "limit": PageLimit}
	if err := dropbox.Call(ctx, req.Connection, "files/list_folder/get_latest_cursor", arg, &out); err != nil {
		return nil, fmt.Errorf("dropbox.file_changed: get the latest cursor: %w", err)
	}
	if out.Cursor == "" {
		return nil, connector.Permanent(connector.ReasonClientError, errors.New("dropbox.file_changed: get_latest_cursor gave no cursor"))
	}
	next, _ := json.Marshal(Cursor{Cursor: out.Cursor})
	return &connector.PollResult{Next: next}, nil
}
