// Package dropbox is Dropbox's connection type and, as its triggers and
// actions arrive, the client and fakes they share.
package dropbox

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// Connection is the dropbox connection type: an OAuth app, authorized for
// offline access (a refresh token).
var Connection = &connector.ConnectionSpec{
	Type:    "dropbox",
	Summary: "A Dropbox account: an OAuth app with offline access",
	Fields: []connector.Field{
		connector.OAuthField([]string{"account_info.read", "files.content.read", "files.content.write"},
			"https://www.dropbox.com/oauth2/authorize", "https://api.dropboxapi.com/oauth2/token"),
		connector.TokenField("An access token minted elsewhere, used as is"),
		connector.BaseURLField("https://api.dropboxapi.com/2/", "The API root (a test server elsewhere)"),
		connector.RateLimitField("10/s"),
	},
	OneOf: connector.TokenOrOAuth,
	// a refresh token comes only with offline access
	OAuth:    &connector.OAuthSpec{AuthParams: map[string]string{"token_access_type": "offline"}, Revoke: revoke},
	Identity: identity,
}

func init() { connector.RegisterConnection(Connection) }

// identity asks who the token acts as (users/get_current_account, whose
// body is JSON null).
func identity(ctx context.Context, cl *connector.Client, with connector.Values) (*connector.Identity, error) {
	var me struct {
		Email     string `json:"email"`
		AccountID string `json:"account_id"`
	}
	if err := httpx.CallJSON(ctx, cl, with, "https://api.dropboxapi.com/2/", http.MethodPost, "users/get_current_account",
		json.RawMessage("null"), &me); err != nil {
		return nil, err
	}
	return &connector.Identity{Account: me.Email, Extra: map[string]string{"account_id": me.AccountID}}, nil
}

// revoke calls auth/token/revoke with the token itself (its body is JSON
// null; the answer is null too).
func revoke(ctx context.Context, cl *connector.Client, with connector.Values, _ string) error {
	var out any
	return httpx.CallJSON(ctx, cl, with, "https://api.dropboxapi.com/2/", http.MethodPost, "auth/token/revoke", json.RawMessage("null"), &out)
}
