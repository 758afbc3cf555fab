package google

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// selfMinted: a service account's key file.
func selfMinted(with connector.Values) bool { return with.Has(FieldServiceAccountFile) }

// keyFile is what a service account's JSON key file holds that the JWT
// grant needs.
type keyFile struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// authorize sends, for a service account, a token of the JWT bearer grant
// (RFC 7523: an assertion signed with the account's key, as the user of
// subject with domain-wide delegation), minted again when it expires;
// else a static token.
func authorize(with connector.Values) (connector.Authorize, error) {
	if !selfMinted(with) {
		return connector.StaticAuthorize(with)
	}
	path := with.String(FieldServiceAccountFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("service_account_file: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(raw, &kf); err != nil || kf.Type != "service_account" || kf.ClientEmail == "" || kf.PrivateKey == "" {
		// the file's content is secret: the error names the file only
		return nil, fmt.Errorf("service_account_file %s is not a service account's JSON key", path)
	}
	if kf.TokenURI == "" {
		kf.TokenURI = "https://oauth2.googleapis.com/token"
	}
	var scopes []string
	if block, ok := with[connector.ConnOAuth].(map[string]any); ok {
		if l, ok := block[connector.OAuthScopes].([]any); ok {
			for _, s := range l {
				scopes = append(scopes, fmt.Sprint(s))
			}
		}
	}
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	cfg := &jwt.Config{Email: kf.ClientEmail, PrivateKey: []byte(kf.PrivateKey), PrivateKeyID: kf.PrivateKeyID,
		Scopes: scopes, TokenURL: kf.TokenURI, Subject: with.String(FieldSubject)}
	src := oauth2.ReuseTokenSource(nil, cfg.TokenSource(context.Background()))
	return func(req *http.Request) error {
		tok, err := src.Token()
		if err != nil {
			return connector.Permanent(connector.ReasonAuth, httpx.TokenError("google service account", err))
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		return nil
	}, nil
}
