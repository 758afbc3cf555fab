package http

import (
	"errors"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// Methods are the methods http.request sends (a method given in another
// case is sent in upper case).
var Methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// anyCase is a pattern matching any of words in any case (JSON Schema
// patterns have no case-insensitive flag): GET is [Gg][Ee][Tt].
func anyCase(words []string) string {
	alts := make([]string, len(words))
	for i, w := range words {
		var b strings.Builder
		for _, r := range w {
			b.WriteString("[" + strings.ToUpper(string(r)) + strings.ToLower(string(r)) + "]")
		}
		alts[i] = b.String()
	}
	return "^(" + strings.Join(alts, "|") + ")$"
}

// Field names of http.request.
const (
	FieldURL     = "url"
	FieldMethod  = "method"
	FieldHeaders = "headers"
	FieldQuery   = "query"
	FieldJSON    = "json"
	FieldBody    = "body"
	FieldTimeout = "timeout"
)

// Field names of the http connection.
const (
	ConnBaseURL     = "base_url"
	ConnHeaders     = "headers"
	ConnBearerToken = "bearer_token"
)

// MaxResponseBody bounds how much of a response is read: a longer one
// fails the step, permanently.
const MaxResponseBody = httpx.DefaultMaxBody

// Request is the spec of http.request.
var Request = &connector.Spec{
	ID:      "http.request",
	Kind:    connector.KindAction,
	Summary: "Send an HTTP request",
	Description: "Sends a request and returns the status, headers and body (parsed as `json` when the response " +
		"is JSON). 429 and 5xx answers are retried, honouring Retry-After; other 4xx answers fail the step at " +
		"once. With a connection of type http, a relative `url` is resolved against its `base_url` and its " +
		"headers are added.",
	Connection: "http",
	Fields: []connector.Field{
		{Name: FieldURL, Type: connector.String, Required: true,
			Description: "The URL, absolute or relative to the connection's base_url", Example: "https://api.example.com/orders"},
		{Name: FieldMethod, Type: connector.String, Default: "POST",
			Pattern: anyCase(Methods), PatternHelp: "must be one of " + strings.Join(Methods, ", ") + " (in any case)",
			Description: "The HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS, in any case"},
		{Name: FieldHeaders, Type: connector.StringMap,
			Description: "Request headers", Example: map[string]any{"X-Request-Source": "sous"}},
		{Name: FieldQuery, Type: connector.StringMap,
			Description: "Query parameters added to the URL", Example: map[string]any{"page": "1"}},
		{Name: FieldJSON, Type: connector.Any,
			Description: "A value sent as the JSON body (sets Content-Type: application/json)", Example: map[string]any{"text": "hello"}},
		{Name: FieldBody, Type: connector.String,
			Description: "A raw text body", Example: "plain text"},
		{Name: FieldTimeout, Type: connector.Duration, Default: "30s",
			Description: "How long one attempt may take", Example: "10s"},
	},
	Validate: func(w connector.Values) []connector.FieldError {
		if w.Has(FieldJSON) && w.Has(FieldBody) {
			return []connector.FieldError{{Field: FieldBody, Message: "give json or body, not both"}}
		}
		if d := w.Duration(FieldTimeout); w.Has(FieldTimeout) && d > 10*time.Minute {
			return []connector.FieldError{{Field: FieldTimeout, Message: "at most 10m"}}
		}
		return nil
	},
	Shape: connector.Obj(
		connector.P("status", connector.Leaf(connector.Int, "The HTTP status code")),
		connector.P("headers", connector.Leaf(connector.StringMap, "The response headers, first value")),
		connector.P("body", connector.Leaf(connector.String, "The response body as text")),
		connector.P("json", connector.Leaf(connector.Any, "The response body parsed as JSON, or null")),
	),
	Action: &client{},
}

// Connection is the http connection type.
var Connection = &connector.ConnectionSpec{
	Type:    "http",
	Summary: "A base URL and headers for http.request",
	Fields: []connector.Field{
		{Name: ConnBaseURL, Type: connector.String, Description: "Relative request URLs are resolved against it",
			Pattern: `^https?://`, PatternHelp: "must start with http:// or https://", Example: "https://api.example.com/v1/"},
		{Name: ConnHeaders, Type: connector.StringMap, Secret: true,
			Description: "Headers added to every request (values are secret)", Example: map[string]any{"X-API-Key": "${EXAMPLE_API_KEY}"}},
		{Name: ConnBearerToken, Type: connector.String, Secret: true,
			Description: "Sent as Authorization: Bearer <token>", Example: "${EXAMPLE_TOKEN}"},
		rateLimit(),
	},
}

// rateLimit is the connection's rate_limit: none unless set, since the
// API behind it is anyone's.
func rateLimit() connector.Field {
	f := connector.RateLimitField("")
	f.Default, f.Example = nil, "10/s"
	f.Description = "Calls at most, as N/s, N/min or N/h, optionally followed by `burst M`; none when unset"
	return f
}

var errNoURL = errors.New("url is empty")

func init() {
	connector.Register(Request)
	connector.RegisterConnection(Connection)
}
