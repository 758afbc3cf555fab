// Package jira is Jira Cloud's connection type and, as its triggers and
// actions arrive, the client and fakes they share.
package jira

import (
	"context"
	"errors"
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
	FieldAPIVersion    = "api_version"
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
		{Name: FieldAPIVersion, Type: connector.String, Default: APIVersionAuto, Enum: []string{APIVersion3, APIVersion2, APIVersionAuto}, Example: APIVersion2,
			Description: "The REST API the actions call: 3 (Jira Cloud), 2 (Jira Data Center / Server, which has no v3), or auto: v3, " +
				"falling back to v2 for good when the site answers 404 to rest/api/3/serverInfo and 200 to rest/api/2/serverInfo " +
				"(probed once, on the first 404 from a v3 path); the JQL polling triggers always use v3's search/jql"},
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

// errNotTried stands for a call not made yet.
var errNotTried = errors.New("jira: not tried")

// identity asks the site who the account is with an API token
// (rest/api/3/myself; with api_version 2, or auto when v3 is answered 404,
// rest/api/2/myself, whose user name stands for the account id); with
// OAuth, which sites the token reaches (accessible-resources), whose first
// is the connection's.
func identity(ctx context.Context, cl *connector.Client, with connector.Values) (*connector.Identity, error) {
	if with.Has(FieldAPIToken) {
		var me struct {
			AccountID    string `json:"accountId"`
			Name         string `json:"name"`
			EmailAddress string `json:"emailAddress"`
			DisplayName  string `json:"displayName"`
		}
		mode := APIVersion(with)
		err := errNotTried
		if mode != APIVersion2 {
			err = httpx.CallJSON(ctx, cl, with, "", http.MethodGet, "rest/api/3/myself", nil, &me)
		}
		if mode == APIVersion2 || (mode == APIVersionAuto && notFound(err)) {
			err = httpx.CallJSON(ctx, cl, with, "", http.MethodGet, "rest/api/2/myself", nil, &me)
		}
		if err != nil {
			return nil, err
		}
		id := me.AccountID
		if id == "" {
			id = me.Name
		}
		return &connector.Identity{Account: fmt.Sprintf("%s <%s> on %s", me.DisplayName, me.EmailAddress, with.String(connector.ConnBaseURL)),
			Extra: map[string]string{"account_id": id}}, nil
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
