package connector

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
)

// CallJSON makes one call of a service's JSON API through a connection's
// client: method on ref, resolved against the connection's base_url (or
// def when it has none), with body as JSON when not nil, and decodes the
// answer into out. A status other than 2xx is an error naming the status,
// auth for 401 and 403; the answer is read up to 1 MiB.
func CallJSON(ctx context.Context, client *Client, with Values, def, method, ref string, body, out any) error {
	base := with.String(ConnBaseURL)
	if base == "" {
		base = def
	}
	u, err := url.Parse(base)
	if err != nil {
		return Permanent(ReasonInvalid, fmt.Errorf("base_url %q: %w", base, err))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	target, err := u.Parse(ref)
	if err != nil {
		return Permanent(ReasonInvalid, err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Permanent(ReasonInvalid, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), rd)
	if err != nil {
		return Permanent(ReasonInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.HTTP.Do(req)
	if err != nil {
		wrapped := fmt.Errorf("%s %s%s: %w", method, target.Host, target.Path, unwrapURL(err))
		var ce *Error
		if errors.As(err, &ce) { // the connection's own failure (its token): its kind stands
			return &Error{Reason: ce.Reason, Retryable: ce.Retryable, RetryAfter: ce.RetryAfter, Err: wrapped}
		}
		return Retryable(ReasonNetwork, 0, wrapped)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Retryable(ReasonNetwork, 0, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return Permanent(ReasonAuth, fmt.Errorf("%s %s%s: %s", method, target.Host, target.Path, resp.Status))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Permanent(ReasonClientError, fmt.Errorf("%s %s%s: %s", method, target.Host, target.Path, resp.Status))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return Permanent(ReasonClientError, fmt.Errorf("%s %s%s: the answer is not the JSON expected", method, target.Host, target.Path))
	}
	return nil
}

// unwrapURL keeps of a client error what is not the URL (a query may hold
// a secret), keeping a connector error's kind.
func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// RevokeAt posts token to a revocation endpoint as RFC 7009 describes
// (form field token), with the oauth block's client credentials as basic
// authentication when basic is set. The endpoint is the oauth block's
// token_url with its last path element replaced by "revoke"
// (https://oauth2.googleapis.com/revoke, https://zoom.us/oauth/revoke), so
// that a token_url pointed at a test server points the revocation there.
func RevokeAt(ctx context.Context, with Values, token string, basic bool) error {
	block, _ := with[ConnOAuth].(map[string]any)
	tokenURL, _ := block[OAuthTokenURL].(string)
	u, err := url.Parse(tokenURL)
	if err != nil || tokenURL == "" {
		return Permanent(ReasonInvalid, fmt.Errorf("oauth.token_url %q gives no revocation endpoint", tokenURL))
	}
	u.Path = u.Path[:strings.LastIndex(u.Path, "/")+1] + "revoke"
	u.RawQuery = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return Permanent(ReasonInvalid, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		id, _ := block[OAuthClientID].(string)
		secret, _ := block[OAuthClientSecret].(string)
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Retryable(ReasonNetwork, 0, fmt.Errorf("revoke at %s%s: %w", u.Host, u.Path, unwrapURL(err)))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Permanent(ReasonClientError, fmt.Errorf("revoke at %s%s: %s", u.Host, u.Path, resp.Status))
	}
	return nil
}
