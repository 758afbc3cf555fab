package connector_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// calls records what a connection's hooks were told.
type calls struct {
	mu       sync.Mutex
	statuses []string
	waits    int
}

func (c *calls) hooks() connector.ClientHooks {
	return connector.ClientHooks{
		Call: func(conn, caller, status string, _ time.Duration) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.statuses = append(c.statuses, conn+" "+caller+" "+status)
		},
		Wait: func(string, string, time.Duration) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.waits++
		},
	}
}

func TestClient(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	getFor := func(ctx context.Context, t *testing.T, cl *connector.Client, path string) *http.Request {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := cl.HTTP.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return req
	}
	get := func(t *testing.T, cl *connector.Client, path string) *http.Request {
		t.Helper()
		return getFor(context.Background(), t, cl, path)
	}
	spec := &connector.ConnectionSpec{Type: "acme"}

	t.Run("a token goes as a bearer token, the caller's request untouched, each call counted", func(t *testing.T) {
		auths = nil
		var c calls
		cl, err := connector.NewClient(&connector.Connection{Name: "main", Values: connector.Values{"token": "tok-1"}}, spec, nil, c.hooks())
		require.NoError(t, err)
		req := get(t, cl, "/ok")
		get(t, cl, "/missing")
		require.Empty(t, req.Header.Get("Authorization"), "a RoundTripper does not modify its request")
		require.Equal(t, []string{"Bearer tok-1", "Bearer tok-1"}, auths)
		require.Equal(t, []string{"main  200", "main  404"}, c.statuses)
		require.Nil(t, cl.Limiter, "no rate_limit, no limiter")
		// the calls of an action or trigger are counted as its
		getFor(connector.WithCaller(context.Background(), "acme.do"), t, cl, "/ok")
		require.Equal(t, "main acme.do 200", c.statuses[2])
	})
	t.Run("a type's own credentials", func(t *testing.T) {
		auths = nil
		basic := &connector.ConnectionSpec{Type: "acme", Authorize: func(w connector.Values) (connector.Authorize, error) {
			return connector.BasicAuthorize(w.String("email"), w.String("api_token")), nil
		}}
		cl, err := connector.NewClient(&connector.Connection{Name: "j", Values: connector.Values{"email": "a@b.c", "api_token": "t0k"}}, basic, nil, connector.ClientHooks{})
		require.NoError(t, err)
		get(t, cl, "/")
		require.Equal(t, []string{"Basic YUBiLmM6dDBr"}, auths) // base64("a@b.c:t0k")
	})
	t.Run("no credentials: the request goes as it is", func(t *testing.T) {
		auths = nil
		cl, err := connector.NewClient(&connector.Connection{Name: "n", Values: connector.Values{}}, spec, nil, connector.ClientHooks{})
		require.NoError(t, err)
		get(t, cl, "/")
		require.Equal(t, []string{""}, auths)
	})
	t.Run("an authorization that fails stops the call, naming the connection", func(t *testing.T) {
		bad := &connector.ConnectionSpec{Type: "acme", Authorize: func(connector.Values) (connector.Authorize, error) {
			return func(*http.Request) error { return errNoCredentials }, nil
		}}
		cl, err := connector.NewClient(&connector.Connection{Name: "x", Values: connector.Values{}}, bad, nil, connector.ClientHooks{})
		require.NoError(t, err)
		_, err = cl.HTTP.Get(srv.URL)
		require.ErrorIs(t, err, errNoCredentials)
		require.ErrorContains(t, err, "connection x")
	})
	t.Run("the rate limit makes calls wait, and a context ends the wait", func(t *testing.T) {
		var c calls
		// a second apart: the second call waits even on a loaded machine
		cl, err := connector.NewClient(&connector.Connection{Name: "slow", Values: connector.Values{"rate_limit": "1/s burst 1"}}, spec, nil, c.hooks())
		require.NoError(t, err)
		for range 2 {
			get(t, cl, "/")
		}
		require.Equal(t, 1, c.waits, "the burst of one lets one call through, the other waits")
		slow, err := connector.NewClient(&connector.Connection{Name: "slower", Values: connector.Values{"rate_limit": "1/h burst 1"}}, spec, nil, c.hooks())
		require.NoError(t, err)
		get(t, slow, "/")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		_, err = slow.HTTP.Do(req)
		require.Error(t, err)
		require.ErrorContains(t, err, "connection slower: waiting for its rate limit")
	})
	t.Run("a failed call is counted as error", func(t *testing.T) {
		var c calls
		down := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("refused") })
		cl, err := connector.NewClient(&connector.Connection{Name: "d", Values: connector.Values{}}, spec, down, c.hooks())
		require.NoError(t, err)
		_, err = cl.HTTP.Get(srv.URL)
		require.Error(t, err)
		require.Equal(t, []string{"d  error"}, c.statuses)
	})
	t.Run("a bad rate limit is refused", func(t *testing.T) {
		_, err := connector.NewClient(&connector.Connection{Name: "b", Values: connector.Values{"rate_limit": "lots"}}, spec, nil, connector.ClientHooks{})
		require.ErrorContains(t, err, "connection b: rate_limit")
	})
}

// errNoCredentials is what a test authorizer fails with.
var errNoCredentials = errors.New("the connection holds no credentials")

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkClient is the cost of a connection's wrapping (rate limiter,
// credentials, counting) over a bare *http.Client, against a local server.
func BenchmarkClient(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	var n int
	wrapped, err := connector.NewClient(&connector.Connection{Name: "bench", Values: connector.Values{"token": "tok", "rate_limit": "1000000/s"}},
		&connector.ConnectionSpec{Type: "acme"}, http.DefaultTransport, connector.ClientHooks{Call: func(string, string, string, time.Duration) { n++ }})
	require.NoError(b, err)
	for _, tc := range []struct {
		name string
		cl   *http.Client
	}{{"bare", &http.Client{Transport: http.DefaultTransport}}, {"connection", wrapped.HTTP}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tc.cl.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
