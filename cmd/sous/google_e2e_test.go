package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/clients/google"
)

const googleToken = "ya29.e2e-google-token-0123456789"

// TestGoogleE2E: through a real `sous serve`, a webhook starts a recipe
// that creates a calendar event (the first insert answered 503 after
// Google made it: the retried step finds it, one event), and another that
// makes a Drive folder and uploads a file into it; each run record holds
// the actions' output.
func TestGoogleE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	fake := google.NewFake(googleToken)
	fake.Fail(google.Failure{Method: http.MethodPost, Path: "/events", Status: http.StatusServiceUnavailable, After: true})
	api := httptest.NewServer(fake)
	defer api.Close()
	recipeFiles := map[string]string{
		"meeting.yaml": `version: 1
name: meeting
trigger: {type: webhook.received, with: {path: /meetings}}
filter: event.body.kind == "meeting"
steps:
  - id: create
    action: gcal.create_event
    connection: google
    with:
      summary: "{{ event.body.title }}"
      start: "{{ event.body.start }}"
      end: "{{ event.body.end }}"
      attendees: ["ada@example.com"]
      conference: true
    retry: {max_attempts: 3, backoff: constant, initial_interval: 100ms}
`,
		"filing.yaml": `version: 1
name: filing
trigger: {type: webhook.received, with: {path: /files}}
steps:
  - id: folder
    action: gdrive.create_folder
    connection: google
    with: {name: "{{ event.body.folder }}"}
  - id: upload
    action: gdrive.upload
    connection: google
    with:
      folder_id: "{{ steps.folder.output.id }}"
      name: "{{ event.body.name }}"
      content: "{{ event.body.text }}"
      mime_type: text/plain
  - id: share
    action: gdrive.share
    connection: google
    with: {file_id: "{{ steps.upload.output.id }}", anyone: true}
`,
	}
	srv := svcStart(t, []string{"E2E_GOOGLE_TOKEN=" + googleToken},
		fmt.Sprintf("  google: {type: google, token: \"${E2E_GOOGLE_TOKEN}\", base_url: %s/}\n", api.URL), recipeFiles)

	code, body := svcPost(t, srv.base+"/hooks/meetings", http.Header{"Content-Type": {"application/json"}},
		[]byte(`{"kind":"meeting","title":"Planning","start":"2026-03-02T10:00:00Z","end":"2026-03-02T11:00:00Z"}`))
	require.Equal(t, http.StatusAccepted, code, body)
	code, body = svcPost(t, srv.base+"/hooks/files", http.Header{"Content-Type": {"application/json"}},
		[]byte(`{"folder":"Notes","name":"planning.txt","text":"agenda: everything"}`))
	require.Equal(t, http.StatusAccepted, code, body)

	done := map[string]svcRun{}
	require.Eventually(t, func() bool {
		for _, r := range srv.runs(t) {
			if r.Status != "running" && r.Status != "queued" && r.Status != "" {
				done[r.Recipe] = r
			}
		}
		return len(done) == 2
	}, 30*time.Second, 50*time.Millisecond)
	for name, r := range done {
		require.Equal(t, "succeeded", r.Status, "%s: %s", name, srv.api("/api/v1/runs/"+r.ID))
	}

	t.Run("calendar: one event, its output recorded", func(t *testing.T) {
		events := fake.Events("primary")
		require.Len(t, events, 1, "exactly one event though the first insert's answer was a 503")
		var ev string
		for id := range events {
			ev = id
		}
		rec := string(srv.api("/api/v1/runs/" + done["meeting"].ID))
		require.Contains(t, rec, ev, "the run record holds the event id")
		require.Contains(t, rec, "https://meet.google.com/", "and the Meet link")
		require.Contains(t, rec, `"existed": true`, "the retry found the event")
		require.NotContains(t, rec, googleToken)
		inserts := 0
		for _, r := range fake.Recorded() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/events") {
				inserts++
			}
		}
		require.Equal(t, 2, inserts, "the step was retried once")
	})
	t.Run("drive: folder, upload and share, outputs recorded", func(t *testing.T) {
		var file, folder *google.FakeFile
		for _, f := range fake.Files() {
			if f.Name == "Notes" {
				folder = f
			} else {
				file = f
			}
		}
		require.NotNil(t, folder)
		require.NotNil(t, file)
		require.Equal(t, "agenda: everything", string(file.Content))
		require.Equal(t, []string{folder.Id}, file.Parents)
		require.Len(t, fake.Permissions(file.Id), 1)
		var rec struct {
			Record json.RawMessage `json:"record"`
		}
		raw := srv.api("/api/v1/runs/" + done["filing"].ID)
		require.NoError(t, json.Unmarshal(raw, &rec))
		require.Contains(t, string(raw), file.WebViewLink)
		require.Contains(t, string(raw), file.Md5Checksum)
		require.Contains(t, string(raw), "anyoneWithLink")
		require.NotContains(t, string(raw), googleToken)
	})
	require.Empty(t, fake.Problems)
}
