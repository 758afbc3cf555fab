package jira

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	gojira "github.com/andygrunwald/go-jira"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
	"github.com/sous-run/sous/internal/clients/jira/jiratest"
)

// drain polls until the poller asks for no more, as the engine does, and
// returns the events and the cursor.
func drain(t *testing.T, pl poller, conn *connector.Connection, with connector.Values, cur json.RawMessage) ([]connector.Event, json.RawMessage) {
	t.Helper()
	var all []connector.Event
	for i := 0; ; i++ {
		require.Less(t, i, 100, "the poller ends its pages")
		res, err := pl.Poll(context.Background(), &connector.PollRequest{Type: "x", With: with, Connection: conn, Cursor: cur})
		require.NoError(t, err)
		all = append(all, res.Events...)
		if res.Next != nil {
			cur = res.Next
		}
		if !res.More {
			return all, cur
		}
	}
}

func TestPollStatusChanges(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	f.PageSize = 2
	conn, err := f.Connection()
	require.NoError(t, err)
	old := f.CreateIssue("PROJ", "before the recipe")
	f.Transition(old.Key, "In Progress", false)
	time.Sleep(5 * time.Millisecond) // the recipe starts after that change (Jira's times are milliseconds)

	pl := poller{kind: kindStatus}
	with := connector.Values{FieldProject: "PROJ"}
	evs, cur := drain(t, pl, conn, with, nil)
	require.Empty(t, evs, "the first poll starts from now, without the site's history")

	var keys []string
	for i := range 5 {
		is := f.CreateIssue("PROJ", "issue")
		f.Transition(is.Key, "In Progress", false)
		// two changes in one millisecond: the cursor's seen ids keep both
		f.Transition(is.Key, "Done", true)
		keys = append(keys, is.Key)
		if i == 2 {
			f.CreateIssue("OPS", "other project")
		}
	}
	evs, cur = drain(t, pl, conn, with, cur)
	require.Len(t, evs, 10, "every status change once, over pages of 2 issues")
	seen := map[string]bool{}
	for _, ev := range evs {
		require.False(t, seen[ev.DedupKey], "twice: %s", ev.DedupKey)
		seen[ev.DedupKey] = true
		st := ev.Payload["status"].(map[string]any)
		require.Contains(t, []string{"In Progress", "Done"}, st["to"])
		require.Equal(t, "jira:issue_updated", ev.Payload["webhookEvent"])
		require.NotEmpty(t, ev.Payload["changelog"].(map[string]any)["id"])
		require.True(t, match(connector.Values{FieldTo: st["to"].(string)}, &ev), "the webhook's match works on polled events")
	}
	// nothing new: nothing again, though the overlap searches again
	again, cur := drain(t, pl, conn, with, cur)
	require.Empty(t, again)
	f.Transition(keys[0], "In Review", false)
	again, _ = drain(t, pl, conn, with, cur)
	require.Len(t, again, 1)
	require.Equal(t, map[string]any{"from": "Done", "to": "In Review"}, again[0].Payload["status"])

	// the search asked: the new endpoint, with changelogs, paged by token
	var paged bool
	for _, r := range f.Requests() {
		if r.Path == "/rest/api/3/search/jql" {
			require.Equal(t, "changelog", r.Query["expand"][0])
			require.Contains(t, r.Query["jql"][0], `project = "PROJ"`)
			paged = paged || r.Query["nextPageToken"] != nil
		}
	}
	require.True(t, paged)
}

func TestPollOtherKinds(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	conn, err := f.Connection()
	require.NoError(t, err)
	curs := map[kind]json.RawMessage{}
	for _, k := range []kind{kindCreated, kindUpdated, kindComment} {
		_, curs[k] = drain(t, poller{kind: k}, conn, nil, nil)
	}
	is := f.CreateIssue("PROJ", "new")
	f.Transition(is.Key, "In Progress", false)
	f.AddComment(is.Key, "first\n\nsecond")
	for _, tc := range []struct {
		kind kind
		n    int
		key  string
	}{{kindCreated, 1, "issue"}, {kindUpdated, 1, "changelog"}, {kindComment, 1, "comment"}} {
		evs, _ := drain(t, poller{kind: tc.kind}, conn, nil, curs[tc.kind])
		require.Len(t, evs, tc.n)
		require.Contains(t, evs[0].Payload, tc.key)
		require.Equal(t, is.Key, evs[0].Payload["issue"].(map[string]any)["key"])
	}
}

func TestPollErrors(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	conn, err := f.Connection()
	require.NoError(t, err)
	_, cur := drain(t, poller{kind: kindStatus}, conn, nil, nil)
	f.FailNext("/rest/api/3/search/jql", http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, "")
	_, err = poller{kind: kindStatus}.Poll(context.Background(), &connector.PollRequest{Connection: conn, Cursor: cur})
	ce := connector.Classify(err)
	require.True(t, ce.Retryable)
	require.Equal(t, connector.ReasonRateLimited, ce.Reason)
	require.Equal(t, 7*time.Second, ce.RetryAfter)

	// go-jira's own search calls the removed endpoint: 410, hence the raw request
	client, err := jc.NewClient(conn)
	require.NoError(t, err)
	_, resp, err := client.Issue.Search("updated >= -5m", &gojira.SearchOptions{})
	require.Error(t, err)
	require.Equal(t, http.StatusGone, resp.StatusCode)

	// a wrong token: auth, and the token is not in the message
	conn.Values[jc.FieldAPIToken] = "wrong-token-canary"
	bad, err := connector.NewClient(conn, jc.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	conn.Client = bad
	_, err = poller{kind: kindStatus}.Poll(context.Background(), &connector.PollRequest{Connection: conn, Cursor: cur})
	require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason)
	require.False(t, strings.Contains(err.Error(), "canary"))
}

func TestJQL(t *testing.T) {
	require.Equal(t, `updated >= -2m ORDER BY updated ASC`, JQL(0, "", ""))
	require.Equal(t, `updated >= -7m AND project = "PROJ" AND (labels = x) ORDER BY updated ASC`, JQL(5*time.Minute+time.Second, "PROJ", " labels = x "))
}
