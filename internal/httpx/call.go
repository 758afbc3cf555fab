package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
)

// CallJSON makes one call of a service's JSON API through a connection's
// client: method on ref, resolved against the connection's base_url (def
// when it has none), with body as JSON when not nil, and decodes the
// answer into out. Failures are classified as StatusError and
// TransportError do (a 429 or 5xx retryable, 401 and 403 auth, a
// connection's own failure, its token, keeping its kind); the answer is
// read up to DefaultMaxBody.
func CallJSON(ctx context.Context, client *connector.Client, with connector.Values, def, method, ref string, body, out any) error {
	base := with.String(connector.ConnBaseURL)
	if base == "" {
		base = def
	}
	u, err := url.Parse(base)
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, fmt.Errorf("base_url %q: %w", base, err))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	target, err := u.Parse(ref)
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return connector.Permanent(connector.ReasonInvalid, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), rd)
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.HTTP.Do(req)
	if err != nil {
		return TransportError(method, target, err)
	}
	defer resp.Body.Close()
	raw, err := ReadBody(resp.Body, DefaultMaxBody)
	if err != nil {
		return TransportError(method, target, err)
	}
	if err := StatusError(method, target, resp, raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return connector.Permanent(connector.ReasonClientError,
			fmt.Errorf("http %s %s: the answer is not the JSON expected", method, RedactURL(target)))
	}
	return nil
}

// RevokeAt posts token to a revocation endpoint as RFC 7009 describes
// (form field token), with the oauth block's client credentials as basic
// authentication when basic is set. The endpoint is the oauth block's
// token_url with its last path element replaced by "revoke"
// (https://oauth2.googleapis.com/revoke, https://zoom.us/oauth/revoke), so
// that a token_url pointed at a test server points the revocation there.
func RevokeAt(ctx context.Context, with connector.Values, token string, basic bool) error {
	block, _ := with[connector.ConnOAuth].(map[string]any)
	tokenURL, _ := block[connector.OAuthTokenURL].(string)
	u, err := url.Parse(tokenURL)
	if err != nil || tokenURL == "" {
		return connector.Permanent(connector.ReasonInvalid, fmt.Errorf("oauth.token_url %q gives no revocation endpoint", tokenURL))
	}
	u.Path = u.Path[:strings.LastIndex(u.Path, "/")+1] + "revoke"
	u.RawQuery = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		id, _ := block[connector.OAuthClientID].(string)
		secret, _ := block[connector.OAuthClientSecret].(string)
		req.SetBasicAuth(id, secret)
	}
	resp, err := NewClient().Do(req)
	if err != nil {
		return TransportError(http.MethodPost, u, err)
	}
	defer resp.Body.Close()
	raw, _ := ReadBody(resp.Body, 64<<10)
	return StatusError(http.MethodPost, u, resp, raw)
}

// TokenError is what a token endpoint's refusal may say in an error: the
// provider's error code and description (or its HTTP status), never the
// answer's body, which can hold a token. what names the grant ("google
// service account"); an error that is not a token endpoint's is kept.
func TokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := what + ": the provider refused: "
		switch {
		case re.ErrorCode != "" && re.ErrorDescription != "":
			return errors.New(msg + re.ErrorCode + ": " + re.ErrorDescription)
		case re.ErrorCode != "":
			return errors.New(msg + re.ErrorCode)
		case re.Response != nil:
			return errors.New(what + ": the provider answered " + re.Response.Status)
		}
	}
	if strings.Contains(err.Error(), "missing access_token") {
		return errors.New(what + ": the provider's answer has no access token")
	}
	return fmt.Errorf("%s: %w", what, err)
}
