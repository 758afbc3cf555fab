package httpx

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// TestFetch: a fetched body streams whole within its limit; past it, a
// declared length fails at once and a chunked body fails on the read
// that passes it, permanently, naming the option and not the query;
// statuses and schemes are classified as for any call.
func TestFetch(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "credentials sent", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/sized":
			w.Header().Set("Content-Type", "application/pdf")
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			_, _ = w.Write(data)
		case "/chunked":
			w.Header()["Content-Type"] = nil // none, not sniffed
			for i := 0; i < len(data); i += 4096 {
				_, _ = w.Write(data[i : i+4096])
				w.(http.Flusher).Flush()
			}
		case "/busy":
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name, url string
		limit     int64
		at        string // "fetch" or "read": where it fails; "" when it does not
		reason    connector.Reason
		retryable bool
		length    int64
		ctype     string
	}{
		{name: "sized within", url: "/sized", limit: int64(len(data)), length: int64(len(data)), ctype: "application/pdf"},
		{name: "chunked within", url: "/chunked", limit: int64(len(data)), length: -1},
		{name: "no limit", url: "/chunked", limit: 0, length: -1},
		{name: "sized past", url: "/sized?sig=s3cret", limit: int64(len(data)) - 1, at: "fetch", reason: connector.ReasonInvalid},
		{name: "chunked past", url: "/chunked?sig=s3cret", limit: 10_000, at: "read", reason: connector.ReasonInvalid, length: -1},
		{name: "not found", url: "/nope?sig=s3cret", limit: 1, at: "fetch", reason: connector.ReasonNotFound},
		{name: "unavailable", url: "/busy", limit: 1, at: "fetch", reason: connector.ReasonServerError, retryable: true},
		{name: "not http", url: "ftp://example.com/x", limit: 1, at: "fetch", reason: connector.ReasonInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.url
			if raw[0] == '/' {
				raw = srv.URL + raw
			}
			f, err := Fetch(t.Context(), raw, "max_url_bytes", tc.limit)
			if tc.at == "fetch" {
				require.Error(t, err)
				require.Nil(t, f)
			} else {
				require.NoError(t, err)
				defer f.Close()
				require.Equal(t, tc.length, f.Length)
				require.Equal(t, tc.ctype, f.ContentType)
				var got []byte
				got, err = io.ReadAll(f)
				if tc.at == "" {
					require.NoError(t, err)
					require.Equal(t, data, got)
					require.NoError(t, f.Err())
					return
				}
				require.Error(t, err)
				require.LessOrEqual(t, int64(len(got)), tc.limit, "nothing past the limit is handed on")
				require.Equal(t, err, f.Err(), "Err says why the read stopped")
			}
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.retryable, ce.Retryable, "%v", err)
			require.NotContains(t, err.Error(), "s3cret", "the query stays out of the message")
			if tc.reason == connector.ReasonInvalid && tc.url[0] == '/' {
				require.ErrorContains(t, err, "larger than max_url_bytes")
			}
		})
	}

	t.Run("a dropped connection is retryable", func(t *testing.T) {
		drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write(data[:1000])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}))
		defer drop.Close()
		f, err := Fetch(t.Context(), drop.URL+"/x", "max_url_bytes", 1<<20)
		require.NoError(t, err)
		defer f.Close()
		_, err = io.ReadAll(f)
		require.Error(t, err)
		var ce *connector.Error
		require.True(t, errors.As(err, &ce), "%v", err)
		require.True(t, ce.Retryable, "%v", err)
		require.NoError(t, f.Err(), "not a limit error")
	})
}
