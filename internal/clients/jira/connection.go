// Package jira is Jira Cloud's connection type and, as its triggers and
// actions arrive, the client and fakes they share.
package jira

import (
	"context"
	"fmt"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

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
			Description: "With oauth: the site's cloud id; without it, the one accessible-resources gave when the connection was connected (stored beside its token)"},
		connector.TokenField("An access token minted elsewhere, used as is"),
		connector.RateLimitField("10/s"),
	},
	OneOf: [][]string{{connector.ConnBaseURL, FieldEmail, FieldAPIToken}, {connector.ConnOAuth}, {connector.ConnToken}},
	Requires: map[string][]string{FieldEmail: {FieldAPIToken, connector.ConnBaseURL},
		FieldAPIToken: {FieldEmail, connector.ConnBaseURL}},
	Authorize: authorize,
	Identity:  identity,
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

// identity asks the site who the account is (rest/api/3/myself) with an
// API token; with OAuth, which sites the token reaches
// (accessible-resources), whose first is the connection's.
func identity(ctx context.Context, cl *connector.Client, with connector.Values) (*connector.Identity, error) {
	if with.Has(FieldAPIToken) {
		var me struct {
			AccountID    string `json:"accountId"`
			EmailAddress string `json:"emailAddress"`
			DisplayName  string `json:"displayName"`
		}
		if err := httpx.CallJSON(ctx, cl, with, "", http.MethodGet, "rest/api/3/myself", nil, &me); err != nil {
			return nil, err
		}
		return &connector.Identity{Account: fmt.Sprintf("%s <%s> on %s", me.DisplayName, me.EmailAddress, with.String(connector.ConnBaseURL)),
			Extra: map[string]string{"account_id": me.AccountID}}, nil
	}
	var sites []struct {
		ID   string `json:"id"`
		URL  string `json:"url"`
		Name string `json:"name"`
	}
	if err := httpx.CallJSON(ctx, cl, with, "https://api.atlassian.com/", http.MethodGet, "oauth/token/accessible-resources", nil, &sites); err != nil {
		return nil, err
	}
	if len(sites) == 0 {
		return nil, connector.Permanent(connector.ReasonAuth, fmt.Errorf("the token reaches no Jira site"))
	}
	site := sites[0]
	if id := with.String(FieldCloudID); id != "" {
		for _, s := range sites {
			if s.ID == id {
				site = s
			}
		}
	}
	return &connector.Identity{Account: site.URL, Extra: map[string]string{"cloud_id": site.ID}}, nil
}
