package jira

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
	"github.com/sous-run/sous/internal/clients/jira/jiratest"
)

// run calls an action with literal values (defaults applied) on a
// connection to the fake; it returns the logs too.
func run(t *testing.T, f *jiratest.Fake, s *connector.Spec, with map[string]any) (map[string]any, string, error) {
	t.Helper()
	conn, err := f.Connection()
	require.NoError(t, err)
	return runOn(t, context.Background(), conn, s, with)
}

func runOn(t *testing.T, ctx context.Context, conn *connector.Connection, s *connector.Spec, with map[string]any) (map[string]any, string, error) {
	t.Helper()
	w := connector.Values{}
	for _, fl := range s.Fields {
		if v, ok := with[fl.Name]; ok {
			c, err := fl.CheckValue(v)
			require.NoError(t, err, fl.Name)
			w[fl.Name] = c
		} else if fl.Default != nil {
			w[fl.Name] = fl.Default
		}
	}
	var logs bytes.Buffer
	out, err := s.Action.Run(ctx, &connector.Request{Recipe: "r", RunID: "run-1", Step: "s", With: w, Connection: conn,
		IdempotencyKey: "run-1:s", Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	return out, logs.String(), err
}

// last is the fake's last request to path (with method).
func last(t *testing.T, f *jiratest.Fake, method, path string) jiratest.Request {
	t.Helper()
	reqs := f.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && reqs[i].Path == path {
			return reqs[i]
		}
	}
	require.Failf(t, "no request", "%s %s", method, path)
	return jiratest.Request{}
}

func TestCreateIssue(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	out, _, err := run(t, f, CreateIssue, map[string]any{
		"project": "PROJ", "issue_type": "Bug", "summary": "Login fails", "description": "Seen by Ada.\n\nSteps:\n1. log in",
		"labels": []any{"customer", "p1"}, "assignee": "ada@example.com", "custom_fields": map[string]any{"Story Points": 3},
	})
	require.NoError(t, err)
	require.Equal(t, "PROJ-1", out["key"])
	require.Equal(t, f.URL+"/browse/PROJ-1", out["url"])
	require.NotEmpty(t, out["id"])

	req := last(t, f, http.MethodPost, "/rest/api/3/issue")
	require.Equal(t, "Basic", req.Auth)
	fields := req.Body["fields"].(map[string]any)
	require.Equal(t, map[string]any{"key": "PROJ"}, fields["project"])
	require.Equal(t, map[string]any{"name": "Bug"}, fields["issuetype"])
	require.Equal(t, "Login fails", fields["summary"])
	require.Equal(t, []any{"customer", "p1"}, fields["labels"])
	require.Equal(t, map[string]any{"accountId": "acc-ada"}, fields["assignee"], "the email looked up")
	require.EqualValues(t, 3, fields["customfield_10010"], "the custom field by its name")
	desc := fields["description"].(map[string]any)
	require.Equal(t, "doc", desc["type"])
	require.Len(t, desc["content"], 2, "two paragraphs")
	require.Equal(t, "Seen by Ada.\n\nSteps:\n1. log in", jc.PlainText(desc))
	require.Equal(t, "ada@example.com", last(t, f, http.MethodGet, "/rest/api/3/user/search").Query["query"][0])

	is, ok := f.Issue("PROJ-1")
	require.True(t, ok)
	require.Equal(t, "Bug", is.Type)
	require.Equal(t, "acc-ada", is.Assignee)
}

func TestCreateIssueFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		with   map[string]any
		reason connector.Reason
		msg    string
	}{
		{"unknown project", map[string]any{"project": "NOPE", "summary": "x"}, connector.ReasonClientError, "project: valid project is required"},
		{"unknown email", map[string]any{"project": "PROJ", "summary": "x", "assignee": "who@example.com"}, connector.ReasonNotFound, "no user with email who@example.com"},
		{"unknown field", map[string]any{"project": "PROJ", "summary": "x", "custom_fields": map[string]any{"Colour": "red"}}, connector.ReasonInvalid, "no field named Colour"},
		{"label with a space", map[string]any{"project": "PROJ", "summary": "x", "labels": []any{"two words"}}, connector.ReasonInvalid, "has a space"},
		{"unknown account id", map[string]any{"project": "PROJ", "summary": "x", "assignee": "acc-nobody"}, connector.ReasonClientError, "assignee: Specified user does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			_, _, err := run(t, f, CreateIssue, tc.with)
			require.Error(t, err)
			ce := connector.Classify(err)
			require.False(t, ce.Retryable, "%v", err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestTransitionIssue(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	is := f.CreateIssue("PROJ", "x")
	out, _, err := run(t, f, TransitionIssue, map[string]any{"issue": is.Key, "to": "done"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"issue": is.Key, "status": "Done", "transition_id": jiratest.TransitionID("Done"), "changed": true}, out)
	require.Equal(t, map[string]any{"id": jiratest.TransitionID("Done")}, last(t, f, http.MethodPost, "/rest/api/3/issue/"+is.Key+"/transitions").Body["transition"])
	got, _ := f.Issue(is.Key)
	require.Equal(t, "Done", got.Status)

	// again (a retried step): already there
	out, _, err = run(t, f, TransitionIssue, map[string]any{"issue": is.Key, "to": "Done"})
	require.NoError(t, err)
	require.Equal(t, false, out["changed"])

	// no such status: permanent, listing the available ones
	_, _, err = run(t, f, TransitionIssue, map[string]any{"issue": is.Key, "to": "Blocked"})
	require.Error(t, err)
	ce := connector.Classify(err)
	require.False(t, ce.Retryable)
	for _, s := range []string{`"To Do"`, `"In Progress"`, `"In Review"`, `no transition to "Blocked"`} {
		require.Contains(t, err.Error(), s)
	}

	// no such issue: not_found
	_, _, err = run(t, f, TransitionIssue, map[string]any{"issue": "PROJ-999", "to": "Done"})
	require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason, "%v", err)
	require.Contains(t, err.Error(), "Issue does not exist")
}

// TestTransitionUnknownStatusFetchFails: the unknown-name error comes
// from the transitions list alone; a failing status read (a fake serving
// only /transitions, or a 5xx) does not replace it.
func TestTransitionUnknownStatusFetchFails(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusInternalServerError} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			is := f.CreateIssue("PROJ", "x")
			serve := f.Config.Handler
			f.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.URL.Path == "/rest/api/3/issue/"+is.Key {
					http.Error(w, `{"errorMessages":["no status here"]}`, code)
					return
				}
				serve.ServeHTTP(w, r)
			})
			_, logs, err := run(t, f, TransitionIssue, map[string]any{"issue": is.Key, "to": "Blocked"})
			require.Error(t, err)
			ce := connector.Classify(err)
			require.False(t, ce.Retryable, "%v", err)
			require.Equal(t, connector.ReasonClientError, ce.Reason, "%v", err)
			for _, s := range []string{`no transition to "Blocked"`, `"In Progress"`, `"In Review"`, `"Done"`} {
				require.Contains(t, err.Error(), s)
			}
			require.Contains(t, logs, "current status not read")
		})
	}
}

func TestAddComment(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	is := f.CreateIssue("PROJ", "x")
	out, _, err := run(t, f, AddComment, map[string]any{"issue": is.Key, "body": "Deployed.\nIn 1.4.2."})
	require.NoError(t, err)
	require.NotEmpty(t, out["id"])
	require.Contains(t, out["url"], "/browse/"+is.Key+"?focusedCommentId=")
	body := last(t, f, http.MethodPost, "/rest/api/3/issue/"+is.Key+"/comment").Body["body"].(map[string]any)
	require.Equal(t, "doc", body["type"])
	require.Equal(t, "Deployed.\nIn 1.4.2.", jc.PlainText(body))
	got, _ := f.Issue(is.Key)
	require.Len(t, got.Comments, 1)
}

func TestUpdateIssue(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	is := f.CreateIssue("PROJ", "old")
	out, _, err := run(t, f, UpdateIssue, map[string]any{"issue": is.Key, "summary": "new", "labels": []any{"a"}})
	require.NoError(t, err)
	require.Equal(t, is.Key, out["issue"])
	req := last(t, f, http.MethodPut, "/rest/api/3/issue/"+is.Key)
	require.Equal(t, map[string]any{"summary": "new", "labels": []any{"a"}}, req.Body["fields"])
	got, _ := f.Issue(is.Key)
	require.Equal(t, "new", got.Summary)

	_, _, err = run(t, f, UpdateIssue, map[string]any{"issue": is.Key})
	require.Equal(t, connector.ReasonInvalid, connector.Classify(err).Reason)
}

// TestErrorKinds: Jira's answers as the error kinds the runner retries by,
// for every action; the secret canary is in no error, log or output.
func TestErrorKinds(t *testing.T) {
	const canary = "sous-canary-jira-0123456789"
	for _, s := range []*connector.Spec{CreateIssue, TransitionIssue, AddComment, UpdateIssue} {
		for _, tc := range []struct {
			status     int
			header     http.Header
			body       string
			retryable  bool
			reason     connector.Reason
			retryAfter time.Duration
			msg        string
		}{
			{429, http.Header{"Retry-After": {"7"}}, "", true, connector.ReasonRateLimited, 7 * time.Second, ""},
			{500, nil, "", true, connector.ReasonServerError, 0, ""},
			{503, http.Header{"Retry-After": {"2"}}, "", true, connector.ReasonServerError, 2 * time.Second, ""},
			{401, nil, "", false, connector.ReasonAuth, 0, ""},
			{403, nil, "", false, connector.ReasonAuth, 0, ""},
			{404, nil, "", false, connector.ReasonNotFound, 0, ""},
			{400, nil, `{"errorMessages":["Bad thing"],"errors":{"summary":"too long"}}`, false, connector.ReasonClientError, 0, "Bad thing; summary: too long"},
		} {
			t.Run(s.ID+"/"+http.StatusText(tc.status), func(t *testing.T) {
				f := jiratest.New()
				defer f.Close()
				f.Token = canary
				is := f.CreateIssue("PROJ", "x")
				f.FailNext("/rest/api/3/", tc.status, tc.header, tc.body)
				with := map[string]any{"project": "PROJ", "summary": "s", "issue": is.Key, "to": "Done", "body": "b"}
				out, logs, err := run(t, f, s, with)
				require.Error(t, err)
				ce := connector.Classify(err)
				require.Equal(t, tc.retryable, ce.Retryable, "%v", err)
				require.Equal(t, tc.reason, ce.Reason, "%v", err)
				require.Equal(t, tc.retryAfter, ce.RetryAfter)
				require.Contains(t, err.Error(), tc.msg)
				for _, text := range []string{err.Error(), logs} {
					require.NotContains(t, text, canary)
				}
				require.Nil(t, out)
			})
		}
	}
}

// TestCancel: a cancelled context ends a call to a site that does not
// answer.
func TestCancel(t *testing.T) {
	hang := make(chan struct{})
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	})}
	f := jiratest.New()
	defer f.Close()
	f.Config.Handler = srv.Handler
	defer close(hang)
	conn, err := f.Connection()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = runOn(t, ctx, conn, CreateIssue, map[string]any{"project": "PROJ", "summary": "x"})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "deadline") || strings.Contains(err.Error(), "canceled"), "%v", err)
	require.Equal(t, connector.ReasonTimeout, connector.Classify(err).Reason)
}

func TestADF(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // paragraphs
	}{{"", 0}, {"one", 1}, {"a\nb", 1}, {"a\n\nb", 2}, {"a\r\n\r\n\r\nb\n", 2}, {"\n\n\n", 0}} {
		doc := jc.ADF(tc.in)
		require.Equal(t, "doc", doc["type"])
		require.Len(t, doc["content"], tc.want, "%q", tc.in)
	}
}
