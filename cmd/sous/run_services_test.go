package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/clients/google"
	"github.com/sous-run/sous/internal/clients/slack/slackfake"
)

// TestRunServiceActions: `sous run` runs service actions for real, with
// their connections' clients as `sous serve` builds them: a static Slack
// token, and a Google OAuth app whose refresh token (from the config) is
// exchanged at the token endpoint and stored in the data folder.
func TestRunServiceActions(t *testing.T) {
	const slackToken = "xoxb-run-cli-token-0123456789"
	const googleToken = "ya29.run-cli-access-token"
	sl := slackfake.New(slackToken)
	defer sl.Stop()
	gf := google.NewFake(googleToken)
	api := httptest.NewServer(gf)
	defer api.Close()
	var refreshes atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "1//run-cli-refresh" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		refreshes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": googleToken, "token_type": "Bearer", "expires_in": 3600})
	}))
	defer tokens.Close()

	dir := t.TempDir()
	config := writeFile(t, dir, "sous.yaml", `data_dir: `+filepath.Join(dir, "data")+`
connections:
  slack: {type: slack, token: `+slackToken+`, base_url: "`+sl.URL()+`"}
  google:
    type: google
    base_url: `+api.URL+`/
    oauth: {client_id: cid.apps.googleusercontent.com, client_secret: run-cli-client-secret, refresh_token: 1//run-cli-refresh, token_url: `+tokens.URL+`}
`)
	recipe := writeFile(t, dir, "r.yaml", `version: 1
name: cli-services
trigger: {type: webhook.received, with: {path: /book}}
steps:
  - id: meet
    action: gcal.create_event
    connection: google
    with: {summary: "{{ event.body.title }}", start: "2030-01-02T10:00:00Z", end: "2030-01-02T11:00:00Z"}
  - id: tell
    action: slack.post_message
    connection: slack
    with: {channel: "#general", text: "booked {{ steps.meet.output.id }}"}
`)
	event := writeFile(t, dir, "ev.json", `{"body": {"title": "Kickoff"}}`)
	r := sous(t, "", "run", recipe, "--config", config, "--event", event)
	require.Equal(t, 0, r.code, "%s", r)
	require.Len(t, gf.Events("primary"), 1)
	msgs := sl.Messages()
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Text, "booked ")
	require.EqualValues(t, 1, refreshes.Load(), "the refresh token was exchanged once")
	require.NotContains(t, r.stdout+r.stderr, googleToken)
	require.NotContains(t, r.stdout+r.stderr, slackToken)
}
