// Package slack is Slack's triggers: the Events API (slack.message,
// slack.reaction_added, slack.app_mention, and slack.event for any other
// event type), slash commands (slack.slash_command) and interactions
// (slack.interaction: block actions, shortcuts, view submissions).
//
// One receiver, served at POST /hooks/slack/{connection}, verifies every
// request with the connection's signing_secret before anything else,
// answers url_verification, and gives each request's event to the
// recipes on that connection, filtered by their options (Trigger.Match)
// before any run exists. Slash commands and interactions are answered at
// once with the recipe's reply (Trigger.Respond); the steps run after.
// The signature, the parsing and the payload types live in
// internal/clients/slack.
package slack
