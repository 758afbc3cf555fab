// Package dropbox is Dropbox's connection type and what the dropbox
// triggers and actions share: the HTTP calls to Dropbox's two hosts (RPC
// and content), its errors mapped to connector errors, the content hash,
// and an httptest fake of both hosts.
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
		{Name: FieldContentURL, Type: connector.String, Pattern: `^https?://`, PatternHelp: "must start with http:// or https://",
			Example: "http://127.0.0.1:8082/",
			Description: "The content host's root, where uploads go (https://content.dropboxapi.com/2/ when base_url is Dropbox's own " +
				"or unset; base_url itself when base_url names another server, so that one test server serves both)"},
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
