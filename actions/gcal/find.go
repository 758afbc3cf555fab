package gcal

import (
	"context"
	"errors"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// findEvents lists the events of a range and query (q, or its alias
// query), pages followed up to max_results.
func findEvents(ctx context.Context, req *connector.Request) (map[string]any, error) {
	svc, err := google.Calendar(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	if errs := oneQuery(req.With); len(errs) > 0 {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("find events: "+errs[0].Message))
	}
	query := req.With.String(FieldQuery)
	if !req.With.Has(FieldQuery) {
		query = req.With.String(FieldQueryAlias)
	}
	limit := req.With.Int(FieldMaxResults)
	if limit <= 0 {
		limit = 50
	}
	events := []any{}
	token := ""
	for {
		call := svc.Events.List(req.With.String(FieldCalendarID)).SingleEvents(true).OrderBy("startTime").
			MaxResults(min(limit-int64(len(events)), 250)).Context(ctx)
		if s := req.With.String(FieldTimeMin); s != "" {
			call = call.TimeMin(s)
		}
		if s := req.With.String(FieldTimeMax); s != "" {
			call = call.TimeMax(s)
		}
		if query != "" {
			call = call.Q(query)
		}
		if token != "" {
			call = call.PageToken(token)
		}
		page, err := call.Do()
		if err != nil {
			return nil, google.Classify("find calendar events", err)
		}
		for _, ev := range page.Items {
			if int64(len(events)) < limit {
				events = append(events, output(ev))
			}
		}
		token = page.NextPageToken
		if token == "" || int64(len(events)) >= limit {
			break
		}
	}
	return map[string]any{"events": events, "count": len(events)}, nil
}
