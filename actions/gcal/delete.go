package gcal

import (
	"context"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// deleteEvent deletes an event; one already deleted (410) is done.
func deleteEvent(ctx context.Context, req *connector.Request) (map[string]any, error) {
	svc, err := google.Calendar(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	id := req.With.String(FieldEventID)
	err = svc.Events.Delete(req.With.String(FieldCalendarID), id).SendUpdates(req.With.String(FieldSendUpdates)).Context(ctx).Do()
	already := google.Code(err) == http.StatusGone
	if err != nil && !already {
		return nil, google.Classify("delete calendar event", err)
	}
	return map[string]any{"id": id, "deleted": true, "already_deleted": already}, nil
}
