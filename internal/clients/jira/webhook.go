package jira

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sous-run/sous/internal/httpx"
)

// Webhook headers.
const (
	HeaderSignature  = "X-Hub-Signature"
	HeaderIdentifier = "X-Atlassian-Webhook-Identifier"
	HeaderRetry      = "X-Atlassian-Webhook-Retry"
)

// Jira's webhookEvent names the triggers use.
const (
	EventIssueCreated   = "jira:issue_created"
	EventIssueUpdated   = "jira:issue_updated"
	EventCommentCreated = "comment_created"
)

// Verification failures.
var (
	ErrNoSignature  = errors.New("the request has no X-Hub-Signature header")
	ErrBadSignature = errors.New("the X-Hub-Signature does not match the body")
)

// Verify checks a webhook's X-Hub-Signature (`sha256=<hex HMAC-SHA256 of
// the raw body>`, WebSub style) with the connection's webhook_secret. A
// connection without a secret accepts unsigned requests (Jira signs only
// admin webhooks saved with a secret).
func Verify(secret string, header http.Header, body []byte) error {
	if secret == "" {
		return nil
	}
	sig := header.Get(HeaderSignature)
	if sig == "" {
		return ErrNoSignature
	}
	method, _, ok := strings.Cut(strings.TrimSpace(sig), "=")
	if !ok || !strings.EqualFold(method, "sha256") {
		return fmt.Errorf("%w (method %q; sha256 expected)", ErrBadSignature, method)
	}
	if !httpx.ValidSHA256(secret, body, "sha256="+strings.TrimSpace(sig)[len(method)+1:]) {
		return ErrBadSignature
	}
	return nil
}

// Delivery is a parsed webhook body.
type Delivery struct {
	// Event is Jira's webhookEvent (jira:issue_updated, comment_created...).
	Event string
	// Payload is the body as decoded JSON.
	Payload map[string]any
	// Status is the status change of an issue update ({from, to}), nil
	// when its changelog has none.
	Status map[string]any
}

// Parse decodes a webhook body: a JSON object with a string webhookEvent;
// an issue, when present, is an object.
func Parse(body []byte) (*Delivery, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("the body is not a JSON object: %w", err)
	}
	if m == nil {
		return nil, errors.New("the body is not a JSON object")
	}
	ev, ok := m["webhookEvent"].(string)
	if !ok || ev == "" {
		return nil, errors.New("the body has no webhookEvent")
	}
	for _, k := range []string{"issue", "changelog", "comment", "user"} {
		if v, ok := m[k]; ok && v != nil {
			if _, isObj := v.(map[string]any); !isObj {
				return nil, fmt.Errorf("the body's %s is not an object", k)
			}
		}
	}
	d := &Delivery{Event: ev, Payload: m}
	d.Status = StatusChange(m["changelog"])
	return d, nil
}

// StatusChange is {from, to} (status names) of a changelog whose items
// change the status, nil otherwise.
func StatusChange(changelog any) map[string]any {
	cl, _ := changelog.(map[string]any)
	items, _ := cl["items"].([]any)
	for _, it := range items {
		item, _ := it.(map[string]any)
		field, _ := item["field"].(string)
		fieldID, _ := item["fieldId"].(string)
		if field == "status" || fieldID == "status" {
			from, _ := item["fromString"].(string)
			to, _ := item["toString"].(string)
			return map[string]any{"from": from, "to": to}
		}
	}
	return nil
}

// DedupKey is a delivery's key: Jira's X-Atlassian-Webhook-Identifier
// (the same across its retries), else one made of the body (event, time,
// issue, changelog or comment).
func (d *Delivery) DedupKey(header http.Header) string {
	if id := strings.TrimSpace(header.Get(HeaderIdentifier)); id != "" {
		return id
	}
	parts := []string{d.Event, str(d.Payload["timestamp"])}
	for _, k := range []string{"issue", "changelog", "comment"} {
		if o, ok := d.Payload[k].(map[string]any); ok {
			parts = append(parts, str(o["id"]))
		}
	}
	return strings.Join(parts, ":")
}

// ProjectKey is the project of an event: issue.fields.project.key, else the
// prefix of issue.key.
func ProjectKey(payload map[string]any) string {
	issue, _ := payload["issue"].(map[string]any)
	fields, _ := issue["fields"].(map[string]any)
	if p, ok := fields["project"].(map[string]any); ok {
		if k, ok := p["key"].(string); ok && k != "" {
			return k
		}
	}
	key, _ := issue["key"].(string)
	if i := strings.LastIndex(key, "-"); i > 0 {
		return key[:i]
	}
	return ""
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
