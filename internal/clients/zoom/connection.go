// Package zoom is Zoom's connection type and, as its triggers and actions
// arrive, the client and fakes they share.
package zoom

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// Field names of a zoom connection.
const (
	FieldWebhookSecret = "webhook_secret"
	FieldAccountID     = "account_id"
	// FieldSignatureWindow is how far a webhook's timestamp may be from
	// the time it arrives.
	FieldSignatureWindow = "signature_window"
)

// Connection is the zoom connection type: the app's webhook secret token,
// and an OAuth app, or Server-to-Server OAuth (account_id with the app's
// client id and secret, the account_credentials grant).
var Connection = &connector.ConnectionSpec{
	Type:    "zoom",
	Summary: "A Zoom app: its webhook secret token, and OAuth or Server-to-Server OAuth",
	Fields: []connector.Field{
		{Name: FieldWebhookSecret, Type: connector.String, Secret: true, Example: "${ZOOM_WEBHOOK_SECRET}",
			Description: "The app's secret token (Zoom's webhook signature)"},
		{Name: FieldSignatureWindow, Type: connector.Duration, Default: "5m", Example: "5m",
			Check: func(v any) error {
				if d, ok := v.(time.Duration); ok && d <= 0 {
					return errors.New("must be more than 0")
				}
				return nil
			},
			Description: "How far a webhook's x-zm-request-timestamp may be from the time it arrives; older or newer requests are refused"},
		{Name: FieldAccountID, Type: connector.String, Example: "${ZOOM_ACCOUNT_ID}",
			Description: "Server-to-Server OAuth: the account id, with oauth's client id and secret (the account_credentials grant)"},
		connector.OAuthField([]string{"meeting:read", "recording:read"},
			"https://zoom.us/oauth/authorize", "https://zoom.us/oauth/token"),
		connector.TokenField("An access token minted elsewhere, used as is"),
		connector.BaseURLField("https://api.zoom.us/v2/", "The API root (a test server elsewhere)"),
		connector.RateLimitField("10/s"),
	},
	OneOf:     [][]string{{FieldWebhookSecret}, {connector.ConnOAuth}, {connector.ConnToken}},
	Authorize: authorize,
	OAuth: &connector.OAuthSpec{CredentialsInHeader: true, SelfMinted: selfMinted,
		Revoke: func(ctx context.Context, _ *connector.Client, with connector.Values, token string) error {
			return httpx.RevokeAt(ctx, with, token, true) // https://zoom.us/oauth/revoke
		}},
	Identity: identity,
	Requires: map[string][]string{FieldAccountID: {connector.ConnOAuth}},
}

func init() { connector.RegisterConnection(Connection) }

// identity asks who the token acts as (users/me).
func identity(ctx context.Context, cl *connector.Client, with connector.Values) (*connector.Identity, error) {
	var me struct {
		Email     string `json:"email"`
		AccountID string `json:"account_id"`
	}
	if err := httpx.CallJSON(ctx, cl, with, "https://api.zoom.us/v2/", http.MethodGet, "users/me", nil, &me); err != nil {
		return nil, err
	}
	return &connector.Identity{Account: me.Email, Extra: map[string]string{"account_id": me.AccountID}}, nil
}
