// Package slack is Slack's connection type and, as its triggers and
// actions arrive, the client and fakes they share.
package slack

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// DefaultBaseURL is the Web API's root.
const DefaultBaseURL = "https://slack.com/api/"

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
		connector.BaseURLField(DefaultBaseURL, "The Web API root (an Enterprise Grid or a test server elsewhere)"),
		connector.RateLimitField("50/min burst 5"),
	},
	OneOf: connector.TokenOrOAuth,
	// Slack takes the client's credentials as basic authentication
	OAuth:    &connector.OAuthSpec{CredentialsInHeader: true, Revoke: revoke},
	Identity: identity,
}

func init() { connector.RegisterConnection(Connection) }

// identity calls auth.test: the workspace (team) and user the token acts as.
func identity(ctx context.Context, cl *connector.Client, with connector.Values) (*connector.Identity, error) {
	var r struct {
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
		Team   string `json:"team"`
		TeamID string `json:"team_id"`
		User   string `json:"user"`
		URL    string `json:"url"`
	}
	if err := httpx.CallJSON(ctx, cl, with, DefaultBaseURL, http.MethodPost, "auth.test", nil, &r); err != nil {
		return nil, err
	}
	if !r.OK {
		reason := connector.ReasonClientError
		if r.Error == "invalid_auth" || r.Error == "not_authed" || r.Error == "token_revoked" || r.Error == "account_inactive" {
			reason = connector.ReasonAuth
		}
		return nil, connector.Permanent(reason, fmt.Errorf("slack auth.test: %s", r.Error))
	}
	return &connector.Identity{Account: fmt.Sprintf("%s (%s) as %s", r.Team, r.URL, r.User),
		Extra: map[string]string{"team_id": r.TeamID}}, nil
}

// revoke calls auth.revoke with the token itself.
func revoke(ctx context.Context, cl *connector.Client, with connector.Values, _ string) error {
	var r struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := httpx.CallJSON(ctx, cl, with, DefaultBaseURL, http.MethodPost, "auth.revoke", nil, &r); err != nil {
		return err
	}
	if !r.OK {
		return connector.Permanent(connector.ReasonClientError, fmt.Errorf("slack auth.revoke: %s", r.Error))
	}
	return nil
}
