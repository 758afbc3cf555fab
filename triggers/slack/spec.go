package slack

import (
	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

// The trigger IDs.
const (
	IDMessage       = "slack.message"
	IDReactionAdded = "slack.reaction_added"
	IDAppMention    = "slack.app_mention"
	IDEvent         = "slack.event"
	IDSlashCommand  = "slack.slash_command"
	IDInteraction   = "slack.interaction"
)

// The triggers' option names.
const (
	FieldChannel         = "channel"
	FieldUser            = "user"
	FieldIncludeBots     = "include_bots"
	FieldAllSubtypes     = "all_subtypes"
	FieldType            = "type"
	FieldReaction        = "reaction"
	FieldCommand         = "command"
	FieldActionID        = "action_id"
	FieldCallbackID      = "callback_id"
	FieldInteractionType = "interaction_type"
	FieldReplyText       = "reply_text"
	FieldReplyBlocks     = "reply_blocks"
	FieldResponseType    = "response_type"
)

var (
	leaf = connector.Leaf
	p    = connector.P
	obj  = connector.Obj
)

const received = " Received at POST /hooks/slack/{connection} (the app's Request URL), verified with the connection's " +
	"signing_secret (v0 signature, timestamp within 5 minutes); Slack's redeliveries start one run."

// Options shared by the triggers.
var (
	channelField = connector.Field{Name: FieldChannel, Type: connector.String, Example: "C0123456789",
		Description: "Only events in this channel: its id, or its name (with or without #) where the event carries the name (slash commands, interactions)"}
	userField = connector.Field{Name: FieldUser, Type: connector.String, Example: "U0123456789",
		Description: "Only events by this user id"}
	botsField = connector.Field{Name: FieldIncludeBots, Type: connector.Bool, Default: false,
		Description: "Also messages posted by bots (bot_id or subtype bot_message), this app's own included: beware of loops"}
	replyFields = []connector.Field{
		{Name: FieldReplyText, Type: connector.String, Example: "On it!",
			Description: "The immediate answer Slack shows (within its 3 s), as the message's text; none: an empty 200, Slack shows nothing"},
		{Name: FieldReplyBlocks, Type: connector.List, Example: []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*On it!*"}}},
			Description: "The immediate answer's Block Kit blocks (with reply_text as the fallback text)"},
		{Name: FieldResponseType, Type: connector.String, Default: "ephemeral", Enum: []string{"ephemeral", "in_channel"},
			Description: "Whether the immediate answer is seen by the user alone (ephemeral) or by the channel (in_channel)"},
	}
)

// common are the keys every Events API event has beside its own.
func common() []connector.Prop {
	return []connector.Prop{
		p("type", leaf(connector.String, "The event type (message, reaction_added, ...)")),
		p("event_ts", leaf(connector.String, "When the event happened (a Slack timestamp)")),
		p("event_id", leaf(connector.String, "The delivery's event id (the dedup key)")),
		p("event_time", leaf(connector.Int, "When the event happened, unix seconds")),
		p("team_id", leaf(connector.String, "The workspace id")),
		p("api_app_id", leaf(connector.String, "The app's id")),
		p("enterprise_id", leaf(connector.String, "The Enterprise Grid org id, when any")),
		p("is_ext_shared_channel", leaf(connector.Bool, "Whether the channel is shared with another workspace")),
		p("retry_num", leaf(connector.Int, "Slack's X-Slack-Retry-Num: 0 on the first delivery, 1 to 3 on its redeliveries")),
		p("retry_reason", leaf(connector.String, "Slack's X-Slack-Retry-Reason (http_timeout, http_error, ...), empty on the first delivery")),
	}
}

func messageShape() *connector.Shape {
	return obj(append(common(),
		p("subtype", leaf(connector.String, "The message subtype (bot_message, message_changed, ...), empty for a plain message")),
		p("channel", leaf(connector.String, "The channel id")),
		p("channel_type", leaf(connector.String, "channel, group, im or mpim")),
		p("user", leaf(connector.String, "The author's user id")),
		p("text", leaf(connector.String, "The message text")),
		p("ts", leaf(connector.String, "The message's timestamp (its id in the channel)")),
		p("thread_ts", leaf(connector.String, "The thread's parent timestamp, for a reply")),
		p("bot_id", leaf(connector.String, "The bot's id, for a bot's message")),
		p("team", leaf(connector.String, "The author's workspace id")),
		p("client_msg_id", leaf(connector.String, "The client's message id")),
		p("blocks", connector.ListOf(connector.OpenObj(nil), "The message's Block Kit blocks")),
		p("files", connector.ListOf(connector.OpenObj(nil), "Files shared with the message")),
	)...)
}

func reactionShape() *connector.Shape {
	return obj(append(common(),
		p("user", leaf(connector.String, "Who reacted (user id)")),
		p("reaction", leaf(connector.String, "The emoji's name, without colons (thumbsup)")),
		p("item_user", leaf(connector.String, "The author of the item reacted to")),
		p("item", obj(
			p("type", leaf(connector.String, "message, file or file_comment")),
			p("channel", leaf(connector.String, "The message's channel id")),
			p("ts", leaf(connector.String, "The message's timestamp")),
			p("file", leaf(connector.String, "The file's id, for a file")),
		).Describe("What was reacted to")),
	)...)
}

func slashShape() *connector.Shape {
	return obj(
		p("command", leaf(connector.String, "The command, with its slash (/ticket)")),
		p("text", leaf(connector.String, "What follows the command")),
		p("user_id", leaf(connector.String, "Who ran it")),
		p("user_name", leaf(connector.String, "Their user name")),
		p("channel_id", leaf(connector.String, "Where it was run")),
		p("channel_name", leaf(connector.String, "That channel's name")),
		p("team_id", leaf(connector.String, "The workspace id")),
		p("team_domain", leaf(connector.String, "The workspace's domain")),
		p("enterprise_id", leaf(connector.String, "The Enterprise Grid org id, when any")),
		p("enterprise_name", leaf(connector.String, "Its name")),
		p("response_url", leaf(connector.String, "Where to answer later (POST a message JSON, up to 5 times in 30 minutes)")),
		p("trigger_id", leaf(connector.String, "Opens a modal within 3 s; the dedup key")),
		p("api_app_id", leaf(connector.String, "The app's id")),
		p("is_enterprise_install", leaf(connector.String, `"true" or "false"`)),
	)
}

func interactionShape() *connector.Shape {
	anyObj := func(desc string) *connector.Shape { return connector.OpenObj(nil).Describe(desc) }
	return connector.OpenObj(nil,
		p("type", leaf(connector.String, "block_actions, shortcut, message_action, view_submission, view_closed, ...")),
		p("trigger_id", leaf(connector.String, "Opens a modal within 3 s; the dedup key")),
		p("response_url", leaf(connector.String, "Where to answer later (block actions and message shortcuts)")),
		p("callback_id", leaf(connector.String, "The shortcut's or the view's callback id")),
		p("action_id", leaf(connector.String, "The first block action's action_id (block_actions)")),
		p("action_value", leaf(connector.String, "The first block action's value, or its selected option's")),
		p("action_ts", leaf(connector.String, "When the action happened")),
		p("api_app_id", leaf(connector.String, "The app's id")),
		p("user", connector.OpenObj(nil,
			p("id", leaf(connector.String, "The user's id")),
			p("username", leaf(connector.String, "Their user name")),
			p("name", leaf(connector.String, "Their name")),
			p("team_id", leaf(connector.String, "Their workspace")),
		).Describe("Who acted")),
		p("channel", connector.OpenObj(nil,
			p("id", leaf(connector.String, "The channel id")),
			p("name", leaf(connector.String, "The channel name")),
		).Describe("Where (block actions and message shortcuts)")),
		p("team", connector.OpenObj(nil,
			p("id", leaf(connector.String, "The workspace id")),
			p("domain", leaf(connector.String, "The workspace's domain")),
		).Describe("The workspace")),
		p("actions", connector.ListOf(connector.OpenObj(nil,
			p("action_id", leaf(connector.String, "The element's action_id")),
			p("block_id", leaf(connector.String, "Its block's id")),
			p("type", leaf(connector.String, "button, static_select, ...")),
			p("value", leaf(connector.String, "A button's value")),
		), "The block actions")),
		p("message", anyObj("The message the action is on")),
		p("view", anyObj("The view (view_submission: view.state.values holds the inputs)")),
		p("container", anyObj("Where the action's element is")),
		p("state", anyObj("The inputs' state (block_actions)")),
	)
}

func eventTrigger(id, summary, desc string, shape *connector.Shape, fields ...connector.Field) *connector.Spec {
	return &connector.Spec{
		ID: id, Kind: connector.KindTrigger, Summary: summary, Description: desc + received,
		Connection: sc.Connection.Type, ConnectionRequired: true,
		Fields:  fields,
		Shape:   shape,
		Trigger: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection, Match: match(id), Respond: respond},
	}
}

// The Slack triggers.
var (
	Message = eventTrigger(IDMessage, "A message was posted in a Slack channel (Events API message)",
		"Slack's message event (subscribe to message.channels, message.groups, message.im...). Bots' messages are left out unless "+
			"include_bots; message events that are no new post (an edit, a deletion, a join, a topic change: subtypes other "+
			"than none, thread_broadcast, file_share, me_message and bot_message) unless all_subtypes.",
		messageShape(), channelField, userField, botsField,
		connector.Field{Name: FieldAllSubtypes, Type: connector.Bool, Default: false,
			Description: "Also message events that are no new post: edits (message_changed), deletions (message_deleted), joins, topic changes..."})
	ReactionAdded = eventTrigger(IDReactionAdded, "Someone reacted to a Slack message (reaction_added)",
		"Slack's reaction_added event; channel filters on the reacted item's channel.",
		reactionShape(), channelField, userField,
		connector.Field{Name: FieldReaction, Type: connector.String, Example: "white_check_mark",
			Description: "Only this emoji (its name, with or without colons)"})
	AppMention = eventTrigger(IDAppMention, "The app was mentioned in a Slack message (app_mention)",
		"Slack's app_mention event.", messageShape(), channelField, userField, botsField)
	Event = eventTrigger(IDEvent, "Any Slack Events API event, by its type",
		"Starts a run for each Events API event of the type named by `type` (channel_created, member_joined_channel, ...); "+
			"the event's own keys are untyped.",
		connector.OpenObj(nil, append(common(),
			p("channel", leaf(connector.Any, "The channel (an id, or an object for channel_* events), when the event has one")),
			p("user", leaf(connector.Any, "The user (an id, or an object for user_* events), when the event has one")),
		)...),
		connector.Field{Name: FieldType, Type: connector.String, Required: true, Pattern: `^[a-z][a-z0-9_]*$`,
			PatternHelp: "must be a Slack event type such as channel_created", Example: "channel_created",
			Description: "The Events API event type"},
		channelField, userField, botsField)
	SlashCommand = eventTrigger(IDSlashCommand, "Someone ran one of the app's Slack slash commands",
		"A slash command (form-encoded). The request is answered at once with reply_text / reply_blocks (or an empty 200); "+
			"the steps run after and can answer later by POSTing to event.response_url. The dedup key is trigger_id.",
		slashShape(), append([]connector.Field{
			{Name: FieldCommand, Type: connector.String, Example: "/ticket", Pattern: `^/?[^\s/]+$`, PatternHelp: "must be a command such as /ticket",
				Description: "Only this command (with or without its slash)"},
			channelField, userField}, replyFields...)...)
	Interaction = eventTrigger(IDInteraction, "Someone used an interactive element of the app (block action, shortcut, view submission)",
		"An interaction (a form whose payload is JSON): block_actions, shortcut, message_action, view_submission, view_closed. "+
			"It is answered at once with reply_text / reply_blocks, or an empty 200 (always for view_submission and view_closed: it closes the modal); "+
			"the steps run after and can answer later through event.response_url. The dedup key is trigger_id.",
		interactionShape(), append([]connector.Field{
			{Name: FieldInteractionType, Type: connector.String, Example: "block_actions",
				Description: "Only this interaction type (block_actions, shortcut, message_action, view_submission, view_closed, ...)"},
			{Name: FieldActionID, Type: connector.String, Example: "approve", Description: "Only block actions whose (first) action has this action_id"},
			{Name: FieldCallbackID, Type: connector.String, Example: "new_ticket", Description: "Only shortcuts or views with this callback_id"},
			channelField, userField}, replyFields...)...)
)

// Events maps the Events API types that have their own trigger.
var Events = map[string]*connector.Spec{
	"message":        Message,
	"reaction_added": ReactionAdded,
	"app_mention":    AppMention,
}

func init() {
	connector.Register(Message, ReactionAdded, AppMention, Event, SlashCommand, Interaction)
	connector.RegisterReceiver(&connector.ReceiverSpec{Service: "slack", Connection: sc.Connection.Type, Receiver: receiver{}})
}
