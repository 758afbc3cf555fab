package jira_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/jira"
	"github.com/sous-run/sous/internal/clients/jira/jiratest"
)

// TestAPIVersionField: api_version is a documented connection field, one
// of 3, 2 and auto (the default).
func TestAPIVersionField(t *testing.T) {
	fl, ok := jira.Connection.Field(jira.FieldAPIVersion)
	require.True(t, ok)
	require.NotEmpty(t, fl.Description)
	require.Equal(t, jira.APIVersionAuto, fl.Default)
	for _, v := range []string{"3", "2", "auto"} {
		_, err := fl.CheckValue(v)
		require.NoError(t, err, v)
	}
	_, err := fl.CheckValue("4")
	require.Error(t, err)
	require.Equal(t, "auto", jira.APIVersion(connector.Values{}))

	// a value that escaped the check (built in code) is refused by NewAPI
	f := jiratest.New()
	defer f.Close()
	conn, err := f.Connection()
	require.NoError(t, err)
	conn.Values[jira.FieldAPIVersion] = "v3"
	_, err = jira.NewAPI(conn)
	require.Equal(t, connector.ReasonInvalid, connector.Classify(err).Reason)
}

// TestProbeUndecided: a probe answered neither 200 nor 404 (a 503)
// decides nothing: the call's 404 is returned and the next 404 probes
// again, which then falls back.
func TestProbeUndecided(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	f.V2Only = true
	is := f.CreateIssue("PROJ", "x")
	conn, err := f.Connection()
	require.NoError(t, err)
	api, err := jira.NewAPI(conn)
	require.NoError(t, err)
	f.FailNext("/rest/api/3/serverInfo", http.StatusServiceUnavailable, nil, "")
	var out map[string]any
	err = api.Call(context.Background(), http.MethodGet, "rest/api/3/issue/"+is.Key, nil, &out)
	require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason, "%v", err)
	require.False(t, api.V2())

	err = api.Call(context.Background(), http.MethodGet, "rest/api/3/issue/"+is.Key, nil, &out)
	require.NoError(t, err)
	require.Equal(t, is.Key, out["key"])
	require.True(t, api.V2())
	// another API on the same connection's client knows it already
	other, err := jira.NewAPI(conn)
	require.NoError(t, err)
	require.True(t, other.V2())
	require.Equal(t, 3, f.Probes(), "the 503, then v3 and v2")
}

// TestVersionedBody: Doc and Versioned values are sent in the form of the
// version called, anywhere in the body.
func TestVersionedBody(t *testing.T) {
	for _, version := range []string{"2", "3"} {
		t.Run(version, func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			f.V2Only = version == "2"
			is := f.CreateIssue("PROJ", "x")
			conn, err := f.Connection()
			require.NoError(t, err)
			conn.Values[jira.FieldAPIVersion] = version
			api, err := jira.NewAPI(conn)
			require.NoError(t, err)
			body := map[string]any{"fields": map[string]any{"description": jira.Doc("a\nb"),
				"labels": []any{jira.Versioned{V3: "three", V2: "two"}}}}
			require.NoError(t, api.Call(context.Background(), http.MethodPut, "rest/api/3/issue/"+is.Key, body, nil))
			reqs := f.Requests()
			got := reqs[len(reqs)-1]
			require.Equal(t, "/rest/api/"+version+"/issue/"+is.Key, got.Path)
			fields := got.Body["fields"].(map[string]any)
			if version == "2" {
				require.Equal(t, "a\nb", fields["description"])
				require.Equal(t, []any{"two"}, fields["labels"])
			} else {
				require.Equal(t, "a\nb", jira.PlainText(fields["description"]))
				require.Equal(t, []any{"three"}, fields["labels"])
			}
		})
	}
}

// TestIdentityV2: who the account is, on a v2-only site: with auto after
// v3's 404, with 2 at once; with 3 the 404 stays.
func TestIdentityV2(t *testing.T) {
	for _, tc := range []struct {
		version string
		err     bool
		v3      int
	}{{"", false, 1}, {"2", false, 0}, {"3", true, 1}} {
		t.Run("api_version="+tc.version, func(t *testing.T) {
			f := jiratest.New()
			defer f.Close()
			f.V2Only = true
			conn, err := f.Connection()
			require.NoError(t, err)
			if tc.version != "" {
				conn.Values[jira.FieldAPIVersion] = tc.version
			}
			id, err := jira.Connection.Identity(context.Background(), conn.Client, conn.Values)
			v3 := 0
			for _, r := range f.Requests() {
				if strings.HasPrefix(r.Path, "/rest/api/3/") {
					v3++
				}
			}
			require.Equal(t, tc.v3, v3)
			if tc.err {
				require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason, "%v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "bot", id.Extra["account_id"])
			require.Contains(t, id.Account, "Bot <bot@example.com>")
		})
	}
	// on Cloud: v3's account id
	f := jiratest.New()
	defer f.Close()
	conn, err := f.Connection()
	require.NoError(t, err)
	id, err := jira.Connection.Identity(context.Background(), conn.Client, conn.Values)
	require.NoError(t, err)
	require.Equal(t, "acc-bot", id.Extra["account_id"])
}
