package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
)

// client performs http.request.
type client struct {
	// HTTP is the client used; nil means a shared default with no overall
	// timeout (each attempt has its own).
	HTTP *http.Client
}

var _ connector.Action = (*client)(nil)

// defaultClient is net/http's default transport (proxy from the
// environment, dial and TLS handshake timeouts, HTTP/2) keeping enough
// idle connections per host for every run the pipeline has in flight
// (256 by default) to reuse one, rather than dial anew.
var defaultClient = &http.Client{Transport: func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}()}

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
	hreq.Header.Set("User-Agent", "sous/1")
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
	if hc == nil {
		hc = defaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, classifyTransport(method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return nil, classifyTransport(method, target, err)
	}
	if len(raw) > MaxResponseBody {
		return nil, connector.Permanent(connector.ReasonClientError,
			fmt.Errorf("http %s %s: response body is larger than %d bytes", method, redactURL(target), MaxResponseBody))
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
	if err := statusError(method, target, resp, raw); err != nil {
		return out, err
	}
	return out, nil
}

// statusError classifies a non-2xx answer: 429 and 5xx are retryable
// (with Retry-After), 401/403 are auth failures, other 4xx are permanent.
func statusError(method string, u *url.URL, resp *http.Response, body []byte) error {
	code := resp.StatusCode
	if code < 400 {
		return nil
	}
	err := fmt.Errorf("http %s %s: %s: %s", method, redactURL(u), resp.Status, snippet(body))
	switch {
	case code == http.StatusTooManyRequests:
		return connector.Retryable(connector.ReasonRateLimited, RetryAfter(resp.Header.Get("Retry-After"), time.Now()), err)
	case code >= 500:
		return connector.Retryable(connector.ReasonServerError, RetryAfter(resp.Header.Get("Retry-After"), time.Now()), err)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return connector.Permanent(connector.ReasonAuth, err)
	case code == http.StatusRequestTimeout:
		return connector.Retryable(connector.ReasonTimeout, 0, err)
	default:
		return connector.Permanent(connector.ReasonClientError, err)
	}
}

// RetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil {
		if secs < 0 {
			return 0
		}
		if int64(secs) > math.MaxInt64/int64(time.Second) {
			return math.MaxInt64 // rather than overflow into a short or negative wait
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func classifyTransport(method string, u *url.URL, err error) error {
	wrapped := fmt.Errorf("http %s %s: %w", method, redactURL(u), unwrapURLError(err))
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return connector.Retryable(connector.ReasonTimeout, 0, wrapped)
	}
	if errors.Is(err, context.Canceled) {
		return connector.Permanent(connector.ReasonTimeout, wrapped)
	}
	return connector.Retryable(connector.ReasonNetwork, 0, wrapped)
}

// unwrapURLError drops url.Error's copy of the URL, which may hold a
// secret in its query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL drops the query and user info from a URL for messages: they
// often carry tokens.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "…", false
	}
	c.Fragment, c.RawFragment = "", ""
	return c.String()
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
			return nil, fmt.Errorf("url %q is relative and no connection gives a base_url", redactURL(u))
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

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
