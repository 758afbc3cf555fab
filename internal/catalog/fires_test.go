package catalog

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

func TestFires(t *testing.T) {
	tests := []struct {
		name string
		t    *connector.Trigger
		want string
	}{
		{"none", nil, ""},
		{"by path", &connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "path"},
			"on each request to `/hooks<path>`; recipes sharing a path must agree on its other options"},
		{"by connection", &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection},
			"on the service's webhooks at `POST /hooks/acme/<connection>`; every recipe on the connection sees each event"},
		{"polled", &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions},
			"by polling the service from a saved cursor; one poller per connection and options, across processes"},
		{"scheduled", &connector.Trigger{Kind: connector.Clock, Key: connector.KeyRecipe},
			"on its schedule, once per tick across processes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Fires(&connector.Spec{ID: "acme.thing", Trigger: tc.t}))
		})
	}
}
