package google_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/api/googleapi"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

func TestEndpoint(t *testing.T) {
	tests := []struct {
		base, api, want, err string
	}{
		{base: "", api: "calendar/v3", want: "https://www.googleapis.com/calendar/v3/"},
		{base: "http://127.0.0.1:8081/", api: "drive/v3", want: "http://127.0.0.1:8081/drive/v3/"},
		{base: "http://127.0.0.1:8081", api: "drive/v3", want: "http://127.0.0.1:8081/drive/v3/"},
		{base: "https://proxy.test/google/", api: "calendar/v3", want: "https://proxy.test/google/calendar/v3/"},
		{base: "ftp://x/", api: "drive/v3", err: "not an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.base+tc.api, func(t *testing.T) {
			with := connector.Values{}
			if tc.base != "" {
				with[connector.ConnBaseURL] = tc.base
			}
			got, err := google.Endpoint(with, tc.api)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestClassify(t *testing.T) {
	gerr := func(code int, reason string, h http.Header) error {
		e := &googleapi.Error{Code: code, Message: "m", Header: h}
		if reason != "" {
			e.Errors = []googleapi.ErrorItem{{Reason: reason}}
		}
		return fmt.Errorf("wrapped: %w", e)
	}
	tests := []struct {
		name       string
		err        error
		retryable  bool
		reason     connector.Reason
		retryAfter time.Duration
	}{
		{"429", gerr(429, "", http.Header{"Retry-After": {"9"}}), true, connector.ReasonRateLimited, 9 * time.Second},
		{"403 rate", gerr(403, "rateLimitExceeded", nil), true, connector.ReasonRateLimited, 0},
		{"403 user rate", gerr(403, "userRateLimitExceeded", nil), true, connector.ReasonRateLimited, 0},
		{"403 quota", gerr(403, "quotaExceeded", nil), false, connector.ReasonAuth, 0},
		{"403", gerr(403, "insufficientPermissions", nil), false, connector.ReasonAuth, 0},
		{"401", gerr(401, "authError", nil), false, connector.ReasonAuth, 0},
		{"404", gerr(404, "notFound", nil), false, connector.ReasonNotFound, 0},
		{"409", gerr(409, "duplicate", nil), false, connector.ReasonConflict, 0},
		{"410", gerr(410, "deleted", nil), false, connector.ReasonNotFound, 0},
		{"400", gerr(400, "invalid", nil), false, connector.ReasonClientError, 0},
		{"408", gerr(408, "", nil), true, connector.ReasonTimeout, 0},
		{"500", gerr(500, "backendError", nil), true, connector.ReasonServerError, 0},
		{"503 with Retry-After", gerr(503, "", http.Header{"Retry-After": {"2"}}), true, connector.ReasonServerError, 2 * time.Second},
		{"deadline", context.DeadlineExceeded, true, connector.ReasonTimeout, 0},
		{"cancelled", context.Canceled, false, connector.ReasonTimeout, 0},
		{"refused", errors.New("connection refused"), true, connector.ReasonNetwork, 0},
		{"a connector error keeps its kind", connector.Permanent(connector.ReasonAuth, errors.New("no token")), false, connector.ReasonAuth, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := google.Classify("do it", tc.err)
			ce := connector.Classify(err)
			require.Equal(t, tc.retryable, ce.Retryable, "%v", err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.retryAfter, ce.RetryAfter)
			require.True(t, strings.HasPrefix(ce.Err.Error(), "do it: "), ce.Err.Error())
		})
	}
	require.NoError(t, google.Classify("x", nil))
}

// TestFakeResumable: the fake speaks the resumable protocol as Google
// documents it: a session's Location, chunks, the status query (an empty
// PUT with bytes */TOTAL answered 308 with the Range stored), and the
// rest sent from there.
func TestFakeResumable(t *testing.T) {
	fake := google.NewFake("tok")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	do := func(method, url, rng string, body []byte, h http.Header) *http.Response {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer tok")
		if rng != "" {
			req.Header.Set("Content-Range", rng)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := do(http.MethodPost, srv.URL+"/upload/drive/v3/files?uploadType=resumable", "", []byte(`{"name":"a.bin"}`), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	session := resp.Header.Get("Location")
	require.Contains(t, session, "upload_id=")
	data := bytes.Repeat([]byte("0123456789"), 100)

	resp = do(http.MethodPut, session, "bytes 0-399/1000", data[:400], nil)
	require.Equal(t, http.StatusPermanentRedirect, resp.StatusCode)
	require.Equal(t, "bytes=0-399", resp.Header.Get("Range"))
	fake.Fail(google.Failure{Method: http.MethodPut, Query: "upload_id=", Range: "bytes 400-"})
	resp = do(http.MethodPut, session, "bytes 400-799/1000", data[400:800], nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// where are we? an empty PUT
	resp = do(http.MethodPut, session, "bytes */1000", nil, nil)
	require.Equal(t, http.StatusPermanentRedirect, resp.StatusCode)
	require.Equal(t, "bytes=0-399", resp.Header.Get("Range"))
	resp = do(http.MethodPut, session, "bytes 400-799/1000", data[400:800], http.Header{"X-Guploader-No-308": {"yes"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "308", resp.Header.Get("X-Http-Status-Code-Override"))
	resp = do(http.MethodPut, session, "bytes 800-999/1000", data[800:], nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var got *google.FakeFile
	for _, f := range fake.Files() {
		got = f
	}
	require.Equal(t, data, got.Content)
	for _, ranges := range fake.UploadRanges() {
		require.Equal(t, [][2]int64{{0, 399}, {400, 799}, {800, 999}}, ranges)
	}
	require.Empty(t, fake.Problems)
}
