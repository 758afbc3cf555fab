package gcal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// Overlap is how far before a completed sync's start the next one still
// counts events as created since: Google's clock is not ours. What the
// overlap finds again is known by its dedup key and starts nothing.
const Overlap = time.Minute

// PageSize is how many events one page asks for (Google's default; it
// gives at most 2500).
const PageSize = 250

// cursor is where a poller is: events created at or after Since are new;
// SyncToken is the token of the last completed sync. A sync in progress
// (several pages) keeps its next page's token, whether it is a full one,
// and when it began.
type cursor struct {
	Since     time.Time `json:"since"`
	SyncToken string    `json:"sync_token,omitempty"`
	PageToken string    `json:"page_token,omitempty"`
	Full      bool      `json:"full,omitempty"`
	Started   time.Time `json:"started,omitzero"`
}

// now is the poller's clock (tests replace it).
var now = time.Now

// calendarID is the calendar a recipe watches.
func calendarID(with connector.Values) string {
	if id := with.String(FieldCalendarID); id != "" {
		return id
	}
	return "primary"
}

// Poll asks for one page of a sync: a full one first (the calendar's
// events up to its sync token, none of them new), then incremental ones
// from the last sync token. It returns the events of the page created
// since the cursor's time and not cancelled, oldest first, keyed by their
// ids; while pages remain it asks to be called again at once. A 410
// (the token expired) starts a full sync again, which returns the events
// created since the last completed sync.
func Poll(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	var cur cursor
	if len(req.Cursor) == 0 {
		// a new recipe starts from now, without the calendar's history
		t := clock()
		cur = cursor{Since: t, Full: true, Started: t}
	} else if err := json.Unmarshal(req.Cursor, &cur); err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("gcal poll cursor: %w", err))
	}
	if !cur.Full && cur.SyncToken == "" {
		cur.Full = true
	}
	if cur.Started.IsZero() {
		cur.Started = clock()
	}
	svc, err := google.Calendar(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	calID := calendarID(req.With)
	call := svc.Events.List(calID).Context(ctx).MaxResults(PageSize).SingleEvents(req.With.Bool(FieldSingleEvents))
	if !cur.Full {
		// deleted events always come with a sync token (cancelled)
		call = call.SyncToken(cur.SyncToken)
	}
	if cur.PageToken != "" {
		call = call.PageToken(cur.PageToken)
	}
	page, err := call.Do()
	if err != nil {
		code := google.Code(err)
		if code == http.StatusGone || (code == http.StatusBadRequest && cur.PageToken != "") {
			// the sync token (or a page's) expired: sync the calendar in
			// full again; what was created since Since is still new
			if req.Logger != nil {
				req.Logger.Warn("calendar sync token expired; syncing in full again", "calendar", calID, "status", code)
			}
			cur = cursor{Since: cur.Since, Full: true, Started: clock()}
			return result(nil, cur, true)
		}
		return nil, google.Classify("list calendar events", err)
	}
	var evs []connector.Event
	var at []time.Time
	for _, ev := range page.Items {
		if ev == nil || ev.Id == "" || ev.Status == "cancelled" {
			continue
		}
		created, err := time.Parse(time.RFC3339, ev.Created)
		if err != nil || created.Before(cur.Since) {
			continue
		}
		evs = append(evs, connector.Event{DedupKey: ev.Id, Payload: Payload(calID, ev)})
		at = append(at, created)
	}
	google.OldestFirst(evs, at)
	if page.NextPageToken != "" {
		cur.PageToken = page.NextPageToken
		return result(evs, cur, true)
	}
	if page.NextSyncToken == "" {
		return nil, connector.Retryable(connector.ReasonServerError, 0, errors.New("list calendar events: the last page has no nextSyncToken"))
	}
	if s := cur.Started.Add(-Overlap); s.After(cur.Since) {
		cur.Since = s
	}
	cur = cursor{Since: cur.Since, SyncToken: page.NextSyncToken}
	return result(evs, cur, false)
}

func result(evs []connector.Event, cur cursor, more bool) (*connector.PollResult, error) {
	next, err := json.Marshal(cur)
	if err != nil {
		return nil, fmt.Errorf("gcal poll cursor: %w", err)
	}
	return &connector.PollResult{Events: evs, Next: next, More: more}, nil
}

// clock is now in UTC, to Google's precision (milliseconds): a creation
// time in the same millisecond as the cursor's counts as after it.
func clock() time.Time { return now().UTC().Truncate(time.Millisecond) }
