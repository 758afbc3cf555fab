package gcal_test

import (
	"testing"

	"google.golang.org/api/calendar/v3"

	"github.com/sous-run/sous/actions/gcal"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/google"
)

// TestKit runs the shared action checks on every gcal action against the
// fake (which takes the kit's canary token).
func TestKit(t *testing.T) {
	existing := func() *google.Fake {
		f := google.NewFake("")
		f.AddEvent("primary", &calendar.Event{Id: "kitevent1", Summary: "Kit", Status: "confirmed",
			Start: &calendar.EventDateTime{DateTime: "2026-03-02T10:00:00Z"}, End: &calendar.EventDateTime{DateTime: "2026-03-02T11:00:00Z"}})
		return f
	}
	tests := []struct {
		spec *connector.Spec
		with map[string]any
	}{
		{gcal.CreateEvent, map[string]any{"summary": "Standup", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:15:00Z",
			"attendees": []any{"ada@example.com"}, "conference": true}},
		{gcal.UpdateEvent, map[string]any{"event_id": "kitevent1", "summary": "Moved"}},
		{gcal.DeleteEvent, map[string]any{"event_id": "kitevent1"}},
		{gcal.FindEvents, map[string]any{"time_min": "2026-03-01T00:00:00Z", "q": "kit"}},
	}
	for _, tc := range tests {
		t.Run(tc.spec.ID, func(t *testing.T) {
			connectortest.Run(t, connectortest.Kit{Spec: tc.spec, Connection: connector.Values{connector.ConnToken: "set-by-the-kit"},
				With: tc.with, Fake: existing()})
		})
	}
}
