package jira

import (
	"context"
	"errors"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
)

// receiver serves POST /hooks/jira/{connection}.
type receiver struct{}

var _ connector.Receiver = receiver{}

// Receive verifies a delivery with the connection's webhook_secret (when
// it has one) and turns it into the events of the triggers it is for:
// jira:issue_created, jira:issue_updated (and, when its changelog changes
// the status, jira.issue_status_changed with status {from, to}) and
// comment_created. Other Jira events are answered 200 and start nothing.
// The dedup key is X-Atlassian-Webhook-Identifier, the same across Jira's
// retries.
func (receiver) Receive(_ context.Context, in *connector.Incoming) (*connector.Received, error) {
	if err := jc.Verify(in.Connection.Values.String(jc.FieldWebhookSecret), in.Header, in.Body); err != nil {
		code := "bad_signature"
		if errors.Is(err, jc.ErrNoSignature) {
			code = "missing_signature"
		}
		return nil, connector.Reject(http.StatusUnauthorized, code, "%s", err.Error())
	}
	return Events(in.Header, in.Body)
}

// Events parses a verified delivery into its events.
func Events(header http.Header, body []byte) (*connector.Received, error) {
	d, err := jc.Parse(body)
	if err != nil {
		return nil, connector.Reject(http.StatusBadRequest, "bad_body", "%s", err.Error())
	}
	key := d.DedupKey(header)
	var events []connector.Event
	add := func(k kind, payload map[string]any) {
		events = append(events, connector.Event{Type: byKind[k].ID, DedupKey: key, Payload: payload})
	}
	switch d.Event {
	case jc.EventIssueCreated:
		add(kindCreated, d.Payload)
	case jc.EventIssueUpdated:
		add(kindUpdated, d.Payload)
		if d.Status != nil {
			status := make(map[string]any, len(d.Payload)+1)
			for k, v := range d.Payload {
				status[k] = v
			}
			status["status"] = d.Status
			add(kindStatus, status)
		}
	case jc.EventCommentCreated:
		add(kindComment, d.Payload)
	}
	reply, err := connector.JSONReply(http.StatusOK, map[string]string{"status": "received"})
	return &connector.Received{Events: events, Reply: reply}, err
}
