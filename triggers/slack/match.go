package slack

import (
	"net/http"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

// match is trigger id's filter of an event by a recipe's options, before
// any run exists.
func match(id string) func(with connector.Values, ev *connector.Event) bool {
	return func(with connector.Values, ev *connector.Event) bool {
		p := ev.Payload
		if p == nil {
			return false
		}
		if want := strings.TrimPrefix(with.String(FieldChannel), "#"); want != "" && !matchAny(want, channels(id, p)) {
			return false
		}
		if want := with.String(FieldUser); want != "" && !matchAny(want, users(id, p)) {
			return false
		}
		switch id {
		case IDMessage, IDAppMention, IDEvent:
			if id == IDEvent && sc.Str(p, "type") != with.String(FieldType) {
				return false
			}
			if isBot(p) && !with.Bool(FieldIncludeBots) {
				return false
			}
			if id == IDMessage && !postSubtypes[sc.Str(p, "subtype")] && !with.Bool(FieldAllSubtypes) {
				return false
			}
		case IDReactionAdded:
			if want := strings.Trim(with.String(FieldReaction), ":"); want != "" && sc.Str(p, "reaction") != want {
				return false
			}
		case IDSlashCommand:
			if want := with.String(FieldCommand); want != "" && "/"+strings.TrimPrefix(want, "/") != sc.Str(p, "command") {
				return false
			}
		case IDInteraction:
			for field, key := range map[string]string{FieldInteractionType: "type", FieldActionID: "action_id", FieldCallbackID: "callback_id"} {
				if want := with.String(field); want != "" && sc.Str(p, key) != want {
					return false
				}
			}
		}
		return true
	}
}

// postSubtypes are the message subtypes of a new post; the others (an
// edit, a deletion, a join, a topic change...) are no message posted.
var postSubtypes = map[string]bool{"": true, "thread_broadcast": true, "file_share": true, "me_message": true, "bot_message": true}

// isBot says whether an event is a bot's message (this app's own posts
// among them).
func isBot(p map[string]any) bool {
	return sc.Str(p, "bot_id") != "" || sc.Str(p, "subtype") == "bot_message" ||
		sc.Str(p, "message.bot_id") != "" || sc.Str(p, "message.subtype") == "bot_message"
}

func matchAny(want string, got []string) bool {
	for _, g := range got {
		if g != "" && g == want {
			return true
		}
	}
	return false
}

// channels are the ids and names of the channel an event happened in.
func channels(id string, p map[string]any) []string {
	switch id {
	case IDSlashCommand:
		return []string{sc.Str(p, "channel_id"), sc.Str(p, "channel_name")}
	case IDInteraction:
		return []string{sc.Str(p, "channel.id"), sc.Str(p, "channel.name"), sc.Str(p, "container.channel_id")}
	case IDReactionAdded:
		return []string{sc.Str(p, "item.channel")}
	}
	return []string{sc.Str(p, "channel"), sc.Str(p, "channel.id"), sc.Str(p, "channel.name")}
}

// users are the ids of who caused an event.
func users(id string, p map[string]any) []string {
	switch id {
	case IDSlashCommand:
		return []string{sc.Str(p, "user_id")}
	case IDInteraction:
		return []string{sc.Str(p, "user.id")}
	}
	return []string{sc.Str(p, "user"), sc.Str(p, "user.id")}
}

// respond is the immediate answer of a recipe's trigger: its reply_text
// and reply_blocks as a message of its response_type, or, with neither,
// an empty 200, which Slack takes as a plain acknowledgement (it shows
// nothing; the engine's own 202 JSON answer would not do: Slack wants a
// 200, and shows a slash command's JSON answer as a message).
//
// A view submission (or closing) is always answered with an empty 200,
// which closes the modal: Slack takes a response_action there, not a
// message.
func respond(with connector.Values, ev *connector.Event) (*connector.Reply, error) {
	text := with.String(FieldReplyText)
	blocks, _ := with[FieldReplyBlocks].([]any)
	if typ := sc.Str(ev.Payload, "type"); ev.Type == IDInteraction && strings.HasPrefix(typ, "view_") {
		text, blocks = "", nil
	}
	if text == "" && len(blocks) == 0 {
		return &connector.Reply{Status: http.StatusOK}, nil
	}
	rt := with.String(FieldResponseType)
	if rt == "" {
		rt = "ephemeral"
	}
	msg := map[string]any{"response_type": rt, "text": text}
	if len(blocks) > 0 {
		msg["blocks"] = blocks
	}
	return connector.JSONReply(http.StatusOK, msg)
}
