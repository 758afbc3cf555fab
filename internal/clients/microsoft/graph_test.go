package microsoft_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/microsoft"
)

func connTo(t *testing.T, base, token string) *connector.Connection {
	t.Helper()
	conn := &connector.Connection{Name: "ms", Type: "microsoft", Values: connector.Values{connector.ConnToken: token, connector.ConnBaseURL: base}}
	cl, err := connector.NewClient(conn, microsoft.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	conn.Client = cl
	return conn
}

func TestCall(t *testing.T) {
	f := microsoft.NewFake("tok-1")
	srv := httptest.NewServer(f)
	defer srv.Close()
	f.URL = srv.URL
	conn := connTo(t, srv.URL+"/v1.0", "tok-1")
	ctx := context.Background()

	var me struct{ Mail string }
	status, err := microsoft.Call(ctx, conn, http.MethodGet, "me", nil, &me, nil)
	require.NoError(t, err)
	require.Equal(t, 200, status)
	require.Equal(t, "ada@contoso.example", me.Mail)

	t.Run("202 with no body", func(t *testing.T) {
		body := map[string]any{"message": map[string]any{"subject": "s", "toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "a@example.com"}}}}}
		status, err := microsoft.Call(ctx, conn, http.MethodPost, "me/sendMail", body, &me, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status)
	})
	t.Run("a link to another host is refused", func(t *testing.T) {
		_, err := microsoft.Call(ctx, conn, http.MethodGet, "https://elsewhere.example/v1.0/me", nil, &me, nil)
		require.Error(t, err)
		require.Equal(t, connector.ReasonClientError, connector.Classify(err).Reason)
	})
	t.Run("an absolute link on the same host is followed", func(t *testing.T) {
		_, err := microsoft.Call(ctx, conn, http.MethodGet, srv.URL+"/v1.0/me", nil, &me, nil)
		require.NoError(t, err)
	})
	t.Run("a malformed request is Graph's 400, code and message", func(t *testing.T) {
		_, err := microsoft.Call(ctx, conn, http.MethodPost, "me/sendMail", map[string]any{"nope": 1}, nil, nil)
		require.Error(t, err)
		ce := connector.Classify(err)
		require.Equal(t, connector.ReasonClientError, ce.Reason)
		require.False(t, ce.Retryable)
		require.Contains(t, err.Error(), "BadRequest: sendMail: no message object")
		require.NotEmpty(t, f.Problems(), "the fake checks the body")
	})
	t.Run("a wrong token is auth, and not in the error", func(t *testing.T) {
		_, err := microsoft.Call(ctx, connTo(t, srv.URL+"/v1.0/", "wrong-token"), http.MethodGet, "me", nil, &me, nil)
		require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason)
		require.Contains(t, err.Error(), "InvalidAuthenticationToken")
		require.NotContains(t, err.Error(), "wrong-token")
	})
	t.Run("429 Retry-After", func(t *testing.T) {
		f.Fail(microsoft.Failure{Path: "/me", Status: 429, RetryAfter: "3", Code: "TooManyRequests", Times: 1})
		_, err := microsoft.Call(ctx, conn, http.MethodGet, "me", nil, &me, nil)
		ce := connector.Classify(err)
		require.Equal(t, connector.ReasonRateLimited, ce.Reason)
		require.True(t, ce.Retryable)
		require.Equal(t, 3*time.Second, ce.RetryAfter)
		_, err = microsoft.Call(ctx, conn, http.MethodGet, "me", nil, &me, nil)
		require.NoError(t, err, "once")
	})
	t.Run("users path", func(t *testing.T) {
		require.Equal(t, "me/", microsoft.UserPath(""))
		require.Equal(t, "users/ada@contoso.com/", microsoft.UserPath("ada@contoso.com"))
		require.Equal(t, "users/a%2Fb/", microsoft.UserPath("a/b"))
	})
}
