package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

const queryToken = "qtok_5Vb8Rr1Kd" // a token in a URL's query: never in an error

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		code       int
		retryAfter string
		wantNil    bool
		reason     connector.Reason
		retryable  bool
		wait       time.Duration
	}{
		{code: 200, wantNil: true},
		{code: 204, wantNil: true},
		{code: 301, wantNil: true},
		{code: 304, wantNil: true},
		{code: 399, wantNil: true},
		{code: 400, reason: connector.ReasonClientError},
		{code: 401, reason: connector.ReasonAuth},
		{code: 403, reason: connector.ReasonAuth},
		{code: 404, reason: connector.ReasonNotFound},
		{code: 408, reason: connector.ReasonTimeout, retryable: true},
		{code: 408, retryAfter: "9", reason: connector.ReasonTimeout, retryable: true}, // Retry-After only on 429 and 5xx
		{code: 409, reason: connector.ReasonConflict},
		{code: 422, reason: connector.ReasonClientError},
		{code: 425, reason: connector.ReasonClientError},
		{code: 429, reason: connector.ReasonRateLimited, retryable: true},
		{code: 429, retryAfter: "7", reason: connector.ReasonRateLimited, retryable: true, wait: 7 * time.Second},
		{code: 429, retryAfter: "soon", reason: connector.ReasonRateLimited, retryable: true},
		{code: 451, retryAfter: "7", reason: connector.ReasonClientError},
		{code: 500, reason: connector.ReasonServerError, retryable: true},
		{code: 502, reason: connector.ReasonServerError, retryable: true},
		{code: 503, retryAfter: "2", reason: connector.ReasonServerError, retryable: true, wait: 2 * time.Second},
		{code: 504, reason: connector.ReasonServerError, retryable: true},
		{code: 599, reason: connector.ReasonServerError, retryable: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d retry-after %q", tc.code, tc.retryAfter), func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.code, Status: fmt.Sprintf("%d %s", tc.code, http.StatusText(tc.code)), Header: http.Header{}}
			if tc.retryAfter != "" {
				resp.Header.Set("Retry-After", tc.retryAfter)
			}
			u := mustURL(t, "https://user:pw@api.example.com/v1/things?token="+queryToken+"#frag")
			err := httpx.StatusError(http.MethodPut, u, resp, []byte(`  {"error":"nope"} `))
			if tc.wantNil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason)
			require.Equal(t, tc.retryable, ce.Retryable)
			require.Equal(t, tc.wait, ce.RetryAfter)
			require.Equal(t, fmt.Sprintf(`http PUT https://api.example.com/v1/things?…: %s: {"error":"nope"}`, resp.Status), ce.Err.Error())
			require.NotContains(t, err.Error(), queryToken)
			require.NotContains(t, err.Error(), "pw")
		})
	}
}

func TestStatusErrorBody(t *testing.T) {
	long := strings.Repeat("a", 200)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty", "", "(empty body)"},
		{"blank", " \n\t", "(empty body)"},
		{"200 bytes kept whole", long, long},
		{"longer cut at 200", long + "bcd", long + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Header: http.Header{}}
			err := httpx.StatusError(http.MethodGet, mustURL(t, "http://x.test/a"), resp, []byte(tc.body))
			require.EqualError(t, connector.Classify(err).Err, "http GET http://x.test/a: 500 Internal Server Error: "+tc.want)
		})
	}
}

// TestClassifyStatus: an SDK's error keeps its message and stays
// reachable with errors.Is and errors.As.
func TestClassifyStatus(t *testing.T) {
	sdkErr := errors.New("slack: ratelimited")
	h := http.Header{}
	h.Set("Retry-After", "30")
	err := httpx.ClassifyStatus(http.StatusTooManyRequests, h, sdkErr)
	require.ErrorIs(t, err, sdkErr)
	ce := connector.Classify(err)
	require.Equal(t, connector.ReasonRateLimited, ce.Reason)
	require.Equal(t, 30*time.Second, ce.RetryAfter)
	require.Equal(t, sdkErr, ce.Err)

	err = httpx.ClassifyStatus(http.StatusForbidden, nil, sdkErr) // no header at all
	ce = connector.Classify(err)
	require.Equal(t, connector.ReasonAuth, ce.Reason)
	require.False(t, ce.Retryable)
}

// timeoutError is a net.Error, as a dialer's or a TLS handshake's.
type timeoutError struct{ timeout bool }

func (e timeoutError) Error() string   { return "i/o timeout" }
func (e timeoutError) Timeout() bool   { return e.timeout }
func (e timeoutError) Temporary() bool { return e.timeout }

var _ net.Error = timeoutError{}

// realError makes one real request that fails: to a closed port, to a
// server that never answers with a deadline, or canceled.
func realError(t *testing.T, how string) error {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close
	target := srv.URL + "/x?token=" + queryToken
	ctx := t.Context()
	switch how {
	case "refused":
		srv.Close() // nothing listens there any more
	case "deadline":
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
		t.Cleanup(cancel)
	case "canceled":
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
	case "client timeout":
	default:
		t.Fatalf("no way %q", how)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	require.NoError(t, err)
	client := httpx.NewClient()
	if how == "client timeout" {
		client.Timeout = 20 * time.Millisecond
	}
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	return err
}

func TestTransportError(t *testing.T) {
	withURL := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://api.example.com/x?token=" + queryToken, Err: err}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name      string
		err       func(t *testing.T) error
		reason    connector.Reason
		retryable bool
	}{
		{"deadline", func(*testing.T) error { return context.DeadlineExceeded }, connector.ReasonTimeout, true},
		{"deadline in a url error", func(*testing.T) error { return withURL(context.DeadlineExceeded) }, connector.ReasonTimeout, true},
		{"net timeout", func(*testing.T) error { return withURL(timeoutError{timeout: true}) }, connector.ReasonTimeout, true},
		{"dns timeout", func(*testing.T) error { return withURL(&net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}) }, connector.ReasonTimeout, true},
		{"net error that is no timeout", func(*testing.T) error { return withURL(timeoutError{}) }, connector.ReasonNetwork, true},
		{"canceled", func(*testing.T) error { return context.Canceled }, connector.ReasonTimeout, false},
		{"canceled in a url error", func(*testing.T) error { return withURL(context.Canceled) }, connector.ReasonTimeout, false},
		{"connection refused", func(*testing.T) error { return withURL(refused) }, connector.ReasonNetwork, true},
		{"no such host", func(*testing.T) error {
			return withURL(&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true})
		}, connector.ReasonNetwork, true},
		{"reset mid-body", func(*testing.T) error { return io.ErrUnexpectedEOF }, connector.ReasonNetwork, true},
		{"body too large", func(*testing.T) error { _, err := httpx.ReadBody(strings.NewReader("abc"), 2); return err }, connector.ReasonClientError, false},
		{"real: connection refused", func(t *testing.T) error { return realError(t, "refused") }, connector.ReasonNetwork, true},
		{"real: context deadline", func(t *testing.T) error { return realError(t, "deadline") }, connector.ReasonTimeout, true},
		{"real: client timeout", func(t *testing.T) error { return realError(t, "client timeout") }, connector.ReasonTimeout, true},
		{"real: context canceled", func(t *testing.T) error { return realError(t, "canceled") }, connector.ReasonTimeout, false},
		{"classified below the transport", func(*testing.T) error {
			return withURL(connector.Permanent(connector.ReasonAuth, errors.New("connection g was refused a refresh")))
		}, connector.ReasonAuth, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cause := tc.err(t)
			for _, fn := range []struct {
				name     string
				classify func(error) error
			}{
				{"TransportError", func(err error) error {
					return httpx.TransportError(http.MethodPost, mustURL(t, "https://api.example.com/x?token="+queryToken), err)
				}},
				{"ClassifyTransport", httpx.ClassifyTransport},
			} {
				t.Run(fn.name, func(t *testing.T) {
					err := fn.classify(cause)
					ce := connector.Classify(err)
					require.Equal(t, tc.reason, ce.Reason)
					require.Equal(t, tc.retryable, ce.Retryable)
					require.Zero(t, ce.RetryAfter)
					require.Equal(t, 1, strings.Count(err.Error(), "(permanent")+strings.Count(err.Error(), "(retryable"), "its kind said once: %v", err)
					if fn.name == "ClassifyTransport" {
						if tc.reason != connector.ReasonAuth {
							require.Equal(t, cause, ce.Err, "the error is kept as it is")
						}
						return
					}
					require.True(t, strings.HasPrefix(ce.Err.Error(), "http POST https://api.example.com/x?…: "), ce.Err.Error())
					require.NotContains(t, err.Error(), queryToken, "the url error's copy of the URL is dropped")
				})
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	longest := time.Duration(1<<63 - 1)
	tests := []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"empty", "", 0},
		{"blank", "   ", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"spaces", "  5 ", 5 * time.Second},
		{"plus sign", "+5", 5 * time.Second},
		{"negative", "-3", 0},
		{"fraction", "1.5", 0},
		{"exponent", "1e3", 0},
		{"garbage", "soon", 0},
		{"seconds with a unit", "5s", 0},
		{"http date in the future", "Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"http date now", "Sun, 01 Mar 2026 12:00:00 GMT", 0},
		{"http date in the past", "Sun, 01 Mar 2026 11:59:00 GMT", 0},
		{"rfc 850 date", "Sunday, 01-Mar-26 12:01:00 GMT", time.Minute},
		{"asctime date", "Sun Mar  1 12:00:10 2026", 10 * time.Second},
		{"iso date is not an http date", "2026-03-01T12:00:30Z", 0},
		{"largest seconds that fit", "9223372036", 9223372036 * time.Second},
		{"huge seconds do not overflow", "99999999999999", longest},
		{"a date centuries ahead does not overflow", "Fri, 31 Dec 9999 23:59:59 GMT", longest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, httpx.RetryAfter(tc.header, now))
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		raw  string
		want string
	}{
		{"https://api.example.com/v1/x", "https://api.example.com/v1/x"},
		{"https://api.example.com/v1/x?token=" + queryToken, "https://api.example.com/v1/x?…"},
		{"https://api.example.com/x?", "https://api.example.com/x?…"},
		{"https://bob:" + queryToken + "@api.example.com/x", "https://api.example.com/x"},
		{"https://api.example.com/x#access_token=" + queryToken, "https://api.example.com/x"},
		{"http://127.0.0.1:8080/a%20b", "http://127.0.0.1:8080/a%20b"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			u := mustURL(t, tc.raw)
			before := u.String()
			require.Equal(t, tc.want, httpx.RedactURL(u))
			require.Equal(t, before, u.String(), "the URL itself is not changed")
		})
	}
}

// TestTransportKeepsAConnectorError: a failure the connection's client
// classified (its token cannot be had) keeps its kind through the
// transport's classification.
func TestTransportKeepsAConnectorError(t *testing.T) {
	inner := connector.Permanent(connector.ReasonAuth, errors.New("connection app needs to be connected again"))
	err := httpx.TransportError("GET", mustURL(t, "http://x/items?token=s3cret"), &url.Error{Op: "Get", URL: "http://x/items?token=s3cret", Err: inner})
	ce := connector.Classify(err)
	require.False(t, ce.Retryable)
	require.Equal(t, connector.ReasonAuth, ce.Reason)
	require.NotContains(t, err.Error(), "s3cret")
	require.Contains(t, err.Error(), "needs to be connected again")
}
