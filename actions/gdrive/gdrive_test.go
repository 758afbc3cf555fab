package gdrive_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/actions/gdrive"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/google"
)

const token = "ya29.gdrive-test-token-0123456789"

type fixture struct {
	fake *google.Fake
	conn *connector.Connection
	logs *bytes.Buffer // what the actions logged
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fake := google.NewFake(token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.Empty(t, fake.Problems, "requests the fake refused as malformed") })
	c := &connector.Connection{Name: "google", Type: "google", Values: connector.Values{connector.ConnToken: token, connector.ConnBaseURL: srv.URL + "/"}}
	cl, err := connector.NewClient(c, google.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	return &fixture{fake: fake, conn: c, logs: &bytes.Buffer{}}
}

func (f *fixture) run(t *testing.T, s *connector.Spec, key string, with map[string]any) (map[string]any, error) {
	t.Helper()
	w := connector.Values{}
	for name, v := range with {
		fd, ok := s.Field(name)
		require.True(t, ok, name)
		c, err := fd.CheckValue(v)
		require.NoError(t, err, name)
		w[name] = c
	}
	for _, fd := range s.Fields {
		if _, ok := w[fd.Name]; !ok && fd.Default != nil {
			c, err := fd.CheckValue(fd.Default)
			require.NoError(t, err)
			w[fd.Name] = c
		}
	}
	if s.Validate != nil {
		require.Empty(t, s.Validate(w))
	}
	return s.Action.Run(context.Background(), &connector.Request{Recipe: "r", RunID: "run1", Step: "s", With: w,
		Connection: f.conn, IdempotencyKey: key, Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// source serves n deterministic bytes at /file, streamed, and counts the
// bytes it wrote.
func source(t *testing.T, n int64) (*httptest.Server, []byte) {
	t.Helper()
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = r.Read(data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/file" {
			http.NotFound(w, req)
			return
		}
		if req.Header.Get("Authorization") != "" {
			http.Error(w, "credentials sent to another host", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv, data
}

func TestUploadSmall(t *testing.T) {
	src, data := source(t, 3000)
	tests := []struct {
		name    string
		with    map[string]any
		content []byte
		mime    string
	}{
		{name: "content", with: map[string]any{"name": "a.txt", "content": "hello drive", "folder_id": "fold1", "mime_type": "text/plain"},
			content: []byte("hello drive"), mime: "text/plain"},
		{name: "base64", with: map[string]any{"name": "b.bin", "content_base64": base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255})},
			content: []byte{0, 1, 2, 255}, mime: "application/octet-stream"},
		{name: "url", with: map[string]any{"name": "c.mp4", "url": src.URL + "/file"}, content: data, mime: "video/mp4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			out, err := f.run(t, gdrive.Upload, "run1:"+tc.name, tc.with)
			require.NoError(t, err)
			require.Equal(t, int64(len(tc.content)), out["size"])
			require.Equal(t, md5hex(tc.content), out["md5"])
			require.Equal(t, false, out["existed"])
			require.Equal(t, tc.mime, out["mime_type"])
			require.Contains(t, out["web_view_link"], out["id"])
			file := f.fake.Files()[out["id"].(string)]
			require.Equal(t, tc.content, file.Content)
			if folder, ok := tc.with["folder_id"]; ok {
				require.Equal(t, []string{folder.(string)}, file.Parents)
			}
			rec := f.fake.Recorded()
			require.Len(t, rec, 2, "a search for an earlier attempt, then one upload")
			require.Equal(t, "/drive/v3/files", rec[0].Path)
			require.Equal(t, "/upload/drive/v3/files", rec[1].Path)
			require.Contains(t, rec[1].Query, "uploadType=multipart", "a small file goes in one request")

			// the step retried: the file is found, not uploaded again
			again, err := f.run(t, gdrive.Upload, "run1:"+tc.name, tc.with)
			require.NoError(t, err)
			require.Equal(t, out["id"], again["id"])
			require.Equal(t, true, again["existed"])
			require.Len(t, f.fake.Files(), 1)
		})
	}
}

// TestUploadResumable: a 20 MB upload uses the resumable protocol, and
// a chunk that fails with 503 is sent again, not the file: no byte range
// goes twice but the failed chunk's.
func TestUploadResumable(t *testing.T) {
	const size = 20_000_000
	const chunk = 4 << 20
	src, data := source(t, size)
	f := newFixture(t)
	failed := "bytes " + strconv.Itoa(2*chunk) + "-"
	f.fake.Fail(google.Failure{Path: "/upload/drive/v3/files", Query: "upload_id=", Range: failed, Status: http.StatusServiceUnavailable})
	out, err := f.run(t, gdrive.Upload, "run1:big", map[string]any{"name": "big.mp4", "url": src.URL + "/file", "chunk_size": chunk})
	require.NoError(t, err)
	require.Equal(t, int64(size), out["size"])
	require.Equal(t, md5hex(data), out["md5"])
	require.Equal(t, data, f.fake.Files()[out["id"].(string)].Content)

	var starts int
	sent := map[string]int{}
	var order []string
	for _, r := range f.fake.Recorded() {
		if r.Path != "/upload/drive/v3/files" {
			continue
		}
		require.Contains(t, r.Query, "uploadType=resumable", "not multipart")
		if !strings.Contains(r.Query, "upload_id=") {
			starts++
			continue
		}
		sent[r.ContentRange]++
		order = append(order, r.ContentRange+" "+strconv.Itoa(r.Status))
	}
	require.Equal(t, 1, starts, "one session: the upload was not restarted")
	require.Len(t, sent, 5, "five chunks: %v", order)
	for rng, n := range sent {
		if strings.HasPrefix(rng, failed) {
			require.Equal(t, 2, n, "the failed chunk is sent again: %v", order)
			continue
		}
		require.Equal(t, 1, n, "range %s sent %d times: %v", rng, n, order)
	}
	for _, ranges := range f.fake.UploadRanges() {
		require.Equal(t, [][2]int64{{0, chunk - 1}, {chunk, 2*chunk - 1}, {2 * chunk, 3*chunk - 1}, {3 * chunk, 4*chunk - 1}, {4 * chunk, size - 1}}, ranges,
			"each byte stored once, in order")
	}
	t.Logf("chunks: %v", order)
}

func TestUploadErrors(t *testing.T) {
	src, _ := source(t, 10)
	t.Run("the url answers 404", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.run(t, gdrive.Upload, "k", map[string]any{"name": "x", "url": src.URL + "/nope?sig=secret"})
		require.Error(t, err)
		require.NotContains(t, err.Error(), "secret", "the URL's query is not in the error")
		require.False(t, connector.Classify(err).Retryable, "a 404 is permanent")
		require.Empty(t, f.fake.Files())
	})
	t.Run("a url past max_url_bytes", func(t *testing.T) {
		chunked := connectortest.Source(t, make([]byte, 1<<20), false)
		for _, tc := range []struct {
			name, url string
			limit     int
			chunks    int // chunks sent before the body passed the limit
		}{
			{"its length says so", src.URL + "/file", 5, 0},                   // 10 bytes
			{"its body grows past it", chunked.URL + "/stream", 600 << 10, 2}, // 1 MiB
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				_, err := f.run(t, gdrive.Upload, "k", map[string]any{"name": "x", "url": tc.url,
					"chunk_size": gdrive.MinChunkSize, "max_url_bytes": tc.limit})
				require.ErrorContains(t, err, "larger than max_url_bytes")
				ce := connector.Classify(err)
				require.Equal(t, connector.ReasonInvalid, ce.Reason, "%v", err)
				require.False(t, ce.Retryable)
				require.Empty(t, f.fake.Files(), "no file of part of the content")
				var chunks int
				for _, r := range f.fake.Recorded() {
					if strings.Contains(r.Query, "upload_id=") {
						chunks++
					}
				}
				require.Equal(t, tc.chunks, chunks)
			})
		}
	})
	t.Run("no content", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.run(t, gdrive.Upload, "k", map[string]any{"name": "x"})
		require.ErrorContains(t, err, "exactly one of content")
		require.False(t, connector.Classify(err).Retryable)
	})
	t.Run("two contents refused at load", func(t *testing.T) {
		errs := gdrive.Upload.Validate(connector.Values{"content": "a", "url": "http://x/"})
		require.Len(t, errs, 1)
	})
	t.Run("a 503 on a small upload is retryable", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Fail(google.Failure{Path: "/upload/drive/v3/files", Status: 503})
		_, err := f.run(t, gdrive.Upload, "k", map[string]any{"name": "x", "content": "y"})
		ce := connector.Classify(err)
		require.True(t, ce.Retryable)
		require.Equal(t, connector.ReasonServerError, ce.Reason)
		require.Empty(t, f.fake.Files())
	})
	for _, status := range []int{http.StatusNotFound, http.StatusServiceUnavailable} {
		t.Run("the lookup for an earlier attempt answers "+strconv.Itoa(status), func(t *testing.T) {
			f := newFixture(t)
			f.fake.Fail(google.Failure{Method: http.MethodGet, Path: "/drive/v3/files", Status: status})
			out, err := f.run(t, gdrive.Upload, "k", map[string]any{"name": "x", "content": "y"})
			require.NoError(t, err, "the lookup is best effort")
			require.Equal(t, false, out["existed"])
			require.Equal(t, []byte("y"), f.fake.Files()[out["id"].(string)].Content)
			rec := f.fake.Recorded()
			require.Len(t, rec, 2, "the lookup, then the upload")
			require.Equal(t, http.MethodGet, rec[0].Method)
			require.Equal(t, "/upload/drive/v3/files", rec[1].Path)
			require.Contains(t, f.logs.String(), "level=WARN")
			require.Contains(t, f.logs.String(), "earlier upload not looked up")
		})
	}
	t.Run("the lookup refused for auth fails the step", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Fail(google.Failure{Method: http.MethodGet, Path: "/drive/v3/files", Status: http.StatusUnauthorized})
		_, err := f.run(t, gdrive.Upload, "k", map[string]any{"name": "x", "content": "y"})
		require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason, "%v", err)
		require.Len(t, f.fake.Recorded(), 1, "no upload: it would be refused too")
	})
	t.Run("chunk size", func(t *testing.T) {
		fd, _ := gdrive.Upload.Field("chunk_size")
		_, err := fd.CheckValue(1000)
		require.ErrorContains(t, err, "multiple of 262144")
	})
}

func TestCreateFolder(t *testing.T) {
	f := newFixture(t)
	out, err := f.run(t, gdrive.CreateFolder, "k1", map[string]any{"name": "Bob's recordings"})
	require.NoError(t, err)
	require.Equal(t, false, out["existed"])
	folder := f.fake.Files()[out["id"].(string)]
	require.Equal(t, gdrive.FolderMimeType, folder.MimeType)
	require.Equal(t, []string{"root"}, folder.Parents)

	again, err := f.run(t, gdrive.CreateFolder, "k2", map[string]any{"name": "Bob's recordings"})
	require.NoError(t, err)
	require.Equal(t, out["id"], again["id"], "found by name, not made twice")
	require.Equal(t, true, again["existed"])

	other, err := f.run(t, gdrive.CreateFolder, "k3", map[string]any{"name": "Bob's recordings", "folder_id": out["id"]})
	require.NoError(t, err)
	require.NotEqual(t, out["id"], other["id"], "the same name in another parent is another folder")
	require.Equal(t, []string{out["id"].(string)}, f.fake.Files()[other["id"].(string)].Parents)

	var queries []string
	for _, r := range f.fake.Recorded() {
		if r.Method == http.MethodGet {
			queries = append(queries, r.Query)
		}
	}
	require.Len(t, queries, 3)
	require.Contains(t, queries[0], "q=name+%3D+%27Bob%5C%27s+recordings%27", "the quote is escaped")
}

func TestShare(t *testing.T) {
	f := newFixture(t)
	up, err := f.run(t, gdrive.Upload, "k1", map[string]any{"name": "a.txt", "content": "x"})
	require.NoError(t, err)
	id := up["id"].(string)
	out, err := f.run(t, gdrive.Share, "k2", map[string]any{"file_id": id, "email": "ada@example.com", "role": "writer", "send_notification": true, "message": "hi"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"permission_id": out["permission_id"], "file_id": id, "role": "writer", "type": "user",
		"web_view_link": up["web_view_link"]}, out)
	rec := f.fake.Recorded()
	var create google.Recorded
	for _, r := range rec {
		if strings.HasSuffix(r.Path, "/permissions") {
			create = r
		}
	}
	require.Contains(t, create.Query, "sendNotificationEmail=true")
	require.Contains(t, create.Query, "emailMessage=hi")

	out, err = f.run(t, gdrive.Share, "k3", map[string]any{"file_id": id, "anyone": true})
	require.NoError(t, err)
	require.Equal(t, "anyone", out["type"])
	require.Equal(t, "reader", out["role"])
	require.Len(t, f.fake.Permissions(id), 2)

	_, err = f.run(t, gdrive.Share, "k4", map[string]any{"file_id": "nofile", "anyone": true})
	require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason)
	_, err = f.run(t, gdrive.Share, "k5", map[string]any{"file_id": id})
	require.ErrorContains(t, err, "set email")
}

// TestShareTypeAnyone: type: anyone (Drive's permission type) shares with
// anyone who has the link, as anyone: true does; with an email it is
// refused at load.
func TestShareTypeAnyone(t *testing.T) {
	for _, tc := range []struct {
		name string
		with map[string]any
	}{
		{"type anyone", map[string]any{"type": "anyone"}},
		{"type anyone with a role", map[string]any{"type": "anyone", "role": "commenter"}},
		{"both spellings", map[string]any{"anyone": true, "type": "anyone"}},
	} {
		with := tc.with
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			up, err := f.run(t, gdrive.Upload, "k1", map[string]any{"name": "a.txt", "content": "x"})
			require.NoError(t, err)
			id := up["id"].(string)
			with["file_id"] = id
			out, err := f.run(t, gdrive.Share, "k2", with)
			require.NoError(t, err)
			role := "reader"
			if r, ok := with["role"]; ok {
				role = r.(string)
			}
			require.Equal(t, "anyone", out["type"])
			require.Equal(t, role, out["role"])
			perms := f.fake.Permissions(id)
			require.Len(t, perms, 1)
			require.Equal(t, "anyone", perms[0].Type)
			require.Empty(t, perms[0].EmailAddress)
		})
	}
	t.Run("with an email, refused at load", func(t *testing.T) {
		errs := gdrive.Share.Validate(connector.Values{"file_id": "f", "type": "anyone", "email": "ada@example.com"})
		require.Len(t, errs, 1)
		require.Equal(t, "type", errs[0].Field)
	})
	t.Run("type is checked against its enum", func(t *testing.T) {
		fd, ok := gdrive.Share.Field("type")
		require.True(t, ok)
		_, err := fd.CheckValue("anyone")
		require.NoError(t, err)
		_, err = fd.CheckValue("everyone")
		require.Error(t, err)
	})
}
