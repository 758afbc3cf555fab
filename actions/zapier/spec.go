package zapier

import (
	"context"
	"errors"
	"fmt"

	"github.com/sous-run/sous/engine/connector"
)

// Field names of zapier.notify.
const (
	FieldEvent = "event"
	FieldData  = "data"
	// FieldForwardRun sends the run so far instead of data.
	FieldForwardRun = "forward_run"
)

// Channel is the runtime's outbox channel for Zapier's REST hooks.
const Channel = "zapier"

// Notify is the spec of zapier.notify.
var Notify = &connector.Spec{
	ID:      "zapier.notify",
	Kind:    connector.KindAction,
	Summary: "Send an object to every Zapier subscriber of an event (REST hooks)",
	Description: "Publishes `data` to every Zap subscribed to `event` (POST /api/v1/zapier/hooks). Each subscriber " +
		"gets one JSON object: `data`'s fields with `id` set to a stable id (the same for every subscriber and every " +
		"retry; data's own `id` is kept as `data_id`), in a POST with `X-Sous-Delivery` (the delivery's stable id) " +
		"and `X-Sous-Event`. The step succeeds once a delivery per subscriber is stored; each is then sent and " +
		"retried on its own (5xx, 408, 429 and timeouts with a doubling backoff; 410 deletes the subscription; " +
		"other 4xx are failed), so a dead subscriber neither blocks nor fails the others. With `forward_run: true` " +
		"the object is the run so far instead of `data`: `{run: {id, recipe, attempt}, event, trigger, vars, steps}` " +
		"(the earlier steps' outputs and statuses). " +
		"Needs `sous serve` (its store); the output lists the deliveries.",
	Fields: []connector.Field{
		{Name: FieldEvent, Type: connector.String, Required: true, Pattern: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`,
			PatternHelp: "must be letters, digits, _ . and -", Description: "The event name Zaps subscribe to",
			Example: "order_paid"},
		{Name: FieldData, Type: connector.Object, Default: map[string]any{},
			Description: "The object sent to each subscriber", Example: map[string]any{"order": "{{ event.body.id }}"}},
		{Name: FieldForwardRun, Type: connector.Bool, Default: false,
			Description: "Send the run so far (run, event, trigger, vars and the earlier steps' outputs) instead of data; set no data with it"},
	},
	Validate: func(w connector.Values) []connector.FieldError {
		if w.Bool(FieldForwardRun) && len(w.Map(FieldData)) > 0 {
			return []connector.FieldError{{Field: FieldForwardRun, Message: "forward_run sends the run instead of data: set one of them"}}
		}
		return nil
	},
	Shape: connector.Obj(
		connector.P("id", connector.Leaf(connector.String, "The item's stable id, the body's id")),
		connector.P("event", connector.Leaf(connector.String, "The event name")),
		connector.P("subscribers", connector.Leaf(connector.Int, "How many subscribers a delivery was queued for")),
		connector.P("deliveries", connector.ListOf(connector.Obj(
			connector.P("id", connector.Leaf(connector.String, "The delivery's stable id (X-Sous-Delivery)")),
			connector.P("subscriber", connector.Leaf(connector.String, "The subscription's id")),
			connector.P("status", connector.Leaf(connector.String, "pending, or what became of it already")),
		), "One delivery per subscriber")),
	),
	Channel: &connector.ChannelUse{Name: Channel, TopicField: FieldEvent},
	Action:  connector.ActionFunc(notify),
}

func notify(ctx context.Context, req *connector.Request) (map[string]any, error) {
	ob := connector.OutboxFrom(ctx)
	if ob == nil {
		return nil, connector.Permanent("config_error", connector.ErrNoOutbox)
	}
	event := req.With.String(FieldEvent)
	body := req.With.Map(FieldData)
	if req.With.Bool(FieldForwardRun) {
		if len(body) > 0 {
			return nil, connector.Permanent(connector.ReasonInvalid, errors.New("forward_run sends the run instead of data: set one of them"))
		}
		if req.Run == nil {
			return nil, connector.Permanent(connector.ReasonInvalid, errors.New("forward_run: no run to forward (called outside a run)"))
		}
		body = req.Run
	}
	r, err := ob.Publish(ctx, req, &connector.OutboxMessage{Channel: Channel, Topic: event, Body: body})
	if err != nil {
		// the store could not take it now: the step is tried again
		return nil, connector.Retryable("store_error", 0, fmt.Errorf("queue the deliveries of %s: %w", event, err))
	}
	ds := make([]any, 0, len(r.Deliveries))
	for _, d := range r.Deliveries {
		ds = append(ds, map[string]any{"id": d.ID, "subscriber": d.Subscriber, "status": d.Status})
	}
	return map[string]any{"id": r.ID, "event": event, "subscribers": len(ds), "deliveries": ds}, nil
}

func init() { connector.Register(Notify) }
