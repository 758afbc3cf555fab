// Package google is Google's connection type (Calendar, Drive, Gmail)
// and, as its triggers and actions arrive, the client and fakes they share.
package google

import (
	"context"
	"net/http"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// Field names of a google connection.
const (
	FieldRefreshToken       = "refresh_token"
	FieldServiceAccountFile = "service_account_file"
	FieldSubject            = "subject"
)

// DefaultScopes are the scopes asked for when the config names none.
var DefaultScopes = []string{"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/drive.file"}

// Connection is the google connection type: an OAuth app (with a refresh
// token minted elsewhere), or a service
// account's JSON key file, with an optional subject to act as through
// domain-wide delegation.
var Connection = &connector.ConnectionSpec{
	Type:    "google",
	Summary: "A Google account: an OAuth app, or a service account key file",
	Fields: []connector.Field{
		connector.OAuthField(DefaultScopes,
			"https://accounts.google.com/o/oauth2/auth", "https://oauth2.googleapis.com/token"),
		{Name: FieldRefreshToken, Type: connector.String, Secret: true, Example: "${GOOGLE_REFRESH_TOKEN}",
			Description: "A refresh token minted elsewhere for the oauth app"},
		{Name: FieldServiceAccountFile, Type: connector.String, Example: "/etc/sous/google-sa.json",
			Description: "A service account's JSON key file, instead of an OAuth app"},
		{Name: FieldSubject, Type: connector.String, Example: "ops@example.com",
			Description: "With a service account: the user to act as, through domain-wide delegation"},
		connector.TokenField("An access token minted elsewhere, used as is"),
		connector.BaseURLField("https://www.googleapis.com/", "The APIs' root (a test server elsewhere)"),
		connector.RateLimitField("10/s"),
	},
	OneOf: [][]string{{connector.ConnOAuth}, {FieldServiceAccountFile}, {connector.ConnToken}},
	// a refresh token comes only with offline access, and again only
	// with consent asked for
	Authorize: authorize,
	OAuth: &connector.OAuthSpec{AuthParams: map[string]string{"access_type": "offline", "prompt": "consent"}, SelfMinted: selfMinted,
		Revoke: func(ctx context.Context, _ *connector.Client, with connector.Values, token string) error {
			return httpx.RevokeAt(ctx, with, token, false) // https://oauth2.googleapis.com/revoke
		}},
	Requires: map[string][]string{FieldSubject: {FieldServiceAccountFile}, FieldRefreshToken: {connector.ConnOAuth}},
	Identity: identity,
}

func init() { connector.RegisterConnection(Connection) }

// identity asks Drive who the connection acts as (about?fields=user, which
// the drive scopes allow).
func identity(ctx context.Context, cl *connector.Client, with connector.Values) (*connector.Identity, error) {
	var r struct {
		User struct {
			EmailAddress string `json:"emailAddress"`
			DisplayName  string `json:"displayName"`
		} `json:"user"`
	}
	if err := httpx.CallJSON(ctx, cl, with, "https://www.googleapis.com/", http.MethodGet, "drive/v3/about?fields=user", nil, &r); err != nil {
		return nil, err
	}
	return &connector.Identity{Account: r.User.EmailAddress}, nil
}
