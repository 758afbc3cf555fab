package outlook_test

import (
	"testing"

	"github.com/sous-run/sous/actions/outlook"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/microsoft"
)

// TestKit runs the shared action checks on both outlook actions against
// the Graph fake (which takes the kit's canary token).
func TestKit(t *testing.T) {
	tests := []struct {
		spec *connector.Spec
		with map[string]any
	}{
		{outlook.SendMail, map[string]any{"to": []any{"ada@example.com"}, "cc": "Bob <bob@example.com>", "subject": "Hi",
			"html": "<p>Hi</p>", "attachments": []any{map[string]any{"filename": "a.txt", "content": "hello"}},
			"headers": map[string]any{"X-Ticket": "OPS-1"}}},
		{outlook.CreateEvent, map[string]any{"summary": "Standup", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:15:00Z",
			"attendees": []any{"ada@example.com"}, "is_online_meeting": true}},
	}
	for _, tc := range tests {
		t.Run(tc.spec.ID, func(t *testing.T) {
			connectortest.Run(t, connectortest.Kit{Spec: tc.spec, Connection: connector.Values{connector.ConnToken: "set-by-the-kit"},
				With: tc.with, Fake: microsoft.NewFake("")})
		})
	}
}
