package slack

import (
	"context"
	"errors"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

// createChannel creates a channel, or returns the one of that name
// (name_taken): one channel however often the step runs.
func createChannel(ctx context.Context, req *connector.Request) (map[string]any, error) {
	api, err := sc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(req.With.String(FieldName), "#")
	ch, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name, IsPrivate: req.With.Bool(FieldIsPrivate)})
	if err == nil {
		return map[string]any{"id": ch.ID, "name": ch.Name, "is_private": ch.IsPrivate, "created": true}, nil
	}
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "name_taken" {
		return nil, sc.Classify("conversations.create", name, err)
	}
	found, err := sc.FindChannel(ctx, api, name)
	if err != nil {
		return nil, err
	}
	if found == nil {
		// taken by a channel this token cannot list (another's private one)
		return nil, connector.Permanent(connector.ReasonConflict,
			errors.New(`slack conversations.create: name_taken: a channel "`+name+`" exists that this connection cannot see`))
	}
	return map[string]any{"id": found.ID, "name": found.Name, "is_private": found.IsPrivate, "created": false}, nil
}
