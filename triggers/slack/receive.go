package slack

import (
	"context"
	"errors"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

// receiver serves POST /hooks/slack/{connection}.
type receiver struct{}

var _ connector.Receiver = receiver{}

// Receive verifies a request with the connection's signing_secret (every
// request first, url_verification too), answers url_verification with its
// challenge (text/plain, as Slack documents) and app_rate_limited and a
// slash command URL's ssl_check with an empty 200, and turns an event, a slash
// command or an interaction into the event of its trigger (an Events API
// event also into slack.event's). It gives no Reply for those: each
// matching recipe's trigger answers (Trigger.Respond), with its reply or
// an empty 200, and a slash command or an interaction no recipe matches
// gets an empty 200 too (Received.Ignored).
func (receiver) Receive(_ context.Context, in *connector.Incoming) (*connector.Received, error) {
	if err := sc.Verify(in.Connection.Values.String(sc.FieldSigningSecret), in.Header, in.Body, in.Now); err != nil {
		code := "bad_signature"
		switch {
		case errors.Is(err, sc.ErrNoSecret):
			code = "no_secret"
		case errors.Is(err, sc.ErrNoSignature):
			code = "missing_signature"
		case errors.Is(err, sc.ErrStale), errors.Is(err, sc.ErrBadTimestamp):
			code = "stale_timestamp"
		}
		return nil, connector.Reject(http.StatusUnauthorized, code, "%s", err.Error())
	}
	d, err := sc.ParseRequest(in.Header, in.Body)
	if err != nil {
		return nil, connector.Reject(http.StatusBadRequest, "bad_body", "%s", err.Error())
	}
	switch d.Kind {
	case sc.KindURLVerification:
		return &connector.Received{Reply: &connector.Reply{Status: http.StatusOK,
			Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, Body: []byte(d.Challenge)}}, nil
	case sc.KindRateLimited, sc.KindSSLCheck:
		return &connector.Received{Reply: &connector.Reply{Status: http.StatusOK}}, nil
	case sc.KindSlashCommand:
		return &connector.Received{Events: []connector.Event{{Type: SlashCommand.ID, DedupKey: d.DedupKey, Payload: d.Payload}},
			Ignored: &connector.Reply{Status: http.StatusOK}}, nil // nothing for the user to read
	case sc.KindInteraction:
		return &connector.Received{Events: []connector.Event{{Type: Interaction.ID, DedupKey: d.DedupKey, Payload: d.Payload}},
			Ignored: &connector.Reply{Status: http.StatusOK}}, nil // an empty 200: a modal closes
	}
	var events []connector.Event
	if s, ok := Events[d.Type]; ok {
		events = append(events, connector.Event{Type: s.ID, DedupKey: d.DedupKey, Payload: d.Payload})
	}
	events = append(events, connector.Event{Type: Event.ID, DedupKey: d.DedupKey, Payload: d.Payload})
	return &connector.Received{Events: events}, nil
}
