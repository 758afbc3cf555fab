// Package slack is Slack's connection type and, as its triggers and
// actions arrive, the client and fakes they share.
package slack

import "github.com/sous-run/sous/engine/connector"

// Field names of a slack connection.
const (
	FieldSigningSecret = "signing_secret"
)

// Connection is the slack connection type: a bot token, or an OAuth app
// (client id and secret, scopes), and the app's signing secret.
var Connection = &connector.ConnectionSpec{
	Type:    "slack",
	Summary: "A Slack workspace: a bot token or an OAuth app, and the app's signing secret",
	Fields: []connector.Field{
		connector.TokenField("A bot token (xoxb-...), instead of the OAuth app"),
		{Name: FieldSigningSecret, Type: connector.String, Secret: true, Example: "${SLACK_SIGNING_SECRET}",
			Description: "The app's signing secret (Slack's request signing)"},
		connector.OAuthField([]string{"chat:write", "channels:read", "channels:history", "reactions:read", "files:write"},
			"https://slack.com/oauth/v2/authorize", "https://slack.com/api/oauth.v2.access"),
		connector.BaseURLField("https://slack.com/api/", "The Web API root (an Enterprise Grid or a test server elsewhere)"),
		connector.RateLimitField("50/min burst 5"),
	},
	OneOf: connector.TokenOrOAuth,
	// Slack takes the client's credentials as basic authentication
	OAuth: &connector.OAuthSpec{CredentialsInHeader: true},
}

func init() { connector.RegisterConnection(Connection) }
