package webhook

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sous-run/sous/engine/connector"
)

// Field names of webhook.received.
const (
	FieldPath            = "path"
	FieldSecret          = "secret"
	FieldSignatureHeader = "signature_header"
	FieldToken           = "token"
	FieldTokenHeader     = "token_header"
	FieldID              = "id"
	FieldMethods         = "methods"
	FieldBodySchema      = "body_schema"
	FieldBodySample      = "body_sample"
)

// DefaultSignatureHeader carries `sha256=<hex>` of the raw body.
const DefaultSignatureHeader = "X-Signature-256"

// DefaultTokenHeader carries `Bearer <token>`.
const DefaultTokenHeader = "Authorization"

// Received is the spec of webhook.received.
var Received = &connector.Spec{
	ID:      "webhook.received",
	Kind:    connector.KindTrigger,
	Summary: "An HTTP request arrived at /hooks/<path>",
	Description: "Starts a run for each request to `POST /hooks<path>`. With `secret`, the request must carry " +
		"an HMAC-SHA256 of its raw body as `sha256=<hex>` in `signature_header`; a bad signature is answered 401 " +
		"and nothing is stored. With `token`, the request must carry the token in `token_header` (`Authorization: " +
		"Bearer <token>` by default, the bare token in any other header, as GitLab's X-Gitlab-Token); a wrong or " +
		"missing one is answered 401, and the header is not stored with the event. `id` is an expression for the delivery's dedup key: the same key within the " +
		"retention window yields one run. `body_schema` or `body_sample` declares the body's shape, so that " +
		"expressions reading `event.body` are type-checked.",
	Fields: []connector.Field{
		{Name: FieldPath, Type: connector.String, Required: true, Pattern: `^/[A-Za-z0-9._~/-]*$`,
			PatternHelp: "must start with / and hold only letters, digits and . _ ~ / -",
			Description: "The path under /hooks that this recipe answers", Example: "/orders"},
		{Name: FieldSecret, Type: connector.String, Secret: true,
			Description: "The HMAC-SHA256 signing secret shared with the sender", Example: "{{ secrets.ORDERS_WEBHOOK }}"},
		{Name: FieldSignatureHeader, Type: connector.String, Default: DefaultSignatureHeader,
			Description: "The header carrying sha256=<hex> of the raw body"},
		{Name: FieldID, Type: connector.Expression,
			Description: "An expression giving the delivery's dedup key", Example: "event.body.order.id"},
		{Name: FieldMethods, Type: connector.List, Default: []any{"POST"},
			Description: "The HTTP methods accepted", Example: []any{"POST", "PUT"},
			Check: checkMethods},
		{Name: FieldToken, Type: connector.String, Secret: true,
			Description: "A token the sender must present in token_header, compared in constant time; the header is not stored",
			Example:     "{{ secrets.ALERTMANAGER_TOKEN }}"},
		{Name: FieldTokenHeader, Type: connector.String, Default: DefaultTokenHeader,
			Description: "The header carrying the token: Authorization takes `Bearer <token>`, any other header the bare token",
			Example:     "X-Gitlab-Token"},
		{Name: FieldBodySchema, Type: connector.Any, Declares: &connector.Declaration{Key: "body"},
			Description: "A JSON Schema of the body, which types event.body: a path to a JSON file, relative to the " +
				"recipe's folder and inside it, or the schema inline as a mapping. An object that lists properties " +
				"has only those unless additionalProperties opens it; a misspelt field is an error at validation"},
		{Name: FieldBodySample, Type: connector.Any, Declares: &connector.Declaration{Key: "body", Sample: true},
			Description: "A sample body, which types event.body by its shape: a path to a JSON file, relative to the " +
				"recipe's folder and inside it, or the sample inline. Only the keys of its objects exist; numbers are numbers"},
	},
	Shape: connector.Obj(
		connector.P("body", connector.Leaf(connector.Any, "The request body: JSON (application/json, or no Content-Type), a form "+
			"(application/x-www-form-urlencoded, an object of first values), or text/* (parsed when it is JSON, else a string); "+
			"typed by body_schema or body_sample when the recipe declares one, untyped otherwise")),
		connector.P("headers", connector.Leaf(connector.StringMap, "The request headers, canonical names, first value")),
		connector.P("query", connector.Leaf(connector.StringMap, "The query parameters, first value")),
		connector.P("method", connector.Leaf(connector.String, "The HTTP method")),
		connector.P("path", connector.Leaf(connector.String, "The path under /hooks")),
	),
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func checkMethods(v any) error {
	for _, m := range v.([]any) {
		s, ok := m.(string)
		if !ok || !contains(methods, strings.ToUpper(s)) {
			return fmt.Errorf("%v is not one of %s", m, strings.Join(methods, ", "))
		}
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func init() {
	Received.Trigger = &connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: FieldPath,
		Receiver: receiver{}, DedupField: FieldID, Compatible: compatible}
	connector.Register(Received)
}
