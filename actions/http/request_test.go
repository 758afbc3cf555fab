package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	httpaction "github.com/sous-run/sous/actions/http"
	"github.com/sous-run/sous/engine/connector"
)

const queryToken = "qtok_8Hn2Lw0Pz" // a token in a URL's query: never in an error

// values coerces a raw `with` block through the spec's fields and applies
// defaults, as the recipe loader and runner do.
func values(t *testing.T, raw map[string]any) connector.Values {
	t.Helper()
	out := connector.Values{}
	for k, v := range raw {
		f, ok := httpaction.Request.Field(k)
		require.Truef(t, ok, "http.request has no field %q", k)
		c, err := f.CheckValue(v)
		require.NoErrorf(t, err, "field %s", k)
		out[k] = c
	}
	for _, f := range httpaction.Request.Fields {
		if _, ok := out[f.Name]; !ok && f.Default != nil {
			out[f.Name] = f.Default
		}
	}
	return out
}

// connection builds an http connection from raw values.
func connection(t *testing.T, raw map[string]any) *connector.Connection {
	t.Helper()
	vals := connector.Values{}
	for k, v := range raw {
		f, ok := httpaction.Connection.Field(k)
		require.Truef(t, ok, "the http connection has no field %q", k)
		c, err := f.CheckValue(v)
		require.NoErrorf(t, err, "connection field %s", k)
		vals[k] = c
	}
	return &connector.Connection{Name: "api", Type: "http", Values: vals}
}

func run(ctx context.Context, with connector.Values, conn *connector.Connection, key string) (map[string]any, error) {
	return httpaction.Request.Action.Run(ctx, &connector.Request{
		Recipe: "r", RunID: "run-1", Step: "call", With: with, Connection: conn, IdempotencyKey: key,
	})
}

// seen is one request a test server received.
type seen struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// recorder is a test server that records each request and answers with
// reply (200 and an empty JSON object when nil).
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newRecorder(t *testing.T, reply http.HandlerFunc) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
		rec.mu.Unlock()
		if reply != nil {
			reply(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

func (r *recorder) only(t *testing.T) seen {
	t.Helper()
	reqs := r.requests()
	require.Len(t, reqs, 1)
	return reqs[0]
}

func TestRequestShape(t *testing.T) {
	tests := []struct {
		name  string
		with  func(srv string) map[string]any
		conn  func(srv string) map[string]any // nil: no connection
		key   string
		raw   bool // call without defaults applied
		check func(t *testing.T, r seen)
	}{
		{
			name: "method defaults to POST",
			with: func(srv string) map[string]any { return map[string]any{"url": srv + "/x"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, http.MethodPost, r.Method)
				require.Empty(t, r.Header.Get("Content-Type"), "no body, no content type")
				require.Empty(t, r.Body)
			},
		},
		{
			name: "method defaults to POST without the spec's defaults",
			with: func(srv string) map[string]any { return map[string]any{"url": srv + "/x"} },
			raw:  true,
			check: func(t *testing.T, r seen) {
				require.Equal(t, http.MethodPost, r.Method)
			},
		},
		{
			name: "method",
			with: func(srv string) map[string]any { return map[string]any{"url": srv + "/x", "method": "DELETE"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, http.MethodDelete, r.Method)
			},
		},
		{
			name: "method in lower case, sent in upper case",
			with: func(srv string) map[string]any { return map[string]any{"url": srv + "/x", "method": "patch"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, http.MethodPatch, r.Method)
			},
		},
		{
			name: "json body",
			with: func(srv string) map[string]any {
				return map[string]any{"url": srv + "/orders", "method": "PUT", "json": map[string]any{"id": "o-1", "items": []any{"a", 2}}}
			},
			check: func(t *testing.T, r seen) {
				require.Equal(t, http.MethodPut, r.Method)
				require.Equal(t, "/orders", r.Path)
				require.Equal(t, "application/json", r.Header.Get("Content-Type"))
				require.JSONEq(t, `{"id":"o-1","items":["a",2]}`, string(r.Body))
			},
		},
		{
			name: "json scalar body",
			with: func(srv string) map[string]any { return map[string]any{"url": srv, "json": "just a string"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, "application/json", r.Header.Get("Content-Type"))
				require.Equal(t, `"just a string"`, string(r.Body))
			},
		},
		{
			name: "raw body",
			with: func(srv string) map[string]any { return map[string]any{"url": srv, "body": "hello\nworld"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, "text/plain; charset=utf-8", r.Header.Get("Content-Type"))
				require.Equal(t, "hello\nworld", string(r.Body))
			},
		},
		{
			name: "headers, and a content type of the recipe's own",
			with: func(srv string) map[string]any {
				return map[string]any{"url": srv, "body": "<a/>", "headers": map[string]any{"X-Source": "sous", "Content-Type": "application/xml", "X-N": 3}}
			},
			check: func(t *testing.T, r seen) {
				require.Equal(t, "sous", r.Header.Get("X-Source"))
				require.Equal(t, "3", r.Header.Get("X-N"))
				require.Equal(t, "application/xml", r.Header.Get("Content-Type"))
			},
		},
		{
			name: "query merged into the url's own",
			with: func(srv string) map[string]any {
				return map[string]any{"url": srv + "/search?a=1&b=2", "method": "GET", "query": map[string]any{"b": "3", "c": "x y"}}
			},
			check: func(t *testing.T, r seen) {
				require.Equal(t, "/search", r.Path)
				require.Equal(t, url.Values{"a": {"1"}, "b": {"3"}, "c": {"x y"}}, r.Query)
			},
		},
		{
			name: "idempotency key and user agent",
			with: func(srv string) map[string]any { return map[string]any{"url": srv} },
			key:  "run-1:call",
			check: func(t *testing.T, r seen) {
				require.Equal(t, "run-1:call", r.Header.Get("Idempotency-Key"))
				require.Equal(t, "sous/1", r.Header.Get("User-Agent"))
			},
		},
		{
			name: "no idempotency key, no header",
			with: func(srv string) map[string]any { return map[string]any{"url": srv} },
			check: func(t *testing.T, r seen) {
				require.NotContains(t, r.Header, "Idempotency-Key")
			},
		},
		{
			name: "relative url against the connection's base_url",
			with: func(string) map[string]any { return map[string]any{"url": "orders/7", "method": "GET"} },
			conn: func(srv string) map[string]any { return map[string]any{"base_url": srv + "/v1/"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, "/v1/orders/7", r.Path)
			},
		},
		{
			name: "absolute path against the connection's base_url",
			with: func(string) map[string]any { return map[string]any{"url": "/health?deep=1", "method": "GET"} },
			conn: func(srv string) map[string]any { return map[string]any{"base_url": srv + "/v1/"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, "/health", r.Path)
				require.Equal(t, "1", r.Query.Get("deep"))
			},
		},
		{
			name: "absolute url ignores the base_url",
			with: func(srv string) map[string]any { return map[string]any{"url": srv + "/direct"} },
			conn: func(string) map[string]any { return map[string]any{"base_url": "http://127.0.0.1:1/elsewhere/"} },
			check: func(t *testing.T, r seen) {
				require.Equal(t, "/direct", r.Path)
			},
		},
		{
			name: "connection headers and bearer token",
			with: func(string) map[string]any {
				return map[string]any{"url": "hook", "headers": map[string]any{"X-Override": "step"}}
			},
			conn: func(srv string) map[string]any {
				return map[string]any{"base_url": srv + "/", "bearer_token": "tok-123",
					"headers": map[string]any{"X-Api-Key": "key-9", "X-Override": "connection"}}
			},
			check: func(t *testing.T, r seen) {
				require.Equal(t, "/hook", r.Path)
				require.Equal(t, "Bearer tok-123", r.Header.Get("Authorization"))
				require.Equal(t, "key-9", r.Header.Get("X-Api-Key"))
				require.Equal(t, "step", r.Header.Get("X-Override"), "the step's headers win over the connection's")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, nil)
			var with connector.Values
			if tc.raw {
				with = connector.Values{}
				for k, v := range tc.with(srv.URL) {
					with[k] = v
				}
			} else {
				with = values(t, tc.with(srv.URL))
			}
			var conn *connector.Connection
			if tc.conn != nil {
				conn = connection(t, tc.conn(srv.URL))
			}
			_, err := run(t.Context(), with, conn, tc.key)
			require.NoError(t, err)
			tc.check(t, srv.only(t))
		})
	}
}

func TestRequestOutput(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		status      int
		body        string
		wantJSON    any
	}{
		{name: "json", contentType: "application/json; charset=utf-8", status: http.StatusCreated, body: `{"id":"o-1","n":2}`,
			wantJSON: map[string]any{"id": "o-1", "n": 2.0}},
		{name: "problem json", contentType: "application/problem+json", status: http.StatusOK, body: `[1,"a"]`, wantJSON: []any{1.0, "a"}},
		{name: "text", contentType: "text/plain", status: http.StatusOK, body: `{"looks":"like json"}`, wantJSON: nil},
		{name: "invalid json", contentType: "application/json", status: http.StatusOK, body: `{oops`, wantJSON: nil},
		{name: "empty", contentType: "application/json", status: http.StatusNoContent, body: ``, wantJSON: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Add("X-Reply", "first")
				w.Header().Add("X-Reply", "second")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			out, err := run(t.Context(), values(t, map[string]any{"url": srv.URL}), nil, "")
			require.NoError(t, err)
			require.Equal(t, int64(tc.status), out["status"])
			require.Equal(t, tc.body, out["body"])
			require.Equal(t, tc.wantJSON, out["json"])
			headers, ok := out["headers"].(map[string]any)
			require.True(t, ok, "headers is a map")
			require.Equal(t, "first", headers["X-Reply"], "the first value of a header")
			require.Equal(t, tc.contentType, headers["Content-Type"])
			// the output fits the declared shape's keys
			for _, p := range httpaction.Request.Shape.Props {
				require.Contains(t, out, p.Name)
			}
		})
	}
}

func TestRequestStatusErrors(t *testing.T) {
	httpDate := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name       string
		status     int
		retryAfter string
		reason     connector.Reason
		retryable  bool
		minWait    time.Duration
		maxWait    time.Duration
	}{
		{name: "429 with seconds", status: 429, retryAfter: "7", reason: connector.ReasonRateLimited, retryable: true, minWait: 7 * time.Second, maxWait: 7 * time.Second},
		{name: "429 with an http date", status: 429, retryAfter: httpDate(30 * time.Second), reason: connector.ReasonRateLimited, retryable: true,
			minWait: 25 * time.Second, maxWait: 31 * time.Second},
		{name: "429 without retry-after", status: 429, reason: connector.ReasonRateLimited, retryable: true},
		{name: "500", status: 500, reason: connector.ReasonServerError, retryable: true},
		{name: "502", status: 502, reason: connector.ReasonServerError, retryable: true},
		{name: "503 with retry-after", status: 503, retryAfter: "2", reason: connector.ReasonServerError, retryable: true, minWait: 2 * time.Second, maxWait: 2 * time.Second},
		{name: "401", status: 401, reason: connector.ReasonAuth},
		{name: "403", status: 403, reason: connector.ReasonAuth},
		{name: "404", status: 404, reason: connector.ReasonNotFound},
		{name: "422", status: 422, reason: connector.ReasonClientError},
		{name: "400", status: 400, reason: connector.ReasonClientError},
		{name: "408", status: 408, reason: connector.ReasonTimeout, retryable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, `{"error":"nope"}`)
			})
			out, err := run(t.Context(), values(t, map[string]any{"url": srv.URL + "/things?token=" + queryToken}), nil, "")
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason)
			require.Equal(t, tc.retryable, ce.Retryable)
			require.GreaterOrEqual(t, ce.RetryAfter, tc.minWait)
			require.LessOrEqual(t, ce.RetryAfter, tc.maxWait)
			msg := err.Error()
			require.Contains(t, msg, http.StatusText(tc.status))
			require.Contains(t, msg, "/things", "the error says which URL failed")
			require.Contains(t, msg, "nope", "the error quotes the answer")
			require.NotContains(t, msg, queryToken, "the query may hold a token")
			require.Equal(t, int64(tc.status), out["status"], "the output of a failed call is kept")
			require.Equal(t, map[string]any{"error": "nope"}, out["json"])
		})
	}
}

// TestRequestTimeout: a call ends at the sooner of with.timeout and the
// caller's deadline (the runner's step timeout), whichever is set.
func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(3 * time.Second): // a call nothing ended succeeds, late
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	for _, tc := range []struct {
		name     string
		deadline time.Duration // of the caller's context; 0: none
		timeout  string
	}{
		{"with.timeout, no deadline", 0, "50ms"},
		{"with.timeout before a later deadline", time.Hour, "50ms"},
		{"a deadline before with.timeout", 50 * time.Millisecond, "1h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := run(ctx, values(t, map[string]any{"url": srv.URL + "/slow?token=" + queryToken, "timeout": tc.timeout}), nil, "")
			require.Less(t, time.Since(start), 3*time.Second, "the sooner end bounded the call")
			ce := connector.Classify(err)
			require.NotNil(t, ce)
			require.Equal(t, connector.ReasonTimeout, ce.Reason)
			require.True(t, ce.Retryable)
			require.NotContains(t, err.Error(), queryToken)
		})
	}
}

func TestRequestCanceled(t *testing.T) {
	release := make(chan struct{})
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := run(ctx, values(t, map[string]any{"url": srv.URL}), nil, "")
	ce := connector.Classify(err)
	require.NotNil(t, ce)
	require.Equal(t, connector.ReasonTimeout, ce.Reason)
	require.False(t, ce.Retryable, "a canceled run is not retried")
}

func TestRequestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more
	_, err := run(t.Context(), values(t, map[string]any{"url": addr + "/x?token=" + queryToken}), nil, "")
	ce := connector.Classify(err)
	require.NotNil(t, ce)
	require.Equal(t, connector.ReasonNetwork, ce.Reason)
	require.True(t, ce.Retryable)
	require.NotContains(t, err.Error(), queryToken)
}

func TestRequestResponseTooLarge(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		chunk := strings.Repeat("x", 64<<10)
		for written := 0; written <= httpaction.MaxResponseBody; written += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	_, err := run(t.Context(), values(t, map[string]any{"url": srv.URL + "/big?token=" + queryToken}), nil, "")
	require.ErrorContains(t, err, "larger than")
	ce := connector.Classify(err)
	require.False(t, ce.Retryable, "a retry gets the same body")
	require.NotContains(t, err.Error(), queryToken)
}

func TestRequestExactlyMaxBodyIsFine(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("y", httpaction.MaxResponseBody))
	})
	out, err := run(t.Context(), values(t, map[string]any{"url": srv.URL}), nil, "")
	require.NoError(t, err)
	require.Len(t, out["body"], httpaction.MaxResponseBody)
}

func TestRequestInvalidInput(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		conn    map[string]any
		wantErr string
	}{
		{name: "empty url", url: "", wantErr: "url is empty"},
		{name: "relative without a connection", url: "/orders?token=" + queryToken, wantErr: "is relative and no connection gives a base_url"},
		{name: "relative with a connection without base_url", url: "orders?token=" + queryToken, conn: map[string]any{"bearer_token": "t0k3n"},
			wantErr: "is relative"},
		{name: "not http", url: "ftp://files.example.com/x?token=" + queryToken, wantErr: `url scheme "ftp" is not http or https`},
		{name: "unparseable", url: "http://[::1/?token=" + queryToken, wantErr: "url is not valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var conn *connector.Connection
			if tc.conn != nil {
				conn = connection(t, tc.conn)
			}
			_, err := run(t.Context(), values(t, map[string]any{"url": tc.url}), conn, "")
			require.ErrorContains(t, err, tc.wantErr)
			ce := connector.Classify(err)
			require.Equal(t, connector.ReasonInvalid, ce.Reason)
			require.False(t, ce.Retryable)
			require.NotContains(t, err.Error(), queryToken)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"spaces", "  5 ", 5 * time.Second},
		{"negative", "-3", 0},
		{"fraction", "1.5", 0},
		{"garbage", "soon", 0},
		{"http date in the future", "Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"http date in the past", "Sun, 01 Mar 2026 11:59:00 GMT", 0},
		{"rfc 850 date", "Sunday, 01-Mar-26 12:01:00 GMT", time.Minute},
		{"asctime date", "Sun Mar  1 12:00:10 2026", 10 * time.Second},
		{"huge seconds do not overflow", "99999999999999", time.Duration(1<<63 - 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, httpaction.RetryAfter(tc.header, now))
		})
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want []string
	}{
		{"ok", map[string]any{"url": "https://x.test"}, nil},
		{"json and body", map[string]any{"url": "https://x.test", "json": map[string]any{}, "body": "b"}, []string{"body"}},
		{"timeout too long", map[string]any{"url": "https://x.test", "timeout": "11m"}, []string{"timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, fe := range httpaction.Request.Validate(values(t, tc.with)) {
				got = append(got, fe.Field)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSpecMethodEnum(t *testing.T) {
	f, ok := httpaction.Request.Field(httpaction.FieldMethod)
	require.True(t, ok)
	_, err := f.CheckValue("TRACE")
	require.ErrorContains(t, err, "must be one of GET, POST")
	for _, m := range []string{"PATCH", "get", "Delete", "OPTIONS"} {
		_, err = f.CheckValue(m)
		require.NoError(t, err, m)
	}
}

func TestConnectionBaseURLPattern(t *testing.T) {
	f, ok := httpaction.Connection.Field(httpaction.ConnBaseURL)
	require.True(t, ok)
	_, err := f.CheckValue("api.example.com")
	require.ErrorContains(t, err, "must start with http:// or https://")
	_, err = f.CheckValue("https://api.example.com/")
	require.NoError(t, err)
}

// The JSON an http.request output marshals to is what the run record keeps
// and what a replay reads back: every field of the output's shape, each
// as a recipe sees it (headers as single strings, the parsed JSON body).
func TestOutputMarshals(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		want        string // the output as JSON, without the Date header
	}{
		{
			name: "json", contentType: "application/json", body: `{"id":7,"tags":["a","b"],"ok":true}`,
			want: `{"status":201,"body":"{\"id\":7,\"tags\":[\"a\",\"b\"],\"ok\":true}",
				"json":{"id":7,"tags":["a","b"],"ok":true},
				"headers":{"Content-Type":"application/json","Content-Length":"35","X-Test":"one"}}`,
		},
		{
			name: "text", contentType: "text/plain", body: "plain",
			want: `{"status":201,"body":"plain","json":null,
				"headers":{"Content-Type":"text/plain","Content-Length":"5","X-Test":"one"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Add("X-Test", "one")
				w.Header().Add("X-Test", "two") // the first value is kept
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, tc.body)
			})
			out, err := run(t.Context(), values(t, map[string]any{"url": srv.URL}), nil, "")
			require.NoError(t, err)
			b, err := json.Marshal(out)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(b, &got))
			var keys []string
			for _, p := range httpaction.Request.Shape.Props {
				keys = append(keys, p.Name)
			}
			require.ElementsMatch(t, keys, mapKeys(got), "the output's fields are those of its shape")
			headers, ok := got["headers"].(map[string]any)
			require.Truef(t, ok, "headers marshal as an object, got %T", got["headers"])
			delete(headers, "Date")
			require.JSONEq(t, tc.want, mustJSON(t, got))
		})
	}
}

func mapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestConnectionRateLimit: an http connection's rate_limit holds its
// calls: with one call an hour, the second waits for the limiter, here
// past its step's deadline, and is not sent.
func TestConnectionRateLimit(t *testing.T) {
	srv := newRecorder(t, nil)
	conn := connection(t, map[string]any{"base_url": srv.URL + "/", "rate_limit": "1/h"})
	cl, err := connector.NewClient(conn, httpaction.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	require.NotNil(t, cl.Limiter)
	conn.Client = cl
	with := values(t, map[string]any{"url": "ping", "method": "GET"})
	_, err = run(context.Background(), with, conn, "")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = run(ctx, with, conn, "")
	require.ErrorContains(t, err, "rate limit")
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Len(t, srv.reqs, 1, "the second call was held")

	f, _ := httpaction.Connection.Field("rate_limit")
	_, err = f.CheckValue("often")
	require.Error(t, err, "a rate_limit that does not parse is refused")
}
