// Package microsoft is Microsoft Graph's connection type (Outlook mail
// and calendar) and, as its triggers and actions arrive, the client and
// fakes they share.
package microsoft

import (
	"context"
	"net/http"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// FieldTenant is the Entra tenant of a microsoft connection.
const FieldTenant = "tenant"

// Connection is the microsoft connection type: an OAuth app in a tenant
// (common by default: work, school and personal accounts).
var Connection = &connector.ConnectionSpec{
	Type:    "microsoft",
	Summary: "A Microsoft 365 or Outlook account through Microsoft Graph: an OAuth app",
	Fields: []connector.Field{
		connector.OAuthField([]string{"offline_access", "User.Read", "Mail.Read", "Mail.Send", "Calendars.ReadWrite"},
			"https://login.microsoftonline.com/common/oauth2/v2.0/authorize", "https://login.microsoftonline.com/common/oauth2/v2.0/token"),
		{Name: FieldTenant, Type: connector.String, Default: "common", Pattern: `^[A-Za-z0-9.-]+$`,
			PatternHelp: "must be common, organizations, consumers, a tenant id or a domain",
			Description: "The Entra tenant the app signs in to: common, organizations, consumers, a tenant id or a domain"},
		connector.TokenField("An access token minted elsewhere, used as is"),
		connector.BaseURLField("https://graph.microsoft.com/v1.0/", "The Graph root (a test server elsewhere)"),
		connector.RateLimitField("10/s"),
	},
	OneOf:    connector.TokenOrOAuth,
	OAuth:    &connector.OAuthSpec{Endpoints: tenantEndpoints},
	Identity: identity,
}

// tenantEndpoints puts the connection's tenant in place of common in the
// endpoints of the Microsoft identity platform.
func tenantEndpoints(with connector.Values, authURL, tokenURL string) (string, string) {
	tenant := with.String(FieldTenant)
	if tenant == "" || tenant == "common" {
		return authURL, tokenURL
	}
	return strings.Replace(authURL, "/common/", "/"+tenant+"/", 1), strings.Replace(tokenURL, "/common/", "/"+tenant+"/", 1)
}

func init() { connector.RegisterConnection(Connection) }

// identity asks Graph who the token acts as (me).
func identity(ctx context.Context, cl *connector.Client, with connector.Values) (*connector.Identity, error) {
	var me struct {
		UserPrincipalName string `json:"userPrincipalName"`
		Mail              string `json:"mail"`
	}
	if err := httpx.CallJSON(ctx, cl, with, "https://graph.microsoft.com/v1.0/", http.MethodGet, "me", nil, &me); err != nil {
		return nil, err
	}
	account := me.Mail
	if account == "" {
		account = me.UserPrincipalName
	}
	return &connector.Identity{Account: account}, nil
}
