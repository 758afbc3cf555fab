package jira

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	gojira "github.com/andygrunwald/go-jira"
)

// SearchPath is Jira Cloud's search: the old rest/api/{2,3}/search (which
// go-jira's Issue.Search calls) answers 410 Gone there.
const SearchPath = "rest/api/3/search/jql"

// SearchPage is one page of SearchPath.
type SearchPage struct {
	Issues        []Issue `json:"issues"`
	NextPageToken string  `json:"nextPageToken"`
	IsLast        bool    `json:"isLast"`
}

// Issue is an issue as the search returns it, its fields kept as Jira
// sent them (custom fields too), with its changelog (expand=changelog).
type Issue struct {
	ID        string         `json:"id"`
	Key       string         `json:"key"`
	Self      string         `json:"self"`
	Fields    map[string]any `json:"fields"`
	Changelog *Changelog     `json:"changelog,omitempty"`
}

// Changelog is an issue's change history (its latest 100 entries).
type Changelog struct {
	StartAt    int       `json:"startAt"`
	MaxResults int       `json:"maxResults"`
	Total      int       `json:"total"`
	Histories  []History `json:"histories"`
}

// History is one change of an issue: who, when, which fields.
type History struct {
	ID      string         `json:"id"`
	Author  map[string]any `json:"author,omitempty"`
	Created string         `json:"created"`
	Items   []ChangeItem   `json:"items"`
}

// ChangeItem is one field's change.
type ChangeItem struct {
	Field      string `json:"field"`
	FieldType  string `json:"fieldtype"`
	FieldID    string `json:"fieldId,omitempty"`
	From       any    `json:"from"`
	FromString any    `json:"fromString"`
	To         any    `json:"to"`
	ToString   any    `json:"toString"`
}

// TimeLayout is how Jira writes times (2026-12-07T22:30:00.000+0000).
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// ParseTime reads a Jira time (TimeLayout, or RFC 3339).
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Parse(time.RFC3339Nano, s)
	}
	return t, nil
}

// FormatTime writes a time as Jira does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Search asks for one page of issues matching jql, all their fields and
// their changelog, through go-jira's client (a raw request: its
// Issue.Search calls the removed endpoint).
func Search(ctx context.Context, c *gojira.Client, jql, token string, max int) (*SearchPage, error) {
	q := url.Values{"jql": {jql}, "fields": {"*all"}, "expand": {"changelog"}, "maxResults": {strconv.Itoa(max)}}
	if token != "" {
		q.Set("nextPageToken", token)
	}
	var page SearchPage
	if err := Call(ctx, c, http.MethodGet, SearchPath+"?"+q.Encode(), nil, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// issueMap is an issue as a webhook carries it.
func (is *Issue) issueMap() map[string]any {
	fields := is.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	return map[string]any{"id": is.ID, "key": is.Key, "self": is.Self, "fields": fields}
}

// IssueCreatedPayload is the event of an issue found created by polling,
// shaped as Jira's jira:issue_created webhook.
func (is *Issue) IssueCreatedPayload(created time.Time) map[string]any {
	user, _ := is.Fields["creator"].(map[string]any)
	if user == nil {
		user, _ = is.Fields["reporter"].(map[string]any)
	}
	return map[string]any{"timestamp": created.UnixMilli(), "webhookEvent": EventIssueCreated,
		"issue_event_type_name": "issue_created", "user": orEmpty(user), "issue": is.issueMap()}
}

// UpdatePayload is the event of one change found by polling, shaped as
// Jira's jira:issue_updated webhook (changelog {id, items}), with status
// {from, to} when the change is a status change.
func (is *Issue) UpdatePayload(h *History, created time.Time) map[string]any {
	items := make([]any, 0, len(h.Items))
	for _, it := range h.Items {
		b, _ := json.Marshal(it)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		items = append(items, m)
	}
	cl := map[string]any{"id": h.ID, "items": items}
	p := map[string]any{"timestamp": created.UnixMilli(), "webhookEvent": EventIssueUpdated,
		"issue_event_type_name": "issue_generic", "user": orEmpty(h.Author), "issue": is.issueMap(), "changelog": cl}
	if st := StatusChange(cl); st != nil {
		p["status"] = st
	}
	return p
}

// Comments are the issue's comments in its comment field (the search
// returns the latest ones).
func (is *Issue) Comments() []map[string]any {
	c, _ := is.Fields["comment"].(map[string]any)
	list, _ := c["comments"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, v := range list {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// CommentPayload is the event of a comment found by polling, shaped as
// Jira's comment_created webhook.
func (is *Issue) CommentPayload(comment map[string]any, created time.Time) map[string]any {
	return map[string]any{"timestamp": created.UnixMilli(), "webhookEvent": EventCommentCreated,
		"user": orEmpty(comment["author"]), "issue": is.issueMap(), "comment": comment}
}

func orEmpty(v any) map[string]any {
	if m, ok := v.(map[string]any); ok && m != nil {
		return m
	}
	return map[string]any{}
}
