package gdrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// Overlap is how far before a completed round's start the next one still
// counts files as created since: Google's clock is not ours. What the
// overlap finds again is known by its dedup key and starts nothing.
const Overlap = time.Minute

// PageSize is how many changes one page asks for (Drive's default is 100,
// its most 1000).
const PageSize = 100

// ChangeFields is the fields mask of changes.list: what the event needs,
// and the tokens (a partial response omits whatever it does not name).
const ChangeFields googleapi.Field = "changes(fileId,removed,time,file(id,name,mimeType,parents,createdTime,modifiedTime," +
	"size,md5Checksum,webViewLink,trashed,owners)),nextPageToken,newStartPageToken"

// cursor is where a poller is: files created at or after Since are new;
// PageToken is the changes page to ask next (a start page token, or the
// next page of a round in progress, which began at Started).
type cursor struct {
	Since     time.Time `json:"since"`
	PageToken string    `json:"page_token"`
	Started   time.Time `json:"started,omitzero"`
}

// now is the poller's clock (tests replace it).
var now = time.Now

// Poll takes Drive's start page token on the first poll (no events: a
// new recipe starts from now), and later asks for one page of changes
// from the cursor's token. It returns the files of the page created since
// the cursor's time, neither trashed nor removed, in folder_id and of
// mime_type when set, oldest first, keyed by their ids. While pages
// remain it asks to be called again at once; the last page's
// newStartPageToken is where the next round starts.
func Poll(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	svc, err := google.Drive(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	if len(req.Cursor) == 0 {
		t := clock()
		start, err := svc.Changes.GetStartPageToken().Context(ctx).Do()
		if err != nil {
			return nil, google.Classify("get drive start page token", err)
		}
		if start.StartPageToken == "" {
			return nil, connector.Retryable(connector.ReasonServerError, 0, errors.New("get drive start page token: none given"))
		}
		return result(nil, cursor{Since: t, PageToken: start.StartPageToken}, false)
	}
	var cur cursor
	if err := json.Unmarshal(req.Cursor, &cur); err != nil || cur.PageToken == "" {
		if err == nil {
			err = errors.New("no page token")
		}
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("gdrive poll cursor: %w", err))
	}
	if cur.Started.IsZero() {
		cur.Started = clock()
	}
	page, err := svc.Changes.List(cur.PageToken).Context(ctx).Fields(ChangeFields).PageSize(PageSize).Spaces("drive").Do()
	if err != nil {
		return nil, google.Classify("list drive changes", err)
	}
	folder, mimeType := req.With.String(FieldFolderID), req.With.String(FieldMimeType)
	var evs []connector.Event
	var at []time.Time
	for _, c := range page.Changes {
		if c == nil || c.Removed || c.File == nil || c.File.Id == "" || c.File.Trashed {
			continue
		}
		f := c.File
		created, err := time.Parse(time.RFC3339, f.CreatedTime)
		if err != nil || created.Before(cur.Since) {
			continue
		}
		if (folder != "" && !slices.Contains(f.Parents, folder)) || (mimeType != "" && f.MimeType != mimeType) {
			continue
		}
		evs = append(evs, connector.Event{DedupKey: f.Id, Payload: Payload(folder, c.Time, f)})
		at = append(at, created)
	}
	google.OldestFirst(evs, at)
	if page.NextPageToken != "" {
		cur.PageToken = page.NextPageToken
		return result(evs, cur, true)
	}
	if page.NewStartPageToken == "" {
		return nil, connector.Retryable(connector.ReasonServerError, 0, errors.New("list drive changes: the last page has no newStartPageToken"))
	}
	if s := cur.Started.Add(-Overlap); s.After(cur.Since) {
		cur.Since = s
	}
	return result(evs, cursor{Since: cur.Since, PageToken: page.NewStartPageToken}, false)
}

func result(evs []connector.Event, cur cursor, more bool) (*connector.PollResult, error) {
	next, err := json.Marshal(cur)
	if err != nil {
		return nil, fmt.Errorf("gdrive poll cursor: %w", err)
	}
	return &connector.PollResult{Events: evs, Next: next, More: more}, nil
}

// clock is now in UTC, to Google's precision (milliseconds): a creation
// time in the same millisecond as the cursor's counts as after it.
func clock() time.Time { return now().UTC().Truncate(time.Millisecond) }
