package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/clients/zoom"
)

// svcSink records the JSON bodies recipes send it.
type svcSink struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (s *svcSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func (s *svcSink) got() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

// svcServe is a `sous serve` of recipes with connections, and its API.
type svcServe struct {
	base, data string
	api        func(path string) []byte
}

// startServe writes config (connections: indented YAML) and recipes and
// starts `sous serve`, ready.
func svcStart(t *testing.T, env []string, connections string, recipeFiles map[string]string) *svcServe {
	t.Helper()
	bin := buildSous(t)
	tmp := t.TempDir()
	recipesDir := filepath.Join(tmp, "recipes")
	for name, src := range recipeFiles {
		writeFile(t, recipesDir, name, src)
	}
	const apiKey = "e2e-api-key-0123456789abcdef"
	addr := freeAddr(t)
	s := &svcServe{base: "http://" + addr, data: filepath.Join(tmp, "data")}
	config := writeFile(t, tmp, "sous.yaml", fmt.Sprintf("listen: %s\ndata_dir: %s\nrecipes: %s\napi_keys: [%s]\nconnections:\n%s",
		addr, s.data, recipesDir, apiKey, connections))
	c := startChild(t, bin, filepath.Join(tmp, "serve.log"), env, "serve", "--config", config)
	waitReady(t, s.base, c)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(tmp, "serve.log"))
			t.Logf("serve log:\n%s", b)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	s.api = func(path string) []byte {
		req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		return b
	}
	return s
}

type svcRun struct {
	ID, Recipe, Status string
}

func (s *svcServe) runs(t *testing.T) []svcRun {
	var r struct {
		Runs []svcRun `json:"runs"`
	}
	require.NoError(t, json.Unmarshal(s.api("/api/v1/runs"), &r))
	return r.Runs
}

// events counts the stored events.
func (s *svcServe) events(t *testing.T) int {
	t.Helper()
	write, read, err := store.OpenSQLite(context.Background(), s.data)
	require.NoError(t, err)
	defer write.Close()
	defer read.Close()
	var n int
	require.NoError(t, read.QueryRow(`SELECT count(*) FROM events`).Scan(&n))
	return n
}

func svcPost(t *testing.T, url string, header http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const zoomSecret = "e2e-zoom-secret-token-0123456789"

// TestZoomE2E: Zoom's exact bytes (the reference vectors, signed now)
// through a real `sous serve`: a run per matching recipe, 401 and nothing
// stored for a wrong, stale or missing signature, the URL validation
// answered as Zoom documents, and a redelivery giving no second run.
func TestZoomE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	sink := &svcSink{}
	remote := httptest.NewServer(sink)
	defer remote.Close()
	step := func(name string, files ...string) string {
		f := "0"
		if len(files) > 0 {
			f = files[0]
		}
		return fmt.Sprintf(`steps:
  - id: tell
    action: http.request
    connection: sink
    with: {url: hook, json: {recipe: %s, id: "{{ event.payload.object.id }}", topic: "{{ event.payload.object.topic }}", files: "%s"}}
`, name, f)
	}
	recipesFiles := map[string]string{
		"ended-a.yaml":    "version: 1\nname: ended-a\ntrigger: {type: zoom.meeting_ended, connection: zoom}\n" + step("ended-a"),
		"ended-b.yaml":    "version: 1\nname: ended-b\ntrigger: {type: zoom.meeting_ended, connection: zoom}\nfilter: event.payload.object.topic == \"Weekly sync\"\n" + step("ended-b"),
		"ended-skip.yaml": "version: 1\nname: ended-skip\ntrigger: {type: zoom.meeting_ended, connection: zoom}\nfilter: event.payload.object.duration > 100\n" + step("ended-skip"),
		"recorded.yaml":   "version: 1\nname: recorded\ntrigger: {type: zoom.recording_completed, connection: zoom}\n" + step("recorded", "{{ len(event.payload.object.recording_files) }}"),
		"any.yaml":        "version: 1\nname: any\ntrigger: {type: zoom.event, connection: zoom, with: {event: meeting.created}}\n" + step("any"),
		"deleted.yaml":    "version: 1\nname: deleted\ntrigger: {type: zoom.event, connection: zoom, with: {event: meeting.deleted}}\n" + step("deleted"),
	}
	srv := svcStart(t, []string{"E2E_ZOOM_SECRET=" + zoomSecret, "E2E_ZOOM_TOKEN=zoom-access-token-0123456789"},
		fmt.Sprintf("  zoom: {type: zoom, webhook_secret: \"${E2E_ZOOM_SECRET}\"}\n  nosecret: {type: zoom, token: \"${E2E_ZOOM_TOKEN}\"}\n  sink: {type: http, base_url: %s/}\n",
			remote.URL), recipesFiles)
	hook := srv.base + "/hooks/zoom/zoom"
	ended, err := os.ReadFile("../../internal/clients/zoom/testdata/zoom_meeting_ended.json")
	require.NoError(t, err)
	validation, err := os.ReadFile("../../internal/clients/zoom/testdata/zoom_url_validation.json")
	require.NoError(t, err)
	recording, err := os.ReadFile("../../internal/clients/zoom/testdata/zoom_recording_completed.json")
	require.NoError(t, err)

	t.Run("refused: wrong, stale, missing, unsigned connection", func(t *testing.T) {
		missingTS := zoom.SignedHeader(zoomSecret, ended, time.Now())
		missingTS.Del(zoom.HeaderTimestamp)
		missingSig := zoom.SignedHeader(zoomSecret, ended, time.Now())
		missingSig.Del(zoom.HeaderSignature)
		cases := []struct {
			name   string
			url    string
			header http.Header
			code   string
		}{
			{"wrong signature", hook, zoom.SignedHeader("not-the-secret", ended, time.Now()), "bad_signature"},
			{"stale timestamp", hook, zoom.SignedHeader(zoomSecret, ended, time.Now().Add(-10*time.Minute)), "stale_timestamp"},
			{"missing timestamp", hook, missingTS, "missing_signature"},
			{"missing signature", hook, missingSig, "missing_signature"},
			{"a connection without a secret", srv.base + "/hooks/zoom/nosecret", zoom.SignedHeader("", ended, time.Now()), "no_secret"},
		}
		for _, tc := range cases {
			code, body := svcPost(t, tc.url, tc.header, ended)
			require.Equal(t, http.StatusUnauthorized, code, "%s: %s", tc.name, body)
			require.Contains(t, body, tc.code, tc.name)
			require.NotContains(t, body, zoomSecret)
		}
		require.Equal(t, 0, srv.events(t), "nothing stored")
		require.Empty(t, srv.runs(t))
	})

	t.Run("url validation answered as documented", func(t *testing.T) {
		code, body := svcPost(t, hook, zoom.SignedHeader(zoomSecret, validation, time.Now()), validation)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, fmt.Sprintf(`{"plainToken":"qgg8vlvZRS6UYooatFL8Aw","encryptedToken":%q}`, zoom.EncryptToken(zoomSecret, "qgg8vlvZRS6UYooatFL8Aw")), body)
		code, body = svcPost(t, hook, zoom.SignedHeader("wrong", validation, time.Now()), validation)
		require.Equal(t, http.StatusUnauthorized, code, "the validation is verified first: %s", body)
		require.Equal(t, 0, srv.events(t))
	})

	t.Run("a run per matching recipe, once for redeliveries", func(t *testing.T) {
		code, body := svcPost(t, hook, zoom.SignedHeader(zoomSecret, ended, time.Now()), ended)
		require.Equal(t, http.StatusOK, code, body)
		// Zoom's retry: the same body, signed again later
		code, body = svcPost(t, hook, zoom.SignedHeader(zoomSecret, ended, time.Now().Add(time.Second)), ended)
		require.Equal(t, http.StatusOK, code, body)
		// the exact same request twice
		recHeader := zoom.SignedHeader(zoomSecret, recording, time.Now())
		for range 2 {
			code, body = svcPost(t, hook, recHeader, recording)
			require.Equal(t, http.StatusOK, code, body)
		}
		created := []byte(`{"event":"meeting.created","event_ts":1739920000000,"payload":{"account_id":"a","object":{"id":85343498290,"uuid":"u1","topic":"Planning"}}}`)
		code, body = svcPost(t, hook, zoom.SignedHeader(zoomSecret, created, time.Now()), created)
		require.Equal(t, http.StatusOK, code, body)

		// stored at intake, before each answer: one event per delivery,
		// the redeliveries none
		require.Equal(t, 3, srv.events(t), "meeting.ended, recording.completed and meeting.created, once each")
		require.Eventually(t, func() bool {
			n := 0
			for _, r := range srv.runs(t) {
				if r.Status == "succeeded" || r.Status == "filtered" {
					n++
				}
			}
			return n == 5
		}, 20*time.Second, 20*time.Millisecond)
		byRecipe := map[string]string{}
		for _, r := range srv.runs(t) {
			_, dup := byRecipe[r.Recipe]
			require.False(t, dup, "a second run of %s", r.Recipe)
			byRecipe[r.Recipe] = r.Status
		}
		require.Equal(t, map[string]string{"ended-a": "succeeded", "ended-b": "succeeded", "ended-skip": "filtered",
			"recorded": "succeeded", "any": "succeeded"}, byRecipe)
		got := map[string]map[string]any{}
		for _, b := range sink.got() {
			got[b["recipe"].(string)] = b
		}
		require.Len(t, got, 4)
		require.Equal(t, map[string]any{"recipe": "ended-a", "id": "85343498290", "topic": "Weekly sync", "files": "0"}, got["ended-a"])
		require.Equal(t, "85343498290", got["recorded"]["id"], "a number id arrives as a string")
		require.Equal(t, 1.0, got["recorded"]["files"], "the recording files are listed")
		require.Equal(t, "Planning", got["any"]["topic"])
	})
}
