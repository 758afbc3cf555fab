package httpx_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

func TestReadBody(t *testing.T) {
	readErr := errors.New("connection reset")
	tests := []struct {
		name     string
		body     io.Reader
		limit    int64
		wantLen  int
		tooLarge bool
		wantErr  error // another error, as it is
	}{
		{name: "empty", body: strings.NewReader(""), limit: 4},
		{name: "under the limit", body: strings.NewReader("abc"), limit: 4, wantLen: 3},
		{name: "exactly at the limit", body: strings.NewReader("abcd"), limit: 4, wantLen: 4},
		{name: "one over", body: strings.NewReader("abcde"), limit: 4, tooLarge: true},
		{name: "far over", body: strings.NewReader(strings.Repeat("z", 1<<16)), limit: 4, tooLarge: true},
		{name: "exactly at the default limit", body: strings.NewReader(strings.Repeat("y", httpx.DefaultMaxBody)), wantLen: httpx.DefaultMaxBody},
		{name: "one over the default limit", body: strings.NewReader(strings.Repeat("y", httpx.DefaultMaxBody+1)), tooLarge: true},
		{name: "a negative limit is the default", body: strings.NewReader(strings.Repeat("y", httpx.DefaultMaxBody+1)), limit: -1, tooLarge: true},
		{name: "a read error", body: io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(readErr)), limit: 4, wantErr: readErr},
		{name: "a read error past the limit", body: io.MultiReader(strings.NewReader("abcde"), iotest.ErrReader(readErr)), limit: 4, tooLarge: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := httpx.ReadBody(tc.body, tc.limit)
			switch {
			case tc.tooLarge:
				require.ErrorIs(t, err, httpx.ErrBodyTooLarge)
				limit := tc.limit
				if limit <= 0 {
					limit = httpx.DefaultMaxBody
				}
				require.EqualError(t, err, "response body is larger than "+strconv.FormatInt(limit, 10)+" bytes")
				require.Nil(t, b)
			case tc.wantErr != nil:
				require.Equal(t, tc.wantErr, err)
				require.NotErrorIs(t, err, httpx.ErrBodyTooLarge)
			default:
				require.NoError(t, err)
				require.Len(t, b, tc.wantLen)
			}
		})
	}
}

// server answers with n bytes and echoes the User-Agent it got (absent:
// "-") in X-Got-User-Agent.
func server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua, ok := r.Header["User-Agent"]
		got := "-"
		if ok {
			got = strings.Join(ua, ",")
		}
		w.Header().Set("X-Got-User-Agent", got)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = io.WriteString(w, strings.Repeat("x", n))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTransportUserAgent(t *testing.T) {
	srv := server(t)
	tests := []struct {
		name      string
		transport *httpx.Transport
		header    []string // the request's User-Agent values; nil: none
		want      string
	}{
		{name: "the package's", transport: &httpx.Transport{}, want: httpx.UserAgent},
		{name: "the transport's own", transport: &httpx.Transport{UserAgent: "sous-test/9"}, want: "sous-test/9"},
		{name: "the request's wins", transport: &httpx.Transport{UserAgent: "sous-test/9"}, header: []string{"my-bot/2"}, want: "my-bot/2"},
		{name: "an empty one on the request sends none", transport: &httpx.Transport{}, header: []string{""}, want: "-"},
		{name: "over another base", transport: &httpx.Transport{Base: http.DefaultTransport}, want: httpx.UserAgent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			req.Header.Set("X-Other", "kept")
			if tc.header != nil {
				req.Header["User-Agent"] = tc.header
			}
			before := req.Header.Clone()
			resp, err := (&http.Client{Transport: tc.transport}).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.want, resp.Header.Get("X-Got-User-Agent"))
			require.Equal(t, before, req.Header, "the caller's request is not modified")
		})
	}
}

func TestNewClient(t *testing.T) {
	srv := server(t)
	for _, tc := range []struct {
		n        int
		tooLarge bool
	}{
		{n: 0},
		{n: httpx.DefaultMaxBody},
		{n: httpx.DefaultMaxBody + 1, tooLarge: true},
	} {
		t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/?n="+strconv.Itoa(tc.n), nil)
			require.NoError(t, err)
			resp, err := httpx.NewClient().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, "sous/1", resp.Header.Get("X-Got-User-Agent"))
			b, err := io.ReadAll(resp.Body) // as an SDK would, unbounded
			if tc.tooLarge {
				require.ErrorIs(t, err, httpx.ErrBodyTooLarge)
				return
			}
			require.NoError(t, err)
			require.Len(t, b, tc.n)
		})
	}
}

func TestTransportBodyLimit(t *testing.T) {
	srv := server(t)
	tests := []struct {
		name     string
		maxBody  int64
		method   string
		n        int
		tooLarge bool
	}{
		{name: "empty", maxBody: 8, n: 0},
		{name: "exactly at the limit", maxBody: 8, n: 8},
		{name: "one over", maxBody: 8, n: 9, tooLarge: true},
		{name: "far over", maxBody: 8, n: 1 << 20, tooLarge: true},
		{name: "no limit", maxBody: -1, n: httpx.DefaultMaxBody + 1},
		{name: "a HEAD has no body", maxBody: 8, method: http.MethodHead, n: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/?n="+strconv.Itoa(tc.n), nil)
			require.NoError(t, err)
			resp, err := (&http.Client{Transport: &httpx.Transport{MaxBody: tc.maxBody}}).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if !tc.tooLarge {
				require.NoError(t, err)
				if method == http.MethodHead {
					require.Empty(t, b)
					return
				}
				require.Len(t, b, tc.n)
				return
			}
			require.ErrorIs(t, err, httpx.ErrBodyTooLarge)
			require.EqualError(t, err, "response body is larger than "+strconv.FormatInt(tc.maxBody, 10)+" bytes")
			require.LessOrEqual(t, int64(len(b)), tc.maxBody, "nothing past the limit is returned")
			_, err = resp.Body.Read(make([]byte, 4))
			require.ErrorIs(t, err, httpx.ErrBodyTooLarge, "every later read fails too")
			ce := connector.Classify(httpx.ClassifyTransport(err))
			require.Equal(t, connector.ReasonClientError, ce.Reason)
			require.False(t, ce.Retryable, "a retry gets the same body")
		})
	}
}

// closer is a base RoundTripper that records CloseIdleConnections.
type closer struct {
	http.RoundTripper
	closed int
}

func (c *closer) CloseIdleConnections() { c.closed++ }

func TestTransportCloseIdleConnections(t *testing.T) {
	base := &closer{RoundTripper: http.DefaultTransport}
	(&http.Client{Transport: &httpx.Transport{Base: base}}).CloseIdleConnections()
	require.Equal(t, 1, base.closed)
}
