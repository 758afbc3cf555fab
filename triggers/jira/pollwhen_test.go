package jira

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// TestPollWhen: a recipe that sets poll_interval polls (keyed by its
// options, served by the poller); one that does not receives webhooks
// (keyed by its connection); jql without poll_interval is refused.
func TestPollWhen(t *testing.T) {
	for id, s := range Specs {
		t.Run(id, func(t *testing.T) {
			polled := connector.Values{FieldProject: "PROJ", FieldPollInterval: "1m"}
			require.True(t, connector.Polls(s, polled))
			require.Equal(t, connector.PollKey(id, "jira", polled), connector.IndexKey(s, "r", "jira", polled))
			require.False(t, connector.Polls(s, connector.Values{FieldProject: "PROJ"}))
			require.Equal(t, "jira", connector.IndexKey(s, "r", "jira", connector.Values{FieldProject: "PROJ"}))
			errs := s.Validate(connector.Values{FieldJQL: "labels = x"})
			require.Len(t, errs, 1)
			require.Equal(t, FieldJQL, errs[0].Field)
			require.Empty(t, s.Validate(connector.Values{FieldJQL: "labels = x", FieldPollInterval: "1m"}))
		})
	}
	require.Len(t, Specs, 4)
}
