package gcal

import (
	"context"
	"errors"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// updateEvent patches the fields set; the others are kept.
func updateEvent(ctx context.Context, req *connector.Request) (map[string]any, error) {
	svc, err := google.Calendar(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	ev, err := event(req.With)
	if err != nil {
		return nil, err
	}
	if req.With.String(FieldTimeZone) != "" && ev.Start == nil && ev.End == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("update event: time_zone applies to start and end: set them too"))
	}
	if ev.Summary == "" && ev.Description == "" && ev.Location == "" && ev.Start == nil && ev.End == nil && ev.Attendees == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("update event: nothing to change"))
	}
	got, err := svc.Events.Patch(req.With.String(FieldCalendarID), req.With.String(FieldEventID), ev).
		SendUpdates(req.With.String(FieldSendUpdates)).Context(ctx).Do()
	if err != nil {
		return nil, google.Classify("update calendar event", err)
	}
	return output(got), nil
}
