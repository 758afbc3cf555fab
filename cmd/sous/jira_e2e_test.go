package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	jc "github.com/sous-run/sous/internal/clients/jira"
	"github.com/sous-run/sous/internal/clients/jira/jiratest"
	"github.com/sous-run/sous/internal/httpx"
)

const jiraSecret = "jira_webhook_secret"

// jiraConnections is the config's connections: jira on the fake, and an
// http connection to the sink.
func jiraConnections(f *jiratest.Fake, sink string) string {
	return fmt.Sprintf(`connections:
  jira:
    type: jira
    base_url: %s
    email: %s
    api_token: %s
    webhook_secret: %s
  sink:
    type: http
    base_url: %s
`, f.URL, f.Email, f.Token, jiraSecret, sink)
}

// jiraRecipe is a recipe of trigger (a YAML flow map) that posts id to the sink.
func jiraRecipe(name, trigger, id string) string {
	return fmt.Sprintf(`version: 1
name: %s
trigger: %s
steps:
  - id: tell
    action: http.request
    connection: sink
    with: {method: POST, url: /hook, json: {id: "%s"}}
`, name, trigger, id)
}

func jiraPost(t *testing.T, base string, body []byte, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/hooks/jira/jira", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestJiraWebhookThroughServe: the exact bytes of PROTOCOLS.md's vector,
// signed, start a run of each recipe whose options match (the status
// trigger's to, the project) and none of the others; a wrong or missing
// signature is 401 and stores nothing; a redelivery is one run.
func TestJiraWebhookThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary")
	}
	f := jiratest.New()
	defer f.Close()
	sink := &idSink{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	body, err := os.ReadFile("../../triggers/jira/testdata/jira_issue_updated.json")
	require.NoError(t, err)
	recipes := map[string]string{
		"status.yaml":  jiraRecipe("to-in-progress", `{type: jira.issue_status_changed, connection: jira, with: {project: PROJ, to: In Progress}}`, "{{ event.issue.key }}:{{ event.status.to }}"),
		"updated.yaml": jiraRecipe("any-update", `{type: jira.issue_updated, connection: jira}`, "{{ event.changelog.id }}"),
		"done.yaml":    jiraRecipe("to-done", `{type: jira.issue_status_changed, connection: jira, with: {to: Done}}`, "done"),
		"ops.yaml":     jiraRecipe("ops-only", `{type: jira.issue_status_changed, connection: jira, with: {project: OPS}}`, "ops"),
	}
	s := newServeSetup(t, buildSous(t), recipes, jiraConnections(f, sinkSrv.URL))
	c := s.start(t, 1)
	waitReady(t, s.base, c)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sous serve:\n%s", c.output())
			for _, name := range []string{"to-in-progress", "any-update", "to-done", "ops-only"} {
				rs, _ := s.runs(name)
				for _, r := range rs {
					t.Logf("run of %s: %s %s", name, r.Status, r.Error)
				}
			}
		}
	})

	runs := func(recipe string) int {
		rs, err := s.runs(recipe)
		require.NoError(t, err)
		return len(rs)
	}
	// wrong, missing: 401, nothing stored
	require.Equal(t, http.StatusUnauthorized, jiraPost(t, s.base, body, http.Header{jc.HeaderSignature: {httpx.SignSHA256("other", body)}, jc.HeaderIdentifier: {"d-0"}}))
	require.Equal(t, http.StatusUnauthorized, jiraPost(t, s.base, body, http.Header{jc.HeaderIdentifier: {"d-0"}}))
	// right, twice (Jira's retry keeps the identifier)
	sig := "sha256=2630a2b2a06ebcc9194b92f892ef6943ef844f9c2f010e2f037a13caae2f228f"
	for range 2 {
		require.Equal(t, http.StatusOK, jiraPost(t, s.base, body, http.Header{jc.HeaderSignature: {sig}, jc.HeaderIdentifier: {"d-1"}, jc.HeaderRetry: {"1"}}))
	}
	require.Eventually(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.seen["PROJ-123:In Progress"] > 0 && sink.seen["10100"] > 0
	}, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return runs("to-in-progress") == 1 && runs("any-update") == 1 }, 30*time.Second, 20*time.Millisecond)
	stopChild(t, c)
	require.Equal(t, 1, runs2(t, s, "to-in-progress"))
	require.Equal(t, 1, runs2(t, s, "any-update"))
	sink.mu.Lock()
	require.Equal(t, 1, sink.seen["PROJ-123:In Progress"])
	require.Equal(t, 1, sink.seen["10100"])
	sink.mu.Unlock()
	t.Run("options filter", func(t *testing.T) {
		require.Zero(t, runs2(t, s, "to-done"), "filtered by to before any run")
		require.Zero(t, runs2(t, s, "ops-only"), "filtered by project before any run")
	})
	// the events stored: the two of the one signed delivery
	db := stoppedStore(t, filepath.Join(s.tmp, "data"))
	var events int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM events WHERE type LIKE 'jira.%'`).Scan(&events))
	require.Equal(t, 2, events, "one issue_updated and one issue_status_changed; nothing of the refused requests")
}

// runs2 counts a recipe's runs in a stopped server's store.
func runs2(t *testing.T, s *serveSetup, recipe string) int {
	t.Helper()
	db := stoppedStore(t, filepath.Join(s.tmp, "data"))
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM runs WHERE recipe = ?`, recipe).Scan(&n))
	return n
}

// TestJiraPollingSurvivesKill: JQL polling against a fake Jira that pages
// its search (3 issues a page) while issues change during the test; `sous
// serve` is killed with SIGKILL in the middle and started again: every
// status change starts one run, none two.
func TestJiraPollingSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary twice")
	}
	f := jiratest.New()
	defer f.Close()
	f.PageSize = 3
	sink := &idSink{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	recipes := map[string]string{
		"poll.yaml": jiraRecipe("polled-status", `{type: jira.issue_status_changed, connection: jira, with: {project: PROJ, poll_interval: 50ms}}`,
			"{{ event.issue.key }}/{{ event.changelog.id }}/{{ event.status.to }}"),
	}
	s := newServeSetup(t, buildSous(t), recipes, jiraConnections(f, sinkSrv.URL))
	c := s.start(t, 1)
	waitReady(t, s.base, c)
	// the poller's first poll sets its cursor at "now": wait for it
	require.Eventually(t, func() bool {
		for _, r := range f.Requests() {
			if r.Path == "/rest/api/3/search/jql" {
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "the poller searches")

	// a writer changes issues all along: 30 issues, each through three
	// statuses before the kill and while the server is down, and a fourth
	// after the restart; some changes fall in the same millisecond
	const issues = 30
	want := map[string]bool{}
	var wmu sync.Mutex
	var keys []string
	for i := range issues {
		keys = append(keys, f.CreateIssue("PROJ", fmt.Sprintf("issue %d", i)).Key)
		if i%7 == 0 {
			f.CreateIssue("OPS", "not ours")
		}
	}
	round := func(n int, to string) {
		for i, k := range keys {
			id := f.Transition(k, to, i%4 == 1)
			wmu.Lock()
			want[k+"/"+id+"/"+to] = true
			wmu.Unlock()
			if i%3 == 0 {
				time.Sleep(time.Duration(2+n) * time.Millisecond) // spread the changes over the polls
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n, to := range []string{"In Progress", "In Review", "Done"} {
			round(n, to)
		}
	}()
	total := issues * 4
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d >= total/5 }, 60*time.Second, time.Millisecond)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	<-c.done
	atKill, _ := sink.counts()
	<-done
	require.Less(t, atKill, issues*3, "killed in the middle")

	c = s.start(t, 2)
	waitReady(t, s.base, c)
	round(3, "To Do")
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d == total }, 90*time.Second, 10*time.Millisecond,
		"every status change reaches the sink after the restart")
	require.Eventually(t, func() bool {
		rs, err := s.runs("polled-status")
		return err == nil && len(rs) == total
	}, 60*time.Second, 20*time.Millisecond)
	stopChild(t, c)

	sink.mu.Lock()
	for k := range sink.seen {
		require.True(t, want[k], "a change the writer made: %s", k)
	}
	sink.mu.Unlock()
	db := stoppedStore(t, filepath.Join(s.tmp, "data"))
	requireOnceEach(t, db, "jira.issue_status_changed", "polled-status", total)
	requireNoneFailed(t, db)
	_, heard := sink.counts()
	t.Logf("killed after %d of %d changes reached the sink; %d requests heard twice (runs in flight at the kill)", atKill, total, heard-total)
}

// TestJiraValidateTypo: a typo in a Jira event field is reported at its
// line and column, with a suggestion.
func TestJiraValidateTypo(t *testing.T) {
	for _, tc := range []struct {
		name, trigger, expr, suggest string
	}{
		{"webhook", "jira.issue_status_changed", "event.status.too", "to"},
		{"issue", "jira.issue_created", "event.isue.key", "issue"},
		{"comment", "jira.comment_created", "event.coment.body", "comment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "typo.yaml", `version: 1
name: typo
trigger: {type: `+tc.trigger+`, connection: jira}
steps:
  - id: tell
    action: http.request
    with: {url: "https://example.com", json: {x: "{{ `+tc.expr+` }}"}}
`)
			writeFile(t, dir, "sous.yaml", "connections:\n  jira:\n    type: jira\n    base_url: https://acme.atlassian.net\n    email: a@example.com\n    api_token: jira-api-token-0123456789\n")
			r := sous(t, "", "validate", "--config", filepath.Join(dir, "sous.yaml"), path)
			require.Equal(t, 1, r.code, "%s", r)
			require.Regexp(t, regexp.QuoteMeta(path)+`:7:\d+: error: expression: unknown field .*\(did you mean "`+tc.suggest+`"\?\)`, r.stdout)
			require.Equal(t, 1, strings.Count(r.stdout, "error:"), "the typo alone: %s", r)
		})
	}
}

// TestJiraActionsThroughServe: webhook.received → filter → jira.create_issue,
// jira.add_comment and jira.transition_issue against the fake Jira; the run
// record holds the created issue's key, id and url.
func TestJiraActionsThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary")
	}
	f := jiratest.New()
	defer f.Close()
	recipe := `version: 1
name: web-to-jira
trigger: {type: webhook.received, with: {path: /tickets}}
filter: event.body.priority == "high"
steps:
  - id: create
    action: jira.create_issue
    connection: jira
    with:
      project: PROJ
      issue_type: Bug
      summary: "{{ event.body.title }}"
      description: "{{ event.body.text }}"
      labels: [web]
      assignee: ada@example.com
      custom_fields: {Story Points: 2}
  - id: comment
    action: jira.add_comment
    connection: jira
    with: {issue: "{{ steps.create.output.key }}", body: "Filed from the web form."}
  - id: move
    action: jira.transition_issue
    connection: jira
    with: {issue: "{{ steps.create.output.key }}", to: In Progress}
`
	s := newServeSetup(t, buildSous(t), map[string]string{"web.yaml": recipe}, jiraConnections(f, "http://127.0.0.1:1"))
	c := s.start(t, 1)
	waitReady(t, s.base, c)
	post := func(body string) int {
		resp, err := http.Post(s.base+"/hooks/tickets", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusAccepted, post(`{"title":"Checkout broken","text":"Since 10:00.\n\nAll carts.","priority":"high"}`))
	require.Equal(t, http.StatusAccepted, post(`{"title":"Typo","text":"on the about page","priority":"low"}`))
	var runID string
	require.Eventually(t, func() bool {
		rs, err := s.runs("web-to-jira")
		if err != nil {
			return false
		}
		for _, r := range rs {
			if r.Status == "succeeded" {
				runID = r.ID
			}
		}
		return len(rs) == 2 && runID != ""
	}, 30*time.Second, 20*time.Millisecond)

	req, err := http.NewRequest(http.MethodGet, s.base+"/api/v1/runs/"+runID, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var run struct {
		Record struct {
			Steps []struct {
				ID     string         `json:"id"`
				Status string         `json:"status"`
				Output map[string]any `json:"output"`
			} `json:"steps"`
		} `json:"record"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&run))
	require.Len(t, run.Record.Steps, 3)
	out := run.Record.Steps[0].Output
	require.Equal(t, "PROJ-1", out["key"])
	require.NotEmpty(t, out["id"])
	require.Equal(t, f.URL+"/browse/PROJ-1", out["url"])
	require.Equal(t, "In Progress", run.Record.Steps[2].Output["status"])

	is, ok := f.Issue("PROJ-1")
	require.True(t, ok)
	require.Equal(t, "Checkout broken", is.Summary)
	require.Equal(t, "In Progress", is.Status)
	require.Equal(t, "acc-ada", is.Assignee)
	require.EqualValues(t, 2, is.Custom["customfield_10010"])
	require.Equal(t, "Since 10:00.\n\nAll carts.", jc.PlainText(is.Description))
	require.Len(t, is.Comments, 1)
	_, other := f.Issue("PROJ-2")
	require.False(t, other, "the low-priority ticket was filtered out")
	stopChild(t, c)
}
