package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// client performs http.request.
type client struct {
	// HTTP is the client used; nil means defaultClient.
	HTTP *http.Client
}

var _ connector.Action = (*client)(nil)

// defaultClient is the connectors' shared client (httpx.NewClient): their
// connection pool, a bound on response bodies, and no overall timeout
// (each attempt has its own).
var defaultClient = httpx.NewClient()

// RetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// It is httpx.RetryAfter.
func RetryAfter(h string, now time.Time) time.Duration { return httpx.RetryAfter(h, now) }

// endsWithin reports whether ctx has a deadline at most d from now.
func endsWithin(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) <= d
}

// Run sends the request.
func (c *client) Run(ctx context.Context, req *connector.Request) (map[string]any, error) {
	in := req.With
	target, err := resolveURL(in.String(FieldURL), req.Connection)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("http request: %w", err))
	}
	if q := in.StringMap(FieldQuery); len(q) > 0 {
		values := target.Query()
		for k, v := range q {
			values.Set(k, v)
		}
		target.RawQuery = values.Encode()
	}
	var body io.Reader
	contentType := ""
	switch {
	case in.Has(FieldJSON):
		b, err := json.Marshal(in[FieldJSON])
		if err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("http request: encode json: %w", err))
		}
		body, contentType = bytes.NewReader(b), "application/json"
	case in.Has(FieldBody):
		body, contentType = strings.NewReader(in.String(FieldBody)), "text/plain; charset=utf-8"
	}
	// the runner's step timeout (also 30 s by default) is usually sooner:
	// a context of its own would only cost a timer
	if d := in.Duration(FieldTimeout); d > 0 && !endsWithin(ctx, d) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	method := strings.ToUpper(in.String(FieldMethod))
	if method == "" {
		// the spec's default, for callers that did not apply defaults
		method = http.MethodPost
	}
	hreq, err := http.NewRequestWithContext(ctx, method, target.String(), body)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("http request: %w", err))
	}
	// set here, not left to the client's httpx.Transport, which would
	// copy the request to add it
	hreq.Header.Set("User-Agent", httpx.UserAgent)
	if contentType != "" {
		hreq.Header.Set("Content-Type", contentType)
	}
	if req.IdempotencyKey != "" {
		hreq.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	if conn := req.Connection; conn != nil {
		for k, v := range conn.Values.StringMap(ConnHeaders) {
			hreq.Header.Set(k, v)
		}
		if tok := conn.Values.String(ConnBearerToken); tok != "" {
			hreq.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	for k, v := range in.StringMap(FieldHeaders) {
		hreq.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil && req.Connection != nil && req.Connection.Client != nil {
		// the connection's client: its rate limit and metrics
		hc = req.Connection.Client.HTTP
	}
	if hc == nil {
		hc = defaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, httpx.TransportError(method, target, err)
	}
	defer resp.Body.Close()
	raw, err := httpx.ReadBody(resp.Body, MaxResponseBody)
	if err != nil {
		return nil, httpx.TransportError(method, target, err)
	}
	out := map[string]any{
		"status":  int64(resp.StatusCode),
		"headers": firstValues(resp.Header),
		"body":    string(raw),
		"json":    nil,
	}
	if isJSON(resp.Header.Get("Content-Type")) && len(raw) > 0 {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			out["json"] = v
		}
	}
	if err := httpx.StatusError(method, target, resp, raw); err != nil {
		return out, err
	}
	return out, nil
}

func resolveURL(raw string, conn *connector.Connection) (*url.URL, error) {
	if raw == "" {
		return nil, errNoURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url is not valid")
	}
	if !u.IsAbs() {
		base := ""
		if conn != nil {
			base = conn.Values.String(ConnBaseURL)
		}
		if base == "" {
			// quoted without its query, which may hold a token
			return nil, fmt.Errorf("url %q is relative and no connection gives a base_url", httpx.RedactURL(u))
		}
		b, err := url.Parse(base)
		if err != nil {
			return nil, fmt.Errorf("base_url is not valid")
		}
		u = b.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url scheme %q is not http or https", u.Scheme)
	}
	return u, nil
}

func firstValues(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

func isJSON(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "application/json") || strings.Contains(ct, "+json")
}
