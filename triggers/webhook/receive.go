package webhook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// deliveryHeaders carry a sender's own delivery id, used for dedup when
// the recipe sets no id expression.
var deliveryHeaders = []string{"Idempotency-Key", "X-Idempotency-Key", "X-Delivery-Id", "X-Github-Delivery", "X-Request-Id"}

// receiver is the receiver of webhook.received: every request to a path,
// with the options the recipes on the path share.
type receiver struct{}

var _ connector.Receiver = receiver{}

// Receive checks the method, the signature and the token, and parses the
// body (JSON or a form) into the event {body, headers, query, method,
// path}. The dedup key is the sender's delivery header, if any; the
// engine replaces it with the value of the recipe's id expression.
func (receiver) Receive(_ context.Context, in *connector.Incoming) (*connector.Received, error) {
	with := in.With
	if !accepts(with[FieldMethods], in.Method) {
		methods := asStrings(with[FieldMethods])
		if len(methods) == 0 {
			methods = []string{http.MethodPost}
		}
		rej := connector.Reject(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not accepted on /hooks%s", in.Method, in.Path)
		rej.Header = http.Header{"Allow": {strings.Join(methods, ", ")}}
		return nil, rej
	}
	raw := in.Body
	if secret := with.String(FieldSecret); secret != "" {
		header := cmp.Or(with.String(FieldSignatureHeader), DefaultSignatureHeader)
		if got := in.Header.Get(header); got == "" {
			return nil, connector.Reject(http.StatusUnauthorized, "bad_signature", "the request has no %s header: sign the body (sha256=<hex HMAC-SHA256>)", header)
		} else if !httpx.ValidSHA256(secret, raw, got) {
			return nil, connector.Reject(http.StatusUnauthorized, "bad_signature", "the %s signature does not match the body", header)
		}
	}
	tokenHeader := ""
	if token := with.String(FieldToken); token != "" {
		tokenHeader = http.CanonicalHeaderKey(cmp.Or(with.String(FieldTokenHeader), DefaultTokenHeader))
		if !httpx.ValidToken(token, tokenHeader, in.Header.Get(tokenHeader)) {
			return nil, connector.Reject(http.StatusUnauthorized, "bad_token", "the %s header does not carry the token", tokenHeader)
		}
	}
	contentType := in.Header.Get("Content-Type")
	body, exact, err := parseBody(contentType, raw)
	if err != nil {
		if errors.Is(err, errUnsupportedType) {
			return nil, connector.Reject(http.StatusUnsupportedMediaType, "unsupported_media_type", "%s", err.Error())
		}
		return nil, connector.Reject(http.StatusBadRequest, "bad_body", "%s", err.Error())
	}
	headers, query := firstValues(in.Header), firstValues(in.Query)
	if tokenHeader != "" {
		// verified: the credential is not kept with the event
		delete(headers, tokenHeader)
	}
	ev := connector.Event{Payload: eventPayload(body, headers, query, in.Method, in.Path)}
	for _, name := range deliveryHeaders {
		if v := in.Header.Get(name); v != "" {
			ev.DedupKey = name + "=" + v
			break
		}
	}
	if ev.JSON, err = storedPayload(raw, body != nil && httpx.IsJSON(contentType), body, headers, query, in.Method, in.Path); err != nil {
		return nil, connector.Reject(http.StatusBadRequest, "bad_body", "the body cannot be stored as JSON")
	}
	// a body with an integer a float64 would round keeps it as sent in
	// Payload, text that is not UTF-8 is stored with U+FFFD: the matcher
	// decodes those again from JSON
	ev.Exact = roundTrips(exact, headers, query)
	return &connector.Received{Events: []connector.Event{ev}}, nil
}

// compatible: recipes sharing a path must agree on what verifies and
// accepts a request there.
func compatible(a, b connector.Values) error {
	switch {
	case a.String(FieldSecret) != b.String(FieldSecret):
		return fmt.Errorf("their secrets differ")
	case a.String(FieldSignatureHeader) != b.String(FieldSignatureHeader):
		return fmt.Errorf("their signature headers differ")
	case a.String(FieldToken) != b.String(FieldToken) || a.String(FieldTokenHeader) != b.String(FieldTokenHeader):
		return fmt.Errorf("their tokens differ")
	case strings.Join(asStrings(a[FieldMethods]), ",") != strings.Join(asStrings(b[FieldMethods]), ","):
		return fmt.Errorf("their methods differ")
	}
	return nil
}

// accepts reports whether the methods option (POST when empty) lists
// method, without allocating: it runs for every request.
func accepts(methods any, method string) bool {
	l, _ := methods.([]any)
	if len(l) == 0 {
		return method == http.MethodPost
	}
	for _, m := range l {
		if s, ok := m.(string); ok && strings.ToUpper(s) == method {
			return true
		}
	}
	return false
}

// asStrings is a list option's values, upper-cased (HTTP methods).
func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, strings.ToUpper(fmt.Sprint(e)))
	}
	return out
}

// validUTF8 reports whether the keys and values of m (strings, as
// firstValues gives) are valid UTF-8, and so survive a JSON round trip.
func validUTF8(m map[string]any) bool {
	for k, v := range m {
		if s, ok := v.(string); !utf8.ValidString(k) || (ok && !utf8.ValidString(s)) {
			return false
		}
	}
	return true
}

// roundTrips reports whether the event built of a body parsed exact (see
// parseBody), headers and query is what its stored JSON decodes to.
func roundTrips(exact bool, headers, query map[string]any) bool {
	return exact && validUTF8(headers) && validUTF8(query)
}

// eventPayload is the event of a webhook, as its recipes see it.
func eventPayload(body any, headers, query map[string]any, method, path string) map[string]any {
	return map[string]any{
		"body":    body,
		"headers": headers,
		"query":   query,
		"method":  method,
		"path":    path,
	}
}

// storedPayload is the JSON of an event as intake stores it: {"body",
// "headers", "query", "method", "path"}. A JSON body is stored as it came
// (parseBody checked it), rather than encoded again from its parsed value:
// decoded, both give the same value.
func storedPayload(raw []byte, rawJSON bool, body any, headers, query map[string]any, method, path string) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(raw) + 256)
	b.WriteString(`{"body":`)
	if rawJSON {
		b.Write(bytes.TrimSpace(raw))
	} else {
		enc, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		b.Write(enc)
	}
	for _, part := range []struct {
		name string
		v    any
	}{{"headers", headers}, {"query", query}, {"method", method}, {"path", path}} {
		enc, err := json.Marshal(part.v)
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"` + part.name + `":`)
		b.Write(enc)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

var errUnsupportedType = errors.New("unsupported content type")

// parseBody parses JSON (the default when no type is given), forms, and
// text (JSON when it is JSON, else the text as a string).
// exact reports that the value is what decoding its stored JSON with
// encoding/json gives: false when it keeps an integer as sent (see
// parseJSON).
func parseBody(contentType string, raw []byte) (v any, exact bool, err error) {
	mt := "application/json"
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, false, fmt.Errorf("%w: %q", errUnsupportedType, contentType)
		}
	}
	switch {
	case httpx.IsJSON(mt):
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, true, nil
		}
		return parseJSON(raw)
	case mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, false, fmt.Errorf("the form body is not valid: %v", err)
		}
		form := firstValues(vals)
		return form, validUTF8(form), nil
	case strings.HasPrefix(mt, "text/"):
		// JSON sent as text (AWS SNS posts text/plain), else the text
		if json.Valid(raw) {
			return parseJSON(raw)
		}
		if !utf8.Valid(raw) {
			return nil, false, errors.New("the text body is not valid UTF-8")
		}
		return string(raw), true, nil
	}
	return nil, false, fmt.Errorf("%w %q: send application/json, application/x-www-form-urlencoded or text", errUnsupportedType, mt)
}

// parseJSON parses a JSON body as json.Unmarshal into any does, except for
// integers too large for a float64: those stay json.Number, so that the
// stored body keeps them as sent and an id expression cannot give two
// deliveries (9007199254740992 and 9007199254740993) the same dedup key.
func parseJSON(raw []byte) (v any, exact bool, err error) {
	if !json.Valid(raw) {
		// json.Unmarshal's error names the offending character
		err := json.Unmarshal(raw, &v)
		return nil, false, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	kept := false
	v, err = numbers(v, &kept)
	return v, !kept, err
}

// numbers turns the json.Numbers of a decoded value into float64 where
// that is exact or the number is not an integer; it sets *kept when it
// keeps one.
func numbers(v any, kept *bool) (any, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("the body is not valid JSON: number %s is out of range", x)
		}
		if !strings.ContainsAny(string(x), ".eE") && strconv.FormatFloat(f, 'f', 0, 64) != string(x) {
			*kept = true
			return x, nil // an integer a float64 would round
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			n, err := numbers(e, kept)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := numbers(e, kept)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

func firstValues(m map[string][]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}
