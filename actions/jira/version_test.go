package jira

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
	"github.com/sous-run/sous/internal/clients/jira/jiratest"
)

// counts splits the fake's requests: serverInfo probes, other v3 and other
// v2 requests.
func counts(f *jiratest.Fake) (probes, v3, v2 int) {
	for _, r := range f.Requests() {
		switch {
		case strings.HasSuffix(r.Path, "/serverInfo"):
			probes++
		case strings.HasPrefix(r.Path, "/rest/api/3/"):
			v3++
		case strings.HasPrefix(r.Path, "/rest/api/2/"):
			v2++
		}
	}
	return
}

// connTo is a connection to the fake with api_version set (unset when "").
func connTo(t *testing.T, f *jiratest.Fake, version string) *connector.Connection {
	t.Helper()
	conn, err := f.Connection()
	require.NoError(t, err)
	if version != "" {
		conn.Values[jc.FieldAPIVersion] = version
	}
	return conn
}

// v2Case is one action against a v2-only site, with the check of the v2
// request it makes.
type v2Case struct {
	name  string
	spec  *connector.Spec
	with  func(key string) map[string]any
	check func(t *testing.T, f *jiratest.Fake, key string, out map[string]any)
}

func v2Cases() []v2Case {
	return []v2Case{
		{"create_issue", CreateIssue, func(string) map[string]any {
			return map[string]any{"project": "PROJ", "summary": "On Data Center", "description": "line one\n\nline two",
				"assignee": "ada@example.com", "custom_fields": map[string]any{"Story Points": 2}}
		}, func(t *testing.T, f *jiratest.Fake, _ string, out map[string]any) {
			key, _ := out["key"].(string)
			require.NotEmpty(t, key)
			req := last(t, f, http.MethodPost, "/rest/api/2/issue")
			fields := req.Body["fields"].(map[string]any)
			require.Equal(t, "line one\n\nline two", fields["description"], "plain text on v2")
			require.Equal(t, map[string]any{"name": "ada"}, fields["assignee"], "the user name on v2")
			require.EqualValues(t, 2, fields["customfield_10010"])
			require.Equal(t, "ada@example.com", last(t, f, http.MethodGet, "/rest/api/2/user/search").Query["username"][0])
			is, ok := f.Issue(key)
			require.True(t, ok)
			require.Equal(t, "line one\n\nline two", is.Description)
			require.Equal(t, "ada", is.Assignee)
		}},
		{"add_comment", AddComment, func(key string) map[string]any {
			return map[string]any{"issue": key, "body": "Deployed.\n\nOn staging."}
		}, func(t *testing.T, f *jiratest.Fake, key string, out map[string]any) {
			require.NotEmpty(t, out["id"])
			req := last(t, f, http.MethodPost, "/rest/api/2/issue/"+key+"/comment")
			require.Equal(t, "Deployed.\n\nOn staging.", req.Body["body"], "plain text on v2")
		}},
		{"transition_issue", TransitionIssue, func(key string) map[string]any {
			return map[string]any{"issue": key, "to": "In Progress"}
		}, func(t *testing.T, f *jiratest.Fake, key string, out map[string]any) {
			require.Equal(t, "In Progress", out["status"])
			is, _ := f.Issue(key)
			require.Equal(t, "In Progress", is.Status)
			last(t, f, http.MethodPost, "/rest/api/2/issue/"+key+"/transitions")
		}},
		{"update_issue", UpdateIssue, func(key string) map[string]any {
			return map[string]any{"issue": key, "summary": "Renamed", "description": "new text", "assignee": "ada@example.com"}
		}, func(t *testing.T, f *jiratest.Fake, key string, out map[string]any) {
			req := last(t, f, http.MethodPut, "/rest/api/2/issue/"+key)
			fields := req.Body["fields"].(map[string]any)
			require.Equal(t, "new text", fields["description"])
			require.Equal(t, map[string]any{"name": "ada"}, fields["assignee"])
			is, _ := f.Issue(key)
			require.Equal(t, "Renamed", is.Summary)
		}},
	}
}

// TestV2OnlyAuto: with api_version auto (unset), each action on a v2-only
// site falls back to v2: its first v3 call is answered 404, the site is
// probed once (serverInfo on v3, then v2), the call is made again on v2,
// and the connection's later calls go to v2 at once, without probing
// again.
func TestV2OnlyAuto(t *testing.T) {
	for _, tc := range v2Cases() {
		t.Run(tc.name, func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			f.V2Only = true
			key := f.CreateIssue("PROJ", "x").Key
			conn := connTo(t, f, "")
			out, _, err := runOn(t, context.Background(), conn, tc.spec, tc.with(key))
			require.NoError(t, err)
			tc.check(t, f, key, out)
			probes, v3, _ := counts(f)
			require.Equal(t, 2, probes, "one probe: serverInfo on v3 then on v2")
			require.Equal(t, 1, v3, "only the first call went to v3")

			// the same connection again (another step): v2 at once
			key2 := f.CreateIssue("PROJ", "y").Key
			out, _, err = runOn(t, context.Background(), conn, tc.spec, tc.with(key2))
			require.NoError(t, err)
			tc.check(t, f, key2, out)
			probes, v3, _ = counts(f)
			require.Equal(t, 2, probes, "no second probe")
			require.Equal(t, 1, v3)
		})
	}
}

// TestV2OnlyForced: with api_version 2, the actions call v2 from the
// start: no v3 request, no probe.
func TestV2OnlyForced(t *testing.T) {
	for _, tc := range v2Cases() {
		t.Run(tc.name, func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			f.V2Only = true
			key := f.CreateIssue("PROJ", "x").Key
			out, _, err := runOn(t, context.Background(), connTo(t, f, "2"), tc.spec, tc.with(key))
			require.NoError(t, err)
			tc.check(t, f, key, out)
			probes, v3, v2 := counts(f)
			require.Zero(t, probes)
			require.Zero(t, v3)
			require.NotZero(t, v2)
		})
	}
}

// TestV3NeverFallsBack: with api_version 3, a v2-only site's 404 is the
// step's not_found error: no probe, no v2 request.
func TestV3NeverFallsBack(t *testing.T) {
	for _, tc := range v2Cases() {
		t.Run(tc.name, func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			f.V2Only = true
			key := f.CreateIssue("PROJ", "x").Key
			_, _, err := runOn(t, context.Background(), connTo(t, f, "3"), tc.spec, tc.with(key))
			require.Error(t, err)
			require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason, "%v", err)
			probes, _, v2 := counts(f)
			require.Zero(t, probes)
			require.Zero(t, v2)
		})
	}
}

// TestMissingIssueOnCloud: on a site with v3 (Jira Cloud), a 404 "Issue
// does not exist" stays not_found: the probe finds v3 (once per
// connection) and nothing is sent to v2.
func TestMissingIssueOnCloud(t *testing.T) {
	for _, tc := range []struct {
		spec *connector.Spec
		with map[string]any
	}{
		{AddComment, map[string]any{"issue": "PROJ-404", "body": "hello"}},
		{TransitionIssue, map[string]any{"issue": "PROJ-404", "to": "Done"}},
		{UpdateIssue, map[string]any{"issue": "PROJ-404", "summary": "x"}},
	} {
		t.Run(tc.spec.ID, func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			conn := connTo(t, f, "")
			for range 2 {
				_, _, err := runOn(t, context.Background(), conn, tc.spec, tc.with)
				require.Error(t, err)
				require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason, "%v", err)
				require.Contains(t, err.Error(), "Issue does not exist")
			}
			probes, _, v2 := counts(f)
			require.Equal(t, 1, probes, "v3 serverInfo once: the site has v3")
			require.Zero(t, v2)
		})
	}
}
