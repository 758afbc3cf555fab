package dropbox_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/dropbox"
)

// reference is the content hash as the documentation states it, written
// plainly: the SHA-256 of the concatenated SHA-256s of the 4 MiB blocks.
func reference(b []byte) string {
	var cat []byte
	for len(b) > 0 {
		n := min(len(b), 4<<20)
		s := sha256.Sum256(b[:n])
		cat = append(cat, s[:]...)
		b = b[n:]
	}
	s := sha256.Sum256(cat)
	return hex.EncodeToString(s[:])
}

func TestContentHash(t *testing.T) {
	data := make([]byte, 9<<20+17)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	for _, n := range []int{0, 1, 4<<20 - 1, 4 << 20, 4<<20 + 1, 8 << 20, len(data)} {
		t.Run(hex.EncodeToString([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), func(t *testing.T) {
			want := reference(data[:n])
			require.Equal(t, want, dropbox.ContentHash(data[:n]))
			// written in uneven pieces, and summed midway
			h := dropbox.NewContentHasher()
			for off := 0; off < n; {
				k := min(n-off, 1<<20+333)
				_, _ = h.Write(data[off : off+k])
				off += k
				_ = h.Sum(nil) // no effect on the state
			}
			require.Equal(t, want, h.Hex())
		})
	}
	// the empty content's hash is the SHA-256 of nothing
	require.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", dropbox.ContentHash(nil))
}

func conn(t *testing.T, base string, values connector.Values) *connector.Connection {
	cs, ok := connector.Default.Connection("dropbox")
	require.True(t, ok)
	if values == nil {
		values = connector.Values{"token": "tok-123", "base_url": base}
	}
	c := &connector.Connection{Name: "d", Type: "dropbox", Values: values}
	cl, err := connector.NewClient(c, cs, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	return c
}

func TestCallErrors(t *testing.T) {
	f := dropbox.NewFake("tok-123")
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := conn(t, srv.URL+"/2/", nil)
	ctx := context.Background()

	md, err := dropbox.GetMetadata(ctx, c, "/nothing.txt")
	require.NoError(t, err)
	require.Nil(t, md, "path/not_found is no file, not an error")

	f.Fail(dropbox.Failure{Endpoint: "files/get_metadata", Status: http.StatusConflict,
		Body: `{"error_summary":"path/malformed_path/.","error":{".tag":"path","path":{".tag":"malformed_path"}}}`})
	_, err = dropbox.GetMetadata(ctx, c, "bad")
	ae, ok := dropbox.AsAPIError(err, "path/malformed_path")
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusConflict, ae.Status)
	require.Equal(t, connector.ReasonClientError, connector.Classify(err).Reason)
	require.False(t, connector.Classify(err).Retryable)
	_, ok = dropbox.AsAPIError(err, "path/malformed")
	require.False(t, ok, "tags match whole")

	// an endpoint error's reason, from its summary
	for summary, reason := range map[string]connector.Reason{
		"from_lookup/not_found/..":            connector.ReasonNotFound,
		"lookup_failed/not_found/.":           connector.ReasonNotFound,
		"to/conflict/file/..":                 connector.ReasonConflict,
		"path/conflict/folder/.":              connector.ReasonConflict,
		"path/insufficient_space/..":          connector.ReasonClientError,
		"path/disallowed_name/..":             connector.ReasonClientError,
		"path/not_foundling/.. (no such tag)": connector.ReasonClientError,
	} {
		f.Fail(dropbox.Failure{Endpoint: "files/get_metadata", Status: http.StatusConflict,
			Body: `{"error_summary":"` + summary + `","error":{".tag":"x"}}`})
		_, err = dropbox.GetMetadata(ctx, c, "/x")
		require.Equal(t, reason, connector.Classify(err).Reason, "%s: %v", summary, err)
		require.False(t, connector.Classify(err).Retryable)
	}

	f.Fail(dropbox.Failure{Endpoint: "files/get_metadata", Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"5"}},
		Body: `{"error_summary":"too_many_write_operations/..","error":{"reason":{".tag":"too_many_write_operations"},"retry_after":5}}`})
	_, err = dropbox.GetMetadata(ctx, c, "/x")
	ce := connector.Classify(err)
	require.True(t, ce.Retryable)
	require.Equal(t, connector.ReasonRateLimited, ce.Reason)
	require.Equal(t, "5s", ce.RetryAfter.String())

	bad := conn(t, srv.URL+"/2/", connector.Values{"token": "other", "base_url": srv.URL + "/2/"})
	_, err = dropbox.GetMetadata(ctx, bad, "/x")
	require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason)
	require.Contains(t, err.Error(), "invalid_access_token")
	require.NotContains(t, err.Error(), "other")

	// the offset an upload session reports, directly or under lookup_failed
	for _, body := range []string{
		`{"error_summary":"incorrect_offset/..","error":{".tag":"incorrect_offset","correct_offset":42}}`,
		`{"error_summary":"lookup_failed/incorrect_offset/..","error":{".tag":"lookup_failed","lookup_failed":{".tag":"incorrect_offset","correct_offset":42}}}`,
	} {
		f.Fail(dropbox.Failure{Endpoint: "files/get_metadata", Status: http.StatusConflict, Body: body})
		_, err = dropbox.GetMetadata(ctx, c, "/x")
		var ae *dropbox.APIError
		require.ErrorAs(t, err, &ae)
		off, ok := ae.CorrectOffset()
		require.True(t, ok)
		require.EqualValues(t, 42, off)
	}
	require.Empty(t, f.Problems)
}

func TestContentURL(t *testing.T) {
	tests := []struct {
		values connector.Values
		want   string
	}{
		{connector.Values{}, dropbox.DefaultContentURL},
		{connector.Values{"base_url": "https://api.dropboxapi.com/2/"}, dropbox.DefaultContentURL},
		{connector.Values{"base_url": "http://127.0.0.1:9/2/"}, "http://127.0.0.1:9/2/"},
		{connector.Values{"base_url": "http://127.0.0.1:9/2/", "content_url": "http://127.0.0.1:10/2/"}, "http://127.0.0.1:10/2/"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			require.Equal(t, tc.want, dropbox.ContentURL(&connector.Connection{Values: tc.values}))
		})
	}
}

// TestIdentity: the connection's identity check against the fake.
func TestIdentity(t *testing.T) {
	f := dropbox.NewFake("tok-123")
	srv := httptest.NewServer(f.API())
	defer srv.Close()
	c := conn(t, srv.URL+"/2/", nil)
	id, err := dropbox.Connection.Identity(context.Background(), c.Client, c.Values)
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", id.Account)
	require.Empty(t, f.Problems)
}
