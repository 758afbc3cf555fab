// Package jira is Jira Cloud's connection type and, as its triggers and
// actions arrive, the client and fakes they share.
package jira

import "github.com/sous-run/sous/engine/connector"

// Field names of a jira connection.
const (
	FieldEmail         = "email"
	FieldAPIToken      = "api_token"
	FieldWebhookSecret = "webhook_secret"
	FieldCloudID       = "cloud_id"
)

// Connection is the jira connection type: a site with an account's email
// and API token, or Atlassian OAuth 2.0 (3LO), whose cloud id is found
// through accessible-resources.
var Connection = &connector.ConnectionSpec{
	Type:    "jira",
	Summary: "A Jira site: email and API token, or Atlassian OAuth (3LO)",
	Fields: []connector.Field{
		connector.BaseURLField("", "The site (https://acme.atlassian.net), or a self-hosted Jira or a test server"),
		{Name: FieldEmail, Type: connector.String, Example: "ops@example.com", Description: "The account's email, with api_token"},
		{Name: FieldAPIToken, Type: connector.String, Secret: true, Example: "${JIRA_API_TOKEN}",
			Description: "The account's API token (id.atlassian.com), with email"},
		{Name: FieldWebhookSecret, Type: connector.String, Secret: true, Example: "${JIRA_WEBHOOK_SECRET}",
			Description: "Optional: the secret of the site's webhooks (X-Hub-Signature)"},
		connector.OAuthField([]string{"read:jira-work", "write:jira-work", "read:jira-user", "offline_access"},
			"https://auth.atlassian.com/authorize", "https://auth.atlassian.com/oauth/token"),
		{Name: FieldCloudID, Type: connector.String,
			Description: "With oauth: the site's cloud id"},
		connector.TokenField("An access token minted elsewhere, used as is"),
		connector.RateLimitField("10/s"),
	},
	OneOf: [][]string{{connector.ConnBaseURL, FieldEmail, FieldAPIToken}, {connector.ConnOAuth}, {connector.ConnToken}},
	Requires: map[string][]string{FieldEmail: {FieldAPIToken, connector.ConnBaseURL},
		FieldAPIToken: {FieldEmail, connector.ConnBaseURL}},
	Authorize: authorize,
	OAuth:     &connector.OAuthSpec{AuthParams: map[string]string{"audience": "api.atlassian.com", "prompt": "consent"}},
}

// authorize sends email and API token as basic authentication (Jira
// Cloud's API tokens), else a static token as a bearer token.
func authorize(w connector.Values) (connector.Authorize, error) {
	if w.Has(FieldAPIToken) {
		return connector.BasicAuthorize(w.String(FieldEmail), w.String(FieldAPIToken)), nil
	}
	return connector.StaticAuthorize(w)
}

func init() { connector.RegisterConnection(Connection) }
