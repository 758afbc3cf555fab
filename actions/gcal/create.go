package gcal

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/api/calendar/v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// createEvent inserts the event with an id derived from the step's
// idempotency key (or event_id): an insert whose answer was lost and is
// retried meets 409, and the event it made is fetched and returned.
func createEvent(ctx context.Context, req *connector.Request) (map[string]any, error) {
	svc, err := google.Calendar(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	ev, err := event(req.With)
	if err != nil {
		return nil, err
	}
	if ev.Start == nil || ev.End == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("create event: start and end are required"))
	}
	ev.Id = req.With.String(FieldEventID)
	if ev.Id == "" {
		if req.IdempotencyKey == "" {
			return nil, connector.Permanent(connector.ReasonInvalid, errors.New("create event: no idempotency key and no event_id"))
		}
		ev.Id = EventID(req.IdempotencyKey)
	}
	cal := req.With.String(FieldCalendarID)
	call := svc.Events.Insert(cal, ev).SendUpdates(req.With.String(FieldSendUpdates)).Context(ctx)
	if req.With.Bool(FieldConference) {
		ev.ConferenceData = &calendar.ConferenceData{CreateRequest: &calendar.CreateConferenceRequest{
			RequestId: ev.Id, ConferenceSolutionKey: &calendar.ConferenceSolutionKey{Type: "hangoutsMeet"}}}
		call = call.ConferenceDataVersion(1)
	}
	got, err := call.Do()
	existed := false
	if google.Code(err) == http.StatusConflict {
		// the id exists: this step's earlier attempt made it
		existed = true
		got, err = svc.Events.Get(cal, ev.Id).Context(ctx).Do()
	}
	if err != nil {
		return nil, google.Classify("create calendar event", err)
	}
	out := output(got)
	out["existed"] = existed
	if req.Logger != nil {
		req.Logger.Info("calendar event", "calendar", cal, "event_id", got.Id, "existed", existed)
	}
	return out, nil
}
