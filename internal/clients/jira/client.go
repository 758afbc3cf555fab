package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	gojira "github.com/andygrunwald/go-jira"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// OAuthBase is the API root of a site reached with an Atlassian OAuth
// (3LO) token: the cloud id is appended.
const OAuthBase = "https://api.atlassian.com/ex/jira/"

// CloudIDPlaceholder stands, in the API root of an OAuth connection whose
// config names no cloud id, for the cloud id stored beside its token when
// it was connected (accessible-resources): the connection's OAuth client
// fills it in on each request.
const CloudIDPlaceholder = "{" + FieldCloudID + "}"

// BaseURL is the API root of a connection: its base_url (a self-hosted
// Jira, a test server), else with a cloud_id
// https://api.atlassian.com/ex/jira/{cloud_id}/, else for an OAuth app the
// same root with CloudIDPlaceholder, filled in with the cloud id stored
// beside its token.
func BaseURL(with connector.Values) (string, error) {
	if b := with.String(connector.ConnBaseURL); b != "" {
		return b, nil
	}
	if id := with.String(FieldCloudID); id != "" {
		return OAuthBase + url.PathEscape(id) + "/", nil
	}
	if with.Has(connector.ConnOAuth) && !with.Has(connector.ConnToken) {
		return OAuthBase + CloudIDPlaceholder + "/", nil
	}
	return "", connector.Permanent(connector.ReasonInvalid,
		errors.New("the jira connection has neither base_url nor cloud_id"))
}

// NewClient is go-jira's client over the connection's client (its
// credentials, rate limit and metrics), rooted at BaseURL.
func NewClient(conn *connector.Connection) (*gojira.Client, error) {
	if conn == nil || conn.Client == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("the step needs a jira connection"))
	}
	base, err := BaseURL(conn.Values)
	if err != nil {
		return nil, err
	}
	c, err := gojira.NewClient(conn.Client.HTTP, base)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("jira base url: %w", err))
	}
	return c, nil
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Call makes one request of Jira's REST API through go-jira's client: ref
// relative to the API root (rest/api/3/...), body sent as JSON when not
// nil, the answer decoded into out when not nil. Failures are connector
// errors: 429 rate_limited and 5xx server_error retryable after
// Retry-After, 401 and 403 auth, 404 not_found, 409 conflict, any other
// 4xx client_error with Jira's errorMessages and errors in the message; no
// answer is classified as a transport failure. Messages never hold the
// query string or credentials.
func Call(ctx context.Context, c *gojira.Client, method, ref string, body, out any) error {
	req, err := c.NewRequestWithContext(ctx, method, ref, body)
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, fmt.Errorf("jira %s %s: %w", method, pathOf(ref), err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req, out)
	if err == nil {
		return nil
	}
	if resp == nil || resp.Response == nil {
		return httpx.TransportError(method, req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		// a 2xx whose body is not what we expected
		return connector.Permanent(connector.ReasonClientError,
			fmt.Errorf("jira %s %s: the answer is not the JSON expected", method, httpx.RedactURL(req.URL)))
	}
	raw, _ := httpx.ReadBody(resp.Body, maxErrorBody)
	return StatusError(method, req.URL, resp.Response, raw)
}

// StatusError classifies a Jira error answer (see Call).
func StatusError(method string, u *url.URL, resp *http.Response, raw []byte) error {
	msg := ErrorMessage(raw)
	err := fmt.Errorf("jira %s %s: %s: %s", method, httpx.RedactURL(u), resp.Status, msg)
	return httpx.ClassifyStatus(resp.StatusCode, resp.Header, err)
}

// ErrorMessage renders Jira's error body ({"errorMessages": [...],
// "errors": {field: message}}) as one line; another body is quoted
// (its start).
func ErrorMessage(raw []byte) string {
	var e struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal(raw, &e) == nil && (len(e.ErrorMessages) > 0 || len(e.Errors) > 0) {
		parts := append([]string(nil), e.ErrorMessages...)
		keys := make([]string, 0, len(e.Errors))
		for k := range e.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, k+": "+e.Errors[k])
		}
		return strings.Join(parts, "; ")
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

func pathOf(ref string) string {
	p, _, _ := strings.Cut(ref, "?")
	return p
}
