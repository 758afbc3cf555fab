package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
)

// Overlap is how far before a search's start the next one looks again:
// Jira's search is eventually consistent (a change may be indexed after a
// later one) and its clock is not ours. What the overlap finds again is
// known by the cursor's seen keys and starts nothing.
const Overlap = time.Minute

// PageSize is how many issues one search page asks for.
const PageSize = 50

// cursor is where a poller is: changes at or after Since whose keys are not
// in Seen are new. A search in progress (several pages) keeps its JQL and
// the token of its next page, so that a poll cut short (a crash) asks for
// the same page again.
type cursor struct {
	Since time.Time        `json:"since"`
	Seen  map[string]int64 `json:"seen,omitempty"` // change key -> its time, unix ms
	// the search in progress
	JQL     string    `json:"jql,omitempty"`
	Token   string    `json:"token,omitempty"`
	Started time.Time `json:"started,omitzero"`
}

// poller searches the site for the changes of one kind.
type poller struct{ kind kind }

// now is the poller's clock (tests replace it).
var now = time.Now

// Poll asks for one page of the issues updated since the cursor (and
// matching the recipe's project and jql), with their changelogs, and
// returns the changes of its kind not seen yet, oldest first, each keyed
// by its id (the issue's for a creation, the changelog history's for an
// update, the comment's). While pages remain it asks to be called again
// at once; after the last, the cursor moves to the search's start less
// Overlap.
func (pl poller) Poll(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	if len(req.Cursor) == 0 {
		// a new recipe starts from now, without the site's history
		next, err := json.Marshal(cursor{Since: now().UTC().Truncate(time.Millisecond)})
		return &connector.PollResult{Next: next}, err
	}
	var cur cursor
	if err := json.Unmarshal(req.Cursor, &cur); err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("jira poll cursor: %w", err))
	}
	if cur.Seen == nil {
		cur.Seen = map[string]int64{}
	}
	client, err := jc.NewClient(req.Connection)
	if err != nil {
		return nil, err
	}
	if cur.JQL == "" {
		cur.Started = now().UTC().Truncate(time.Millisecond)
		cur.JQL = JQL(cur.Started.Sub(cur.Since), req.With.String(FieldProject), req.With.String(FieldJQL))
		cur.Token = ""
	}
	page, err := jc.Search(ctx, client, cur.JQL, cur.Token, PageSize)
	if err != nil {
		var ce *connector.Error
		if cur.Token != "" && errors.As(err, &ce) && ce.Reason == connector.ReasonClientError {
			// the page token expired (a long stop): search again from the
			// cursor's time; what was seen starts nothing
			cur.JQL, cur.Token = "", ""
			next, merr := json.Marshal(cur)
			if merr != nil {
				return nil, merr
			}
			if req.Logger != nil {
				req.Logger.Warn("jira search page token refused; searching again", "err", err)
			}
			return &connector.PollResult{Next: next, More: true}, nil
		}
		return nil, err
	}
	type found struct {
		at time.Time
		ev connector.Event
	}
	var evs []found
	since := cur.Since.UnixMilli()
	add := func(key string, at time.Time, payload map[string]any) {
		ms := at.UnixMilli()
		if ms < since {
			return
		}
		if _, ok := cur.Seen[key]; ok {
			return
		}
		cur.Seen[key] = ms
		evs = append(evs, found{at, connector.Event{DedupKey: key, Payload: payload}})
	}
	for i := range page.Issues {
		is := &page.Issues[i]
		switch pl.kind {
		case kindCreated:
			created, _ := is.Fields["created"].(string)
			if t, err := jc.ParseTime(created); err == nil {
				add("issue:"+is.ID, t, is.IssueCreatedPayload(t))
			}
		case kindUpdated, kindStatus:
			if is.Changelog == nil {
				continue
			}
			for j := range is.Changelog.Histories {
				h := &is.Changelog.Histories[j]
				t, err := jc.ParseTime(h.Created)
				if err != nil {
					continue
				}
				payload := is.UpdatePayload(h, t)
				if _, status := payload["status"]; pl.kind == kindStatus && !status {
					continue
				}
				add("change:"+is.ID+":"+h.ID, t, payload)
			}
		case kindComment:
			for _, c := range is.Comments() {
				created, _ := c["created"].(string)
				t, err := jc.ParseTime(created)
				if err != nil {
					continue
				}
				add("comment:"+is.ID+":"+fmt.Sprint(c["id"]), t, is.CommentPayload(c, t))
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	res := &connector.PollResult{}
	for _, f := range evs {
		res.Events = append(res.Events, f.ev)
	}
	if page.IsLast || page.NextPageToken == "" {
		if s := cur.Started.Add(-Overlap); s.After(cur.Since) {
			cur.Since = s
		}
		for k, ms := range cur.Seen {
			if ms < cur.Since.UnixMilli() {
				delete(cur.Seen, k)
			}
		}
		cur.JQL, cur.Token, cur.Started = "", "", time.Time{}
	} else {
		cur.Token = page.NextPageToken
		res.More = true
	}
	res.Next, err = json.Marshal(cur)
	return res, err
}

// JQL is the search for the issues updated in the last span (rounded up to
// whole minutes, plus one: JQL's relative dates are minutes, and relative
// ones need no time zone), of a project when set, matching extra when set,
// oldest update first.
func JQL(span time.Duration, project, extra string) string {
	mins := int64(span/time.Minute) + 2
	q := "updated >= -" + strconv.FormatInt(mins, 10) + "m"
	if project != "" {
		q += ` AND project = "` + strings.ReplaceAll(project, `"`, `\"`) + `"`
	}
	if extra = strings.TrimSpace(extra); extra != "" {
		q += " AND (" + extra + ")"
	}
	return q + " ORDER BY updated ASC"
}
