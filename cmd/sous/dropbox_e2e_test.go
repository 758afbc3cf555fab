package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dbx "github.com/sous-run/sous/internal/clients/dropbox"
)

const dropboxToken = "sl.e2e-dropbox-token-0123456789"

// dropboxFake serves the fake's two hosts on two servers.
func dropboxFake(t *testing.T) (f *dbx.Fake, connections string) {
	f = dbx.NewFake(dropboxToken)
	api := httptest.NewServer(f.API())
	content := httptest.NewServer(f.Content())
	t.Cleanup(api.Close)
	t.Cleanup(content.Close)
	return f, fmt.Sprintf(`connections:
  dropbox:
    type: dropbox
    token: %s
    base_url: %s/2/
    content_url: %s/2/
`, dropboxToken, api.URL, content.URL)
}

// TestDropboxUploadThroughServe: webhook.received → dropbox.upload against
// the fake's two hosts; the first upload's answer is lost after Dropbox
// stored the file (a 503), and the retried step finds it by content hash:
// one file, no "(1)"; the run record holds the output.
func TestDropboxUploadThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary")
	}
	f, conns := dropboxFake(t)
	f.Fail(dbx.Failure{Endpoint: "files/upload", After: true})
	recipe := `version: 1
name: web-to-dropbox
trigger: {type: webhook.received, with: {path: /notes}}
steps:
  - id: save
    action: dropbox.upload
    connection: dropbox
    with:
      path: "/Notes/{{ event.body.name }}"
      content: "{{ event.body.text }}"
      autorename: true
    retry: {max_attempts: 3, backoff: constant, initial_interval: 100ms}
`
	s := newServeSetup(t, buildSous(t), map[string]string{"notes.yaml": recipe}, conns)
	c := s.start(t, 1)
	waitReady(t, s.base, c)
	resp, err := http.Post(s.base+"/hooks/notes", "application/json", strings.NewReader(`{"name":"café.txt","text":"agenda: everything"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var runID string
	require.Eventually(t, func() bool {
		rs, err := s.runs("web-to-dropbox")
		if err != nil || len(rs) != 1 || rs[0].Status == "running" || rs[0].Status == "queued" {
			return false
		}
		runID = rs[0].ID
		return true
	}, 30*time.Second, 20*time.Millisecond)

	req, err := http.NewRequest(http.MethodGet, s.base+"/api/v1/runs/"+runID, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	var run struct {
		Status string `json:"status"`
		Record struct {
			Steps []struct {
				ID     string         `json:"id"`
				Status string         `json:"status"`
				Output map[string]any `json:"output"`
			} `json:"steps"`
		} `json:"record"`
	}
	require.NoError(t, json.Unmarshal(raw, &run), "%s", raw)
	require.Len(t, run.Record.Steps, 1, "%s", raw)
	out := run.Record.Steps[0].Output
	e, ok := f.File("/Notes/café.txt")
	require.True(t, ok, "%v", f.SortedPaths())
	require.Equal(t, "agenda: everything", string(e.Content))
	require.Equal(t, e.ID, out["id"])
	require.Equal(t, e.Rev, out["rev"])
	require.Equal(t, "/Notes/café.txt", out["path_display"])
	require.Equal(t, dbx.ContentHash([]byte("agenda: everything")), out["content_hash"])
	require.Equal(t, true, out["existed"], "the retried step found the file its first attempt stored")
	require.Len(t, f.Files(), 1, "no \"café (1).txt\"")
	require.Equal(t, 1, f.Count("files/upload"))
	require.NotContains(t, string(raw), dropboxToken)
	require.Empty(t, f.Problems)
	stopChild(t, c)
}

// TestDropboxPollingSurvivesKill: dropbox.file_changed against the fake
// (pages of 3) while a writer adds and edits files; `sous serve` is killed
// with SIGKILL in the middle and started again: the files there before
// start nothing, and every change after starts one run, none two.
func TestDropboxPollingSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary twice")
	}
	f, conns := dropboxFake(t)
	f.PageSize = 3
	f.MakeFolder("/In")
	for i := range 5 {
		f.Put(fmt.Sprintf("/In/old%d.txt", i), []byte("old"))
	}
	sink := &idSink{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	recipe := `version: 1
name: dropbox-changes
trigger: {type: dropbox.file_changed, connection: dropbox, with: {path: /In, recursive: true, poll_interval: 50ms}}
steps:
  - id: tell
    action: http.request
    connection: sink
    with: {method: POST, url: /hook, json: {id: "{{ event.path_display }}@{{ event.rev }}"}}
`
	conns += fmt.Sprintf("  sink:\n    type: http\n    base_url: %s\n", sinkSrv.URL)
	s := newServeSetup(t, buildSous(t), map[string]string{"changes.yaml": recipe}, conns)
	c := s.start(t, 1)
	waitReady(t, s.base, c)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sous serve:\n%s", c.output())
		}
	})
	require.Eventually(t, func() bool { return f.Count("files/list_folder/get_latest_cursor") > 0 }, 30*time.Second, 10*time.Millisecond,
		"the poller takes its first cursor")

	want := map[string]bool{}
	var wmu sync.Mutex
	write := func(p string, content string) {
		md := f.Put(p, []byte(content))
		wmu.Lock()
		want[md.PathDisplay+"@"+md.Rev] = true
		wmu.Unlock()
	}
	const files = 40
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 2 {
			for i := range files {
				write(fmt.Sprintf("/In/sub%d/f%02d.txt", i%3, i), fmt.Sprintf("round %d", round))
				if i%4 == 0 {
					time.Sleep(3 * time.Millisecond) // spread over the polls
				}
			}
		}
	}()
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d >= files/3 }, 60*time.Second, time.Millisecond)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	<-c.done
	atKill, _ := sink.counts()
	<-done
	require.Less(t, atKill, files*2, "killed in the middle")

	c = s.start(t, 2)
	waitReady(t, s.base, c)
	for i := range 5 {
		write(fmt.Sprintf("/In/late%d.txt", i), "late")
	}
	total := files*2 + 5
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d == total }, 90*time.Second, 10*time.Millisecond,
		"every change reaches the sink after the restart")
	require.Eventually(t, func() bool {
		rs, err := s.runs("dropbox-changes")
		return err == nil && len(rs) == total
	}, 60*time.Second, 20*time.Millisecond)
	stopChild(t, c)

	sink.mu.Lock()
	for k := range sink.seen {
		require.True(t, want[k], "a change the writer made: %s", k)
		require.NotContains(t, k, "old", "the files there before start nothing")
	}
	sink.mu.Unlock()
	db := stoppedStore(t, filepath.Join(s.tmp, "data"))
	requireOnceEach(t, db, "dropbox.file_changed", "dropbox-changes", total)
	requireNoneFailed(t, db)
	require.Equal(t, 1, f.Count("files/list_folder/get_latest_cursor"), "the restart went on from the saved cursor")
	require.Empty(t, f.Problems)
	_, heard := sink.counts()
	t.Logf("killed after %d of %d changes reached the sink; %d requests heard twice (runs in flight at the kill)", atKill, total, heard-total)
}
