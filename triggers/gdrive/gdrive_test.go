package gdrive

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/google"
)

const token = "ya29.gdrive-trigger-token-0123456789"

type fixture struct {
	fake   *google.Fake
	conn   *connector.Connection
	with   connector.Values
	cursor json.RawMessage
}

func newFixture(t *testing.T, with connector.Values) *fixture {
	t.Helper()
	fake := google.NewFake(token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.Empty(t, fake.Problems, "requests the fake refused as malformed") })
	c := &connector.Connection{Name: "google", Type: "google", Values: connector.Values{connector.ConnToken: token, connector.ConnBaseURL: srv.URL + "/"}}
	cl, err := connector.NewClient(c, google.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	if with == nil {
		with = connector.Values{}
	}
	return &fixture{fake: fake, conn: c, with: with}
}

func (f *fixture) poll(t *testing.T) (*connector.PollResult, error) {
	t.Helper()
	res, err := Poll(context.Background(), &connector.PollRequest{Type: FileCreated.ID, With: f.with, Connection: f.conn, Cursor: f.cursor})
	if err == nil && res.Next != nil {
		f.cursor = res.Next
	}
	return res, err
}

// drain polls until a poll asks for no more, and returns the events'
// file names, in order, and how many polls it took.
func (f *fixture) drain(t *testing.T) (names []string, polls int) {
	t.Helper()
	for {
		res, err := f.poll(t)
		require.NoError(t, err)
		polls++
		for _, ev := range res.Events {
			require.Equal(t, ev.Payload["id"], ev.DedupKey)
			names = append(names, ev.Payload["name"].(string))
		}
		if !res.More {
			return names, polls
		}
		require.Less(t, polls, 100, "the poller asks for more forever")
	}
}

func (f *fixture) changeQueries(t *testing.T, n int) []url.Values {
	t.Helper()
	var out []url.Values
	for _, r := range f.fake.Recorded()[n:] {
		if r.Method == http.MethodGet && r.Path == "/drive/v3/changes" {
			q, err := url.ParseQuery(r.Query)
			require.NoError(t, err)
			out = append(out, q)
		}
	}
	return out
}

func setClock(t *testing.T, at *time.Time) {
	t.Helper()
	old := now
	now = func() time.Time { return *at }
	t.Cleanup(func() { now = old })
}

// TestSeedAndNewFiles: the first poll takes the start page token and
// starts nothing (the files already there are not replayed); files made
// later start one event each, over pages (nextPageToken followed,
// newStartPageToken kept, the fields mask sent); a later poll finds
// nothing; trashed, removed, and edited older files start nothing.
func TestSeedAndNewFiles(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.MaxPage = 2
	old := f.fake.NewFile("old.txt", "text/plain", nil, []byte("old"))
	res, err := f.poll(t)
	require.NoError(t, err)
	require.Empty(t, res.Events)
	require.False(t, res.More)
	rec := f.fake.Recorded()
	require.Len(t, rec, 1)
	require.Equal(t, "/drive/v3/changes/startPageToken", rec[0].Path)

	clock := time.Now().UTC()
	setClock(t, &clock)
	f.fake.NewFile("a.txt", "text/plain", nil, []byte("a"))
	f.fake.NewFile("b.pdf", "application/pdf", []string{"folder1"}, []byte("b"))
	trashed := f.fake.NewFile("trashed.txt", "text/plain", nil, nil)
	f.fake.TrashFile(trashed.Id)
	removed := f.fake.NewFile("removed.txt", "text/plain", nil, nil)
	f.fake.RemoveFile(removed.Id)
	f.fake.TrashFile(old.Id) // a change of an old file
	f.fake.NewFile("c.txt", "text/plain", nil, []byte("c"))
	n := len(f.fake.Recorded())
	clock = clock.Add(2 * time.Minute)
	names, polls := f.drain(t)
	require.Equal(t, []string{"a.txt", "b.pdf", "c.txt"}, names)
	require.Equal(t, 4, polls, "eight changes, two a page")
	qs := f.changeQueries(t, n)
	require.Len(t, qs, 4)
	for i, q := range qs {
		require.Equal(t, string(ChangeFields), q.Get("fields"))
		require.Equal(t, "100", q.Get("pageSize"))
		require.NotEmpty(t, q.Get("pageToken"))
		if i > 0 {
			require.NotEqual(t, qs[i-1].Get("pageToken"), q.Get("pageToken"), "nextPageToken followed")
		}
	}
	var cur cursor
	require.NoError(t, json.Unmarshal(f.cursor, &cur))
	require.True(t, cur.Started.IsZero())

	clock = clock.Add(2 * time.Minute)
	n = len(f.fake.Recorded())
	names, _ = f.drain(t)
	require.Empty(t, names, "nothing new")
	require.Equal(t, cur.PageToken, f.changeQueries(t, n)[0].Get("pageToken"), "the newStartPageToken kept")
}

// TestFilters: folder_id and mime_type.
func TestFilters(t *testing.T) {
	for _, tc := range []struct {
		name string
		with connector.Values
		want []string
	}{
		{"all", nil, []string{"a.pdf", "b.txt", "c.pdf", "d.pdf"}},
		{"folder", connector.Values{FieldFolderID: "inbox"}, []string{"a.pdf", "b.txt", "d.pdf"}},
		{"type", connector.Values{FieldMimeType: "application/pdf"}, []string{"a.pdf", "c.pdf", "d.pdf"}},
		{"both", connector.Values{FieldFolderID: "inbox", FieldMimeType: "application/pdf"}, []string{"a.pdf", "d.pdf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.with)
			_, _ = f.drain(t)
			f.fake.NewFile("a.pdf", "application/pdf", []string{"inbox"}, []byte("a"))
			f.fake.NewFile("b.txt", "text/plain", []string{"inbox"}, []byte("b"))
			f.fake.NewFile("c.pdf", "application/pdf", []string{"other"}, []byte("c"))
			f.fake.NewFile("d.pdf", "application/pdf", []string{"other", "inbox"}, []byte("d"))
			names, _ := f.drain(t)
			require.Equal(t, tc.want, names)
		})
	}
}

// TestCursorAcrossCrash: a poll repeated from the same cursor (a crash
// before its events were saved) gives the same events, with the same
// keys.
func TestCursorAcrossCrash(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.MaxPage = 1
	_, _ = f.drain(t)
	f.fake.NewFile("a.txt", "text/plain", nil, nil)
	f.fake.NewFile("b.txt", "text/plain", nil, nil)
	res1, err := f.poll(t)
	require.NoError(t, err)
	require.True(t, res1.More)
	saved := f.cursor
	res2, err := f.poll(t)
	require.NoError(t, err)
	f.cursor = saved // the second page's events were lost
	res3, err := f.poll(t)
	require.NoError(t, err)
	require.Equal(t, res2.Events[0].DedupKey, res3.Events[0].DedupKey)
	require.NotEqual(t, res1.Events[0].DedupKey, res3.Events[0].DedupKey)
}

// TestErrors: 429 with Retry-After is retryable; 401 is auth; a bad
// cursor is refused; the cursor stays where it was.
func TestErrors(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Fail(google.Failure{Method: http.MethodGet, Path: "/startPageToken", Status: http.StatusServiceUnavailable})
	_, err := f.poll(t)
	var ce *connector.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.True(t, ce.Retryable)
	require.Nil(t, f.cursor)
	_, _ = f.drain(t)
	before := string(f.cursor)
	f.fake.Fail(google.Failure{Method: http.MethodGet, Path: "/changes", Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"9"}}})
	_, err = f.poll(t)
	require.True(t, errors.As(err, &ce), "%v", err)
	require.True(t, ce.Retryable)
	require.Equal(t, connector.ReasonRateLimited, ce.Reason)
	require.Equal(t, 9*time.Second, ce.RetryAfter)
	require.Equal(t, before, string(f.cursor))

	f.fake.Fail(google.Failure{Method: http.MethodGet, Path: "/changes", Status: http.StatusUnauthorized})
	_, err = f.poll(t)
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, connector.ReasonAuth, ce.Reason)
	require.NotContains(t, err.Error(), token)

	for _, bad := range []string{`{"since":7}`, `{}`, `[]`} {
		_, err = Poll(context.Background(), &connector.PollRequest{With: f.with, Connection: f.conn, Cursor: json.RawMessage(bad)})
		require.True(t, errors.As(err, &ce), "%s: %v", bad, err)
		require.Equal(t, connector.ReasonInvalid, ce.Reason)
	}
}

// TestFieldsMaskMatters: without nextPageToken in the mask, Google's
// partial response would drop it: the fake answers as Google does, so
// the poller's mask is what keeps the tokens.
func TestFieldsMaskMatters(t *testing.T) {
	f := newFixture(t, nil)
	_, _ = f.drain(t)
	svc, err := google.Drive(context.Background(), f.conn)
	require.NoError(t, err)
	var cur cursor
	require.NoError(t, json.Unmarshal(f.cursor, &cur))
	page, err := svc.Changes.List(cur.PageToken).Fields("changes(fileId)").Do()
	require.NoError(t, err)
	require.Empty(t, page.NewStartPageToken)
	page, err = svc.Changes.List(cur.PageToken).Fields(ChangeFields).Do()
	require.NoError(t, err)
	require.NotEmpty(t, page.NewStartPageToken)
}

// TestPayload: every field of the event's shape, from Drive's JSON.
func TestPayload(t *testing.T) {
	raw := `{"fileId":"f1","removed":false,"time":"2026-03-01T09:00:01.000Z","file":{"id":"f1","name":"report.pdf",
	"mimeType":"application/pdf","parents":["inbox"],"createdTime":"2026-03-01T09:00:00.000Z","modifiedTime":"2026-03-01T09:00:00.500Z",
	"size":"1234","md5Checksum":"abc","webViewLink":"https://drive.google.com/file/d/f1/view","trashed":false,
	"owners":[{"emailAddress":"ada@example.com","displayName":"Ada"}]}}`
	got, err := ParseChange("inbox", []byte(raw))
	require.NoError(t, err)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.NoError(t, connectortest.Conforms(FileShape, got), "the payload matches the declared shape")
	require.JSONEq(t, `{"id":"f1","name":"report.pdf","mime_type":"application/pdf","parents":["inbox"],"folder_id":"inbox",
	"created_time":"2026-03-01T09:00:00.000Z","modified_time":"2026-03-01T09:00:00.500Z","size":1234,"md5":"abc",
	"web_view_link":"https://drive.google.com/file/d/f1/view","owners":[{"email":"ada@example.com","display_name":"Ada"}],
	"change_time":"2026-03-01T09:00:01.000Z"}`, string(b))
	require.Len(t, got, len(FileShape.Props))
	for _, bad := range []string{``, `{}`, `{"removed":true,"fileId":"x"}`, `{"file":{"id":7}}`, `{"file":{"name":"x"}}`} {
		_, err := ParseChange("", []byte(bad))
		require.Error(t, err, bad)
	}
}

// FuzzParseChange: any bytes give a payload or an error, never a panic;
// a payload carries the file id and every key of the shape.
func FuzzParseChange(f *testing.F) {
	f.Add([]byte(`{"file":{"id":"f","parents":null,"owners":[null,{}],"size":"12"}}`))
	f.Add([]byte(`{"file":{"id":"f","size":"x"}}`))
	f.Add([]byte(`nope`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseChange("folder", raw)
		if err != nil {
			return
		}
		require.NotEmpty(t, got["id"])
		for _, pr := range FileShape.Props {
			require.Contains(t, got, pr.Name)
		}
		_, err = json.Marshal(got)
		require.NoError(t, err)
		require.NoError(t, connectortest.Conforms(FileShape, got))
	})
}
