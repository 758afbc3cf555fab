package jira

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		with connector.Values
		want string
		err  bool
	}{
		{"site", connector.Values{connector.ConnBaseURL: "https://acme.atlassian.net"}, "https://acme.atlassian.net", false},
		{"oauth", connector.Values{FieldCloudID: "1324a887-45db-1bf4-1e99-ef0ff456d421"},
			"https://api.atlassian.com/ex/jira/1324a887-45db-1bf4-1e99-ef0ff456d421/", false},
		{"base_url wins", connector.Values{connector.ConnBaseURL: "http://127.0.0.1:9", FieldCloudID: "x"}, "http://127.0.0.1:9", false},
		{"oauth, cloud id stored", connector.Values{connector.ConnOAuth: map[string]any{"client_id": "c"}},
			"https://api.atlassian.com/ex/jira/{cloud_id}/", false},
		{"token without cloud id", connector.Values{connector.ConnOAuth: map[string]any{"client_id": "c"}, connector.ConnToken: "t"}, "", true},
		{"neither", connector.Values{}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BaseURL(tc.with)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestOAuthPaths: with an OAuth token and a cloud id, the calls go to
// api.atlassian.com/ex/jira/{cloud_id}/rest/api/3/... with the bearer
// token (here a test server standing in for api.atlassian.com).
func TestOAuthPaths(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"accountId":"a"}`))
	}))
	defer srv.Close()
	conn := &connector.Connection{Name: "j", Type: "jira", Values: connector.Values{connector.ConnToken: "oauth-access-token-0123"}}
	cl, err := connector.NewClient(conn, Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	conn.Client = cl
	// the cloud-id root, pointed at the test server as base_url would be
	conn.Values[connector.ConnBaseURL] = srv.URL + "/ex/jira/cloud-1/"
	c, err := NewClient(conn)
	require.NoError(t, err)
	var me map[string]any
	require.NoError(t, Call(context.Background(), c, http.MethodGet, "rest/api/3/myself", nil, &me))
	require.Equal(t, "/ex/jira/cloud-1/rest/api/3/myself", got.URL.Path)
	require.Equal(t, "Bearer oauth-access-token-0123", got.Header.Get("Authorization"))
}

func TestErrorMessage(t *testing.T) {
	require.Equal(t, "Issue does not exist; summary: required", ErrorMessage([]byte(`{"errorMessages":["Issue does not exist"],"errors":{"summary":"required"}}`)))
	require.Equal(t, "a: 1; b: 2", ErrorMessage([]byte(`{"errorMessages":[],"errors":{"b":"2","a":"1"}}`)))
	require.Equal(t, "<html>oops</html>", ErrorMessage([]byte(`<html>oops</html>`)))
	require.Equal(t, "(empty body)", ErrorMessage(nil))
}

func TestStatusErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		status    int
		reason    connector.Reason
		retryable bool
	}{
		{429, connector.ReasonRateLimited, true}, {500, connector.ReasonServerError, true}, {503, connector.ReasonServerError, true},
		{401, connector.ReasonAuth, false}, {403, connector.ReasonAuth, false}, {404, connector.ReasonNotFound, false},
		{400, connector.ReasonClientError, false}, {409, connector.ReasonConflict, false}, {410, connector.ReasonNotFound, false},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"errorMessages":["no"],"errors":{}}`))
			}))
			defer srv.Close()
			conn := &connector.Connection{Name: "j", Type: "jira", Values: connector.Values{connector.ConnBaseURL: srv.URL,
				FieldEmail: "a@example.com", FieldAPIToken: "secret-token-canary"}}
			cl, err := connector.NewClient(conn, Connection, nil, connector.ClientHooks{})
			require.NoError(t, err)
			conn.Client = cl
			c, err := NewClient(conn)
			require.NoError(t, err)
			err = Call(context.Background(), c, http.MethodGet, "rest/api/3/issue/X-1?secret=q", nil, nil)
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason)
			require.Equal(t, tc.retryable, ce.Retryable)
			if tc.retryable {
				require.Equal(t, 3*time.Second, ce.RetryAfter)
			}
			require.Contains(t, err.Error(), ": no")
			require.NotContains(t, err.Error(), "secret", "neither the token nor the query")
		})
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"webhookEvent":"jira:issue_created"}`)
	good := httpx.SignSHA256("s3cret", body)
	for _, tc := range []struct {
		name, secret, sig string
		err               error
	}{
		{"good", "s3cret", good, nil},
		{"upper-case method", "s3cret", "SHA256=" + good[7:], nil},
		{"no secret, unsigned", "", "", nil},
		{"missing", "s3cret", "", ErrNoSignature},
		{"wrong", "s3cret", httpx.SignSHA256("other", body), ErrBadSignature},
		{"sha1", "s3cret", "sha1=" + good[7:], ErrBadSignature},
		{"no method", "s3cret", good[7:], ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.sig != "" {
				h.Set(HeaderSignature, tc.sig)
			}
			err := Verify(tc.secret, h, body)
			if tc.err == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.err)
			}
		})
	}
}

func TestTimes(t *testing.T) {
	tm, err := ParseTime("2026-12-07T22:30:00.123+0100")
	require.NoError(t, err)
	require.Equal(t, "2026-12-07T21:30:00.123+0000", FormatTime(tm))
	_, err = ParseTime("yesterday")
	require.Error(t, err)
}

// FuzzVerify: the signature check never panics and accepts only the
// body's own signature.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"webhookEvent":"x"}`), "sha256=00")
	f.Add([]byte(``), "sha256=")
	f.Add([]byte(`{}`), "=")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		err := Verify("fuzz-secret", http.Header{HeaderSignature: {sig}}, body)
		if err == nil {
			trimmed := strings.TrimSpace(sig)
			require.True(t, httpx.ValidSHA256("fuzz-secret", body, "sha256="+trimmed[len("sha256="):]))
		}
	})
}

// FuzzADF: any text becomes a document whose text is the text's, without
// empty text nodes (which Jira refuses).
func FuzzADF(f *testing.F) {
	f.Add("a\n\nb\nc")
	f.Add("\r\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		doc := ADF(s)
		for _, p := range doc["content"].([]any) {
			for _, n := range p.(map[string]any)["content"].([]any) {
				if m := n.(map[string]any); m["type"] == "text" {
					require.NotEmpty(t, m["text"])
				}
			}
		}
	})
}
