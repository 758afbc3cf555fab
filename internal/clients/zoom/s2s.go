package zoom

import (
	"context"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// selfMinted: Server-to-Server OAuth, an account id with the app's client.
func selfMinted(with connector.Values) bool { return with.Has(FieldAccountID) }

// authorize sends, for Server-to-Server OAuth, a token of the
// account_credentials grant (minted with the app's client credentials in
// basic authentication, minted again when it expires: it has no refresh
// token); else a static token.
func authorize(with connector.Values) (connector.Authorize, error) {
	if !selfMinted(with) {
		return connector.StaticAuthorize(with)
	}
	block, _ := with[connector.ConnOAuth].(map[string]any)
	str := func(k string) string { s, _ := block[k].(string); return s }
	cc := &clientcredentials.Config{ClientID: str(connector.OAuthClientID), ClientSecret: str(connector.OAuthClientSecret),
		TokenURL: str(connector.OAuthTokenURL), AuthStyle: oauth2.AuthStyleInHeader,
		EndpointParams: url.Values{"grant_type": {"account_credentials"}, "account_id": {with.String(FieldAccountID)}}}
	src := oauth2.ReuseTokenSource(nil, cc.TokenSource(context.Background()))
	return func(req *http.Request) error {
		tok, err := src.Token()
		if err != nil {
			return connector.Permanent(connector.ReasonAuth, httpx.TokenError("zoom account_credentials", err))
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		return nil
	}, nil
}
