package dropbox_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/actions/dropbox"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	dbx "github.com/sous-run/sous/internal/clients/dropbox"
)

const token = "sl.test-dropbox-token-0123456789"

// fixture serves the fake on two servers, one per Dropbox host, so that
// each call must go to its host.
type fixture struct {
	fake         *dbx.Fake
	api, content *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{fake: dbx.NewFake(token)}
	f.api = httptest.NewServer(f.fake.API())
	f.content = httptest.NewServer(f.fake.Content())
	t.Cleanup(f.api.Close)
	t.Cleanup(f.content.Close)
	t.Cleanup(func() { require.Empty(t, f.fake.Problems, "requests the fake refused") })
	return f
}

func (f *fixture) run(t *testing.T, with map[string]any) (map[string]any, error) {
	t.Helper()
	cs, ok := connector.Default.Connection("dropbox")
	require.True(t, ok)
	c := &connector.Connection{Name: "dbx", Type: "dropbox", Values: connector.Values{
		"token": token, "base_url": f.api.URL + "/2/", "content_url": f.content.URL + "/2/"}}
	cl, err := connector.NewClient(c, cs, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	w, err := connectortest.With(dropbox.Upload, with)
	require.NoError(t, err)
	return dropbox.Upload.Action.Run(context.Background(), &connector.Request{Recipe: "r", RunID: "run1", Step: "up",
		With: w, Connection: c, IdempotencyKey: "run1:up"})
}

func TestUploadSmall(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want string
	}{
		{"content", map[string]any{"path": "/Notes/a.txt", "content": "hello"}, "hello"},
		{"base64", map[string]any{"path": "/Notes/b.bin", "content_base64": base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255})}, "\x00\x01\x02\xff"},
		{"unicode path", map[string]any{"path": "/Notes/café ✓ 😀.txt", "content": "x"}, "x"},
		{"empty", map[string]any{"path": "/Notes/empty.txt", "content": ""}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			out, err := f.run(t, tc.with)
			require.NoError(t, err)
			e, ok := f.fake.File(tc.with["path"].(string))
			require.True(t, ok)
			require.Equal(t, tc.want, string(e.Content))
			require.Equal(t, e.ID, out["id"])
			require.Equal(t, e.Rev, out["rev"])
			require.Equal(t, dbx.ContentHash([]byte(tc.want)), out["content_hash"])
			require.Equal(t, int64(len(tc.want)), out["size"])
			require.Equal(t, tc.with["path"], out["path_display"])
			require.Equal(t, false, out["existed"])
			require.Equal(t, 1, f.fake.Count("files/upload"))
			require.Zero(t, f.fake.Count("files/upload_session/start"))
		})
	}
}

// TestUploadIdempotent: with mode add, running the step again with the
// same content returns the file the first run made; different content is
// a conflict, or a renamed file with autorename; overwrite replaces.
func TestUploadIdempotent(t *testing.T) {
	f := newFixture(t)
	with := map[string]any{"path": "/r.txt", "content": "one"}
	first, err := f.run(t, with)
	require.NoError(t, err)
	again, err := f.run(t, with)
	require.NoError(t, err)
	require.Equal(t, true, again["existed"])
	require.Equal(t, first["id"], again["id"])
	require.Equal(t, first["rev"], again["rev"])
	require.Equal(t, 1, f.fake.Count("files/upload"), "the retry uploaded nothing")
	require.Len(t, f.fake.Files(), 1, "no \"r (1).txt\"")

	_, err = f.run(t, map[string]any{"path": "/r.txt", "content": "two"})
	require.Error(t, err)
	ce := connector.Classify(err)
	require.False(t, ce.Retryable)
	require.Contains(t, err.Error(), "path/conflict/file")

	out, err := f.run(t, map[string]any{"path": "/r.txt", "content": "two", "autorename": true})
	require.NoError(t, err)
	require.Equal(t, "/r (1).txt", out["path_display"])

	out, err = f.run(t, map[string]any{"path": "/r.txt", "content": "three", "mode": "overwrite"})
	require.NoError(t, err)
	require.Equal(t, first["id"], out["id"], "the same file, a new revision")
	require.NotEqual(t, first["rev"], out["rev"])
	e, _ := f.fake.File("/r.txt")
	require.Equal(t, "three", string(e.Content))
}

// TestUploadConflictAfterLostAnswer: the upload's answer is lost after
// Dropbox stored the file (a 503 after the work), and the file appears
// between the check and the commit of the retry: the conflict is
// resolved by the content hash, one file.
func TestUploadConflictAfterLostAnswer(t *testing.T) {
	f := newFixture(t)
	f.fake.Fail(dbx.Failure{Endpoint: "files/upload", After: true})
	_, err := f.run(t, map[string]any{"path": "/lost.txt", "content": "payload", "autorename": true})
	require.Error(t, err)
	require.True(t, connector.Classify(err).Retryable)
	out, err := f.run(t, map[string]any{"path": "/lost.txt", "content": "payload", "autorename": true})
	require.NoError(t, err)
	require.Equal(t, true, out["existed"])
	require.Len(t, f.fake.Files(), 1)

	// with autorename and another file at path, the first attempt made
	// "other (1).txt" and lost its answer: the retry finds it
	f.fake.Put("/other.txt", []byte("someone else's"))
	f.fake.Put("/other (1).txt", []byte("yet another"))
	f.fake.Fail(dbx.Failure{Endpoint: "files/upload", After: true})
	_, err = f.run(t, map[string]any{"path": "/other.txt", "content": "mine", "autorename": true})
	require.Error(t, err)
	out, err = f.run(t, map[string]any{"path": "/other.txt", "content": "mine", "autorename": true})
	require.NoError(t, err)
	require.Equal(t, true, out["existed"])
	require.Equal(t, "/other (2).txt", out["path_display"])
	require.Len(t, f.fake.Files(), 4, "no \"other (3).txt\"")

	// the race: get_metadata says not found, then the commit conflicts
	f.fake.Fail(dbx.Failure{Endpoint: "files/get_metadata", Status: http.StatusConflict,
		Body: `{"error_summary":"path/not_found/..","error":{".tag":"path","path":{".tag":"not_found"}}}`})
	f.fake.Put("/race.txt", []byte("same"))
	out, err = f.run(t, map[string]any{"path": "/race.txt", "content": "same"})
	require.NoError(t, err)
	require.Equal(t, true, out["existed"])
}

// TestUploadSession: a file over chunk_size goes through an upload
// session in chunks, streamed from a URL; a failed append (its answer
// lost after Dropbox stored it) and one refused before are resent from
// the offset Dropbox reports; the content hash spans several 4 MiB blocks.
func TestUploadSession(t *testing.T) {
	data := make([]byte, 9*(1<<20)+12345)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Empty(t, r.Header.Get("Authorization"), "no credentials to the content's host")
		_, _ = w.Write(data)
	}))
	defer src.Close()
	tests := []struct {
		name     string
		failures []dbx.Failure
		appends  int // append_v2 calls
	}{
		{"clean", nil, 9},
		{"answer lost after the append was stored", []dbx.Failure{{Endpoint: "files/upload_session/append_v2", Skip: 2, After: true}}, 10},
		{"append refused", []dbx.Failure{{Endpoint: "files/upload_session/append_v2", Skip: 4, Status: http.StatusTooManyRequests,
			Header: http.Header{"Retry-After": {"0"}}}}, 10},
		{"server error twice, start and finish too", []dbx.Failure{
			{Endpoint: "files/upload_session/append_v2", Skip: 1, Times: 2, Status: http.StatusInternalServerError},
			{Endpoint: "files/upload_session/start"},
			{Endpoint: "files/upload_session/finish", After: true}}, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.MaxUpload = 1 << 20
			for _, fl := range tc.failures {
				f.fake.Fail(fl)
			}
			out, err := f.run(t, map[string]any{"path": "/Big/video.bin", "url": src.URL + "/v", "chunk_size": 1 << 20})
			require.NoError(t, err)
			e, ok := f.fake.File("/Big/video.bin")
			require.True(t, ok)
			require.True(t, bytes.Equal(data, e.Content), "the file is the content, byte for byte")
			require.Equal(t, dbx.ContentHash(data), out["content_hash"])
			require.Equal(t, int64(len(data)), out["size"])
			require.Zero(t, f.fake.Count("files/upload"))
			require.Equal(t, tc.appends, f.fake.Count("files/upload_session/append_v2"))
			for _, offs := range f.fake.SessionAppends() {
				if len(offs) < 2 {
					continue // a session whose start's answer was lost
				}
				for i, off := range offs {
					require.Equal(t, int64(i)<<20, off, "each chunk stored once, in order")
				}
			}
			require.Len(t, f.fake.Files(), 1)
		})
	}
	t.Run("a retried step with the same content makes no second file", func(t *testing.T) {
		f := newFixture(t)
		f.fake.MaxUpload = 1 << 20
		for range 2 {
			_, err := f.run(t, map[string]any{"path": "/Big/video.bin", "url": src.URL + "/v", "chunk_size": 1 << 20})
			require.NoError(t, err)
		}
		require.Len(t, f.fake.Files(), 1)
		require.Equal(t, 1, f.fake.Count("files/upload_session/finish"))
	})
	t.Run("an append failing every time fails the step, retryable", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Fail(dbx.Failure{Endpoint: "files/upload_session/append_v2", Times: 100, Status: http.StatusServiceUnavailable})
		_, err := f.run(t, map[string]any{"path": "/Big/video.bin", "url": src.URL + "/v", "chunk_size": 1 << 20})
		require.Error(t, err)
		require.True(t, connector.Classify(err).Retryable)
		require.Equal(t, dropbox.ChunkAttempts, f.fake.Count("files/upload_session/append_v2"))
	})
}

func TestUploadErrors(t *testing.T) {
	tests := []struct {
		name      string
		fail      dbx.Failure
		reason    connector.Reason
		retryable bool
	}{
		{"expired token", dbx.Failure{Endpoint: "files/get_metadata", Status: http.StatusUnauthorized,
			Body: `{"error_summary":"expired_access_token/..","error":{".tag":"expired_access_token"}}`}, connector.ReasonAuth, false},
		{"rate limited", dbx.Failure{Endpoint: "files/upload", Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"7"}},
			Body: `{"error_summary":"too_many_requests/..","error":{"reason":{".tag":"too_many_requests"},"retry_after":7}}`}, connector.ReasonRateLimited, true},
		{"insufficient space", dbx.Failure{Endpoint: "files/upload", Status: http.StatusConflict,
			Body: `{"error_summary":"path/insufficient_space/..","error":{".tag":"path","reason":{".tag":"insufficient_space"}}}`}, connector.ReasonClientError, false},
		{"bad request", dbx.Failure{Endpoint: "files/upload", Status: http.StatusBadRequest}, connector.ReasonClientError, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.Fail(tc.fail)
			_, err := f.run(t, map[string]any{"path": "/e.txt", "content": "x"})
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.retryable, ce.Retryable)
			require.NotContains(t, err.Error(), token)
			if tc.fail.Status == http.StatusTooManyRequests {
				require.Equal(t, "7s", ce.RetryAfter.String())
			}
		})
	}
	t.Run("a url past max_url_bytes", func(t *testing.T) {
		data := make([]byte, 3<<20)
		for _, tc := range []struct {
			name           string
			src            *httptest.Server
			limit, appends int
		}{
			{"its length says so", connectortest.Source(t, data, true), 1000, 0},
			{"its body grows past it", connectortest.Source(t, data, false), 2<<20 + 1, 1}, // the session's first two chunks, then the third read fails
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				_, err := f.run(t, map[string]any{"path": "/Big/video.bin", "url": tc.src.URL + "/v", "chunk_size": 1 << 20, "max_url_bytes": tc.limit})
				require.ErrorContains(t, err, "larger than max_url_bytes")
				ce := connector.Classify(err)
				require.Equal(t, connector.ReasonInvalid, ce.Reason, "%v", err)
				require.False(t, ce.Retryable)
				require.Empty(t, f.fake.Files(), "no file of part of the content")
				require.Zero(t, f.fake.Count("files/upload_session/finish"))
				require.Equal(t, tc.appends, f.fake.Count("files/upload_session/append_v2"))
			})
		}
	})
	t.Run("bad path is refused by the spec", func(t *testing.T) {
		_, err := connectortest.With(dropbox.Upload, map[string]any{"path": "no-slash.txt", "content": "x"})
		require.Error(t, err)
		_, err = connectortest.With(dropbox.Upload, map[string]any{"path": "/a.txt", "content": "x", "url": "https://example.com/"})
		require.Error(t, err)
		_, err = connectortest.With(dropbox.Upload, map[string]any{"path": "/a.txt", "content": "x", "chunk_size": 1000})
		require.Error(t, err)
	})
}

// TestArgHeaderASCII: the Dropbox-API-Arg header escapes what is not
// printable ASCII, and decodes to the same JSON.
func TestArgHeaderASCII(t *testing.T) {
	h, err := dbx.ArgHeader(map[string]any{"path": "/é/✓/😀\x7f\"q\""})
	require.NoError(t, err)
	for _, c := range h {
		require.True(t, c >= 0x20 && c < 0x7f, "%q", h)
	}
	require.Equal(t, `{"path":"/\u00e9/\u2713/\ud83d\ude00\u007f\"q\""}`, h)
	require.Equal(t, fmt.Sprint(strings.Count(h, `\u`)), "5")
}
