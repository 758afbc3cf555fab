package jira

import (
	"testing"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/jira/jiratest"
)

// TestKit runs the shared action checks on each Jira action against the
// fake (which takes the kit's canary as the API token).
func TestKit(t *testing.T) {
	f := jiratest.New()
	defer f.Close()
	f.AnyCredentials = true
	is := f.CreateIssue("PROJ", "kit")
	conn := connector.Values{"email": "bot@example.com", "api_token": "set-by-the-kit"}
	for _, tc := range []struct {
		spec *connector.Spec
		with map[string]any
	}{
		{CreateIssue, map[string]any{"project": "PROJ", "summary": "From the kit", "description": "a\n\nb",
			"labels": []any{"kit"}, "assignee": "ada@example.com", "custom_fields": map[string]any{"Story Points": 1}}},
		// In Progress and back: each call of the kit makes a transition
		{TransitionIssue, map[string]any{"issue": is.Key, "to": "In Progress"}},
		{AddComment, map[string]any{"issue": is.Key, "body": "From the kit"}},
		{UpdateIssue, map[string]any{"issue": is.Key, "summary": "Renamed by the kit"}},
	} {
		t.Run(tc.spec.ID, func(t *testing.T) {
			connectortest.Run(t, connectortest.Kit{Spec: tc.spec, Connection: conn, With: tc.with, Fake: f.Config.Handler})
		})
	}
}
