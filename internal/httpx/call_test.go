package httpx_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// TestCallJSON: an identity or revocation call's failures are classified
// as every connector's: retryable 429 and 5xx (after Retry-After), auth
// 401/403, client_error otherwise and for an answer that is not JSON.
func TestCallJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/ok":
			_, _ = io.WriteString(w, `{"name":"acme"}`)
		case "/api/limited":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/api/down":
			w.WriteHeader(http.StatusBadGateway)
		case "/api/denied":
			w.WriteHeader(http.StatusForbidden)
		case "/api/text":
			_, _ = io.WriteString(w, `not json`)
		}
	}))
	defer srv.Close()
	cl, err := connector.NewClient(&connector.Connection{Name: "c", Values: connector.Values{}}, &connector.ConnectionSpec{Type: "x"}, nil, connector.ClientHooks{})
	require.NoError(t, err)
	with := connector.Values{"base_url": srv.URL + "/api"}
	var out struct{ Name string }
	require.NoError(t, httpx.CallJSON(context.Background(), cl, with, "", http.MethodGet, "ok?token=s3cret", nil, &out))
	require.Equal(t, "acme", out.Name)
	tests := []struct {
		ref       string
		reason    connector.Reason
		retryable bool
		after     time.Duration
	}{
		{"limited", connector.ReasonRateLimited, true, 7 * time.Second},
		{"down", connector.ReasonServerError, true, 0},
		{"denied", connector.ReasonAuth, false, 0},
		{"text", connector.ReasonClientError, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			err := httpx.CallJSON(context.Background(), cl, with, "", http.MethodGet, tc.ref+"?token=s3cret", nil, &out)
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.retryable, ce.Retryable)
			require.Equal(t, tc.after, ce.RetryAfter)
			require.NotContains(t, err.Error(), "s3cret", "the query is left out")
		})
	}
}

func TestTokenError(t *testing.T) {
	body := []byte(`{"error":"invalid_grant","access_token":"leaked-token"}`)
	re := &oauth2.RetrieveError{Response: &http.Response{Status: "400 Bad Request"}, Body: body, ErrorCode: "invalid_grant", ErrorDescription: "expired"}
	require.EqualError(t, httpx.TokenError("refresh", re), "refresh: the provider refused: invalid_grant: expired")
	re = &oauth2.RetrieveError{Response: &http.Response{Status: "502 Bad Gateway"}, Body: body}
	err := httpx.TokenError("refresh", re)
	require.EqualError(t, err, "refresh: the provider answered 502 Bad Gateway")
	require.NotContains(t, err.Error(), "leaked-token")
	require.EqualError(t, httpx.TokenError("refresh", errors.New("dial tcp: refused")), "refresh: dial tcp: refused")
}
