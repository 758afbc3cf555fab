package dropbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	dbx "github.com/sous-run/sous/internal/clients/dropbox"
	"github.com/sous-run/sous/triggers/dropbox"
)

const token = "sl.poll-token-0123456789"

type poller struct {
	t      *testing.T
	fake   *dbx.Fake
	conn   *connector.Connection
	with   connector.Values
	cursor json.RawMessage
}

func newPoller(t *testing.T, with map[string]any) *poller {
	f := dbx.NewFake(token)
	srv := httptest.NewServer(f.API()) // the trigger calls the RPC host only
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.Empty(t, f.Problems) })
	cs, ok := connector.Default.Connection("dropbox")
	require.True(t, ok)
	c := &connector.Connection{Name: "dbx", Type: "dropbox", Values: connector.Values{"token": token, "base_url": srv.URL + "/2/"}}
	cl, err := connector.NewClient(c, cs, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	w, err := connectortest.With(dropbox.FileChanged, with)
	require.NoError(t, err)
	return &poller{t: t, fake: f, conn: c, with: w}
}

// poll polls once, keeping the cursor as the engine would.
func (p *poller) poll() (*connector.PollResult, error) {
	res, err := dropbox.FileChanged.Trigger.Poller.Poll(context.Background(), &connector.PollRequest{Type: dropbox.FileChanged.ID,
		With: p.with, Connection: p.conn, Cursor: p.cursor})
	if err == nil && res.Next != nil {
		p.cursor = res.Next
	}
	return res, err
}

// drain polls until More is false and returns the events.
func (p *poller) drain() []connector.Event {
	p.t.Helper()
	var evs []connector.Event
	for range 1000 {
		res, err := p.poll()
		require.NoError(p.t, err)
		evs = append(evs, res.Events...)
		if !res.More {
			return evs
		}
	}
	p.t.Fatal("More for ever")
	return nil
}

func paths(evs []connector.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Payload["tag"].(string)+" "+e.Payload["path_display"].(string))
	}
	return out
}

func TestFirstPollReplaysNothing(t *testing.T) {
	p := newPoller(t, map[string]any{"path": "/In"})
	p.fake.MakeFolder("/In")
	p.fake.Put("/In/old.txt", []byte("old"))
	res, err := p.poll()
	require.NoError(t, err)
	require.Empty(t, res.Events)
	require.NotNil(t, res.Next)
	require.Equal(t, 1, p.fake.Count("files/list_folder/get_latest_cursor"))
	require.Empty(t, p.drain(), "nothing changed since")
	md := p.fake.Put("/In/new.txt", []byte("new"))
	evs := p.drain()
	require.Equal(t, []string{"file /In/new.txt"}, paths(evs))
	require.Equal(t, "file:"+md.ID+":"+md.Rev, evs[0].DedupKey)
	pl := evs[0].Payload
	require.Equal(t, md.ID, pl["id"])
	require.Equal(t, "new.txt", pl["name"])
	require.Equal(t, "/in/new.txt", pl["path_lower"])
	require.Equal(t, int64(3), pl["size"])
	require.Equal(t, dbx.ContentHash([]byte("new")), pl["content_hash"])
	require.Equal(t, md.ServerModified, pl["server_modified"])
	require.NoError(t, connectortest.Conforms(dropbox.FileChanged.Shape, pl), "the payload has the declared shape")
}

func TestPaging(t *testing.T) {
	p := newPoller(t, map[string]any{"path": ""})
	p.fake.PageSize = 2
	_, err := p.poll()
	require.NoError(t, err)
	var want []string
	for i := range 7 {
		p.fake.Put(fmt.Sprintf("/f%d.txt", i), []byte{byte(i)})
		want = append(want, fmt.Sprintf("file /f%d.txt", i))
	}
	var got []string
	polls := 0
	for {
		res, err := p.poll()
		require.NoError(t, err)
		polls++
		require.LessOrEqual(t, len(res.Events), 2)
		got = append(got, paths(res.Events)...)
		if !res.More {
			break
		}
	}
	require.Equal(t, want, got, "each once, oldest first")
	require.Equal(t, 4, polls, "a page a poll, has_more polling again")
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want []string
	}{
		{"files only", map[string]any{"path": "/In"}, []string{"file /In/a.txt", "file /In/a.txt"}},
		{"recursive", map[string]any{"path": "/In", "recursive": true}, []string{"file /In/a.txt", "file /In/Sub/b.txt", "file /In/a.txt"}},
		{"folders and deletions", map[string]any{"path": "/In", "include_folders": true, "include_deleted": true},
			[]string{"folder /In/Sub", "file /In/a.txt", "file /In/a.txt", "deleted /In/a.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPoller(t, tc.with)
			p.fake.MakeFolder("/In")
			p.fake.MakeFolder("/Other")
			_, err := p.poll()
			require.NoError(t, err)
			p.fake.MakeFolder("/In/Sub")
			p.fake.Put("/In/a.txt", []byte("1"))
			p.fake.Put("/In/Sub/b.txt", []byte("2"))
			p.fake.Put("/Other/c.txt", []byte("3"))
			p.fake.Put("/In/a.txt", []byte("edited"))
			p.fake.Delete("/In/a.txt")
			evs := p.drain()
			require.Equal(t, tc.want, paths(evs))
			keys := map[string]bool{}
			for _, e := range evs {
				require.False(t, keys[e.DedupKey], "distinct keys: %s", e.DedupKey)
				keys[e.DedupKey] = true
			}
		})
	}
}

func TestResetReseeds(t *testing.T) {
	p := newPoller(t, map[string]any{})
	_, err := p.poll()
	require.NoError(t, err)
	p.fake.Put("/a.txt", []byte("a"))
	p.fake.Reset()
	res, err := p.poll()
	require.NoError(t, err)
	require.Empty(t, res.Events, "a reset starts from the present, replaying nothing")
	require.Equal(t, 2, p.fake.Count("files/list_folder/get_latest_cursor"))
	p.fake.Put("/b.txt", []byte("b"))
	require.Equal(t, []string{"file /b.txt"}, paths(p.drain()))
}

func TestPollErrors(t *testing.T) {
	tests := []struct {
		name      string
		fail      dbx.Failure
		reason    connector.Reason
		retryable bool
	}{
		{"rate limited", dbx.Failure{Endpoint: "files/list_folder/continue", Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3"}},
			Body: `{"error_summary":"too_many_requests/..","error":{"reason":{".tag":"too_many_requests"},"retry_after":3}}`}, connector.ReasonRateLimited, true},
		{"expired token", dbx.Failure{Endpoint: "files/list_folder/continue", Status: http.StatusUnauthorized,
			Body: `{"error_summary":"expired_access_token/..","error":{".tag":"expired_access_token"}}`}, connector.ReasonAuth, false},
		{"folder gone", dbx.Failure{Endpoint: "files/list_folder/continue", Status: http.StatusConflict,
			Body: `{"error_summary":"path/not_found/...","error":{".tag":"path","path":{".tag":"not_found"}}}`}, connector.ReasonNotFound, false},
		{"server error", dbx.Failure{Endpoint: "files/list_folder/continue", Status: http.StatusInternalServerError}, connector.ReasonServerError, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPoller(t, map[string]any{})
			_, err := p.poll()
			require.NoError(t, err)
			saved := p.cursor
			p.fake.Fail(tc.fail)
			_, err = p.poll()
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.retryable, ce.Retryable)
			require.NotContains(t, err.Error(), token)
			require.Equal(t, saved, p.cursor)
			if tc.fail.Status == http.StatusTooManyRequests {
				require.Equal(t, "3s", ce.RetryAfter.String())
			}
			p.fake.Put("/after.txt", []byte("x"))
			require.Equal(t, []string{"file /after.txt"}, paths(p.drain()), "the next poll goes on from the saved cursor")
		})
	}
}

// TestChangesDuringPolling: a writer adds files while the poller polls
// (pages of 3): each file is reported once.
func TestChangesDuringPolling(t *testing.T) {
	p := newPoller(t, map[string]any{"recursive": true})
	p.fake.PageSize = 3
	_, err := p.poll()
	require.NoError(t, err)
	const n = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			p.fake.Put(fmt.Sprintf("/w/%03d.txt", i), []byte(fmt.Sprint(i)))
		}
	}()
	seen := map[string]int{}
	for len(seen) < n {
		res, err := p.poll()
		require.NoError(t, err)
		for _, e := range res.Events {
			seen[e.Payload["path_display"].(string)]++
		}
	}
	wg.Wait()
	seen2 := p.drain()
	require.Empty(t, seen2)
	for k, c := range seen {
		require.Equal(t, 1, c, k)
	}
	require.Len(t, seen, n)
}

func FuzzParsePage(f *testing.F) {
	f.Add([]byte(`{"entries":[{".tag":"file","id":"id:a","name":"a","path_lower":"/a","path_display":"/a","size":3,"rev":"015","content_hash":"x"},{".tag":"deleted","name":"b","path_lower":"/b"}],"cursor":"AAH","has_more":true}`))
	f.Add([]byte(`{"entries":null,"cursor":""}`))
	f.Add([]byte(`{"entries":[{".tag":"folder"},{".tag":7}],"cursor":"c"}`))
	f.Add([]byte(`[]`))
	with := connector.Values{"include_deleted": true, "include_folders": true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pg, err := dropbox.ParsePage(raw)
		if err != nil {
			return
		}
		require.NotEmpty(t, pg.Cursor)
		for _, e := range pg.Events(with, "from") {
			require.NotEmpty(t, e.DedupKey)
			require.Contains(t, []string{"file", "folder", "deleted"}, e.Payload["tag"])
		}
	})
}
