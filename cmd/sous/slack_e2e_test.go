package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
	sc "github.com/sous-run/sous/internal/clients/slack"
	"github.com/sous-run/sous/internal/clients/slack/slackfake"
	"github.com/sous-run/sous/internal/httpx"
)

const slackSigningSecret = "e2e-slack-signing-secret-0123456789"

// slackRecipe is a recipe on the slack connection whose one step posts
// its name and the event's dedup key (event_id or trigger_id) to url.
func slackRecipe(name, trigger, with, url, timeout string) string {
	key := "event_id"
	if trigger == "slack.slash_command" || trigger == "slack.interaction" {
		key = "trigger_id"
	}
	return fmt.Sprintf(`version: 1
name: %s
trigger:
  type: %s
  connection: slack
  with: %s
steps:
  - id: tell
    action: http.request
    with:
      url: %s
      timeout: %s
      json: {recipe: %s, event: "{{ event.%s }}"}
`, name, trigger, with, url, timeout, name, key)
}

// slackPost posts body to /hooks/slack/slack with the headers h (the
// signature's, or not), and returns the status, the body, and how long
// the answer took.
func slackPost(t *testing.T, base, body, contentType string, h http.Header) (int, string, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/hooks/slack/slack", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for k, v := range h {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), time.Since(start)
}

// slackSigned are the headers Slack sends with body at ts.
func slackSigned(secret string, ts time.Time, body string) http.Header {
	s := strconv.FormatInt(ts.Unix(), 10)
	return http.Header{sc.HeaderTimestamp: {s}, sc.HeaderSignature: {sc.Sign(secret, s, []byte(body))}}
}

// TestSlackTriggersThroughServe posts the bytes Slack sends, freshly
// signed, to a running `sous serve`: url_verification is answered with
// its challenge; a signed message starts a run per matching recipe (not
// the recipe on another channel, nor a bot's message); the same delivery
// again starts none; a missing, wrong or stale signature is a 401 and
// stores nothing; a slash command is answered with its recipe's reply
// within 3 s while its step takes 10 s.
func TestSlackTriggersThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	bin := buildSous(t)
	var told atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		told.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()
	var slowDone atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
			slowDone.Add(1)
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer slow.Close()
	setup := newServeSetup(t, bin, map[string]string{
		"in-c1.yaml":      slackRecipe("in-c1", "slack.message", "{channel: C0123456789}", sink.URL, "5s"),
		"anywhere.yaml":   slackRecipe("anywhere", "slack.message", "{}", sink.URL, "5s"),
		"in-c2.yaml":      slackRecipe("in-c2", "slack.message", "{channel: C0000000002}", sink.URL, "5s"),
		"ticket.yaml":     slackRecipe("ticket", "slack.slash_command", "{command: /ticket, reply_text: \"Filing it…\"}", slow.URL, "30s"),
		"deploy.yaml":     slackRecipe("deploy", "slack.slash_command", "{command: /deploy}", sink.URL, "5s"),
		"created.yaml":    slackRecipe("created", "slack.event", "{type: channel_created}", sink.URL, "5s"),
		"approve.yaml":    slackRecipe("approve", "slack.interaction", "{action_id: approve}", sink.URL, "5s"),
		"bots-only.yaml":  slackRecipe("bots", "slack.app_mention", "{include_bots: true}", sink.URL, "5s"),
		"reactions.yaml":  slackRecipe("reactions", "slack.reaction_added", "{reaction: eyes}", sink.URL, "5s"),
		"no-bot-ok.yaml":  slackRecipe("no-bots", "slack.app_mention", "{}", sink.URL, "5s"),
		"other-bots.yaml": slackRecipe("other", "slack.reaction_added", "{reaction: tada}", sink.URL, "5s"),
	}, "connections:\n  slack: {type: slack, token: xoxb-e2e-token, signing_secret: "+slackSigningSecret+"}\n")
	c := setup.start(t, 0)
	waitReady(t, setup.base, c)
	defer func() {
		if t.Failed() {
			t.Log(c.output())
		}
	}()

	count := func(recipe string) int {
		runs, err := setup.runs(recipe)
		require.NoError(t, err)
		return len(runs)
	}
	settled := func(recipe string, n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			runs, err := setup.runs(recipe)
			require.NoError(t, err)
			done := 0
			for _, r := range runs {
				if r.Status == "succeeded" {
					done++
				}
			}
			return done == n && len(runs) == n
		}, 30*time.Second, 20*time.Millisecond, "recipe %s: %d runs", recipe, n)
	}
	const form = "application/x-www-form-urlencoded"

	t.Run("url_verification", func(t *testing.T) {
		body := `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
		code, got, _ := slackPost(t, setup.base, body, "application/json", slackSigned(slackSigningSecret, time.Now(), body))
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", got)
		code, _, _ = slackPost(t, setup.base, body, "application/json", slackSigned("not-the-secret", time.Now(), body))
		require.Equal(t, http.StatusUnauthorized, code, "the handshake is verified too")
	})

	message := `{"token":"vtok","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"Ev0001","event_time":1700000000,` +
		`"event":{"type":"message","channel":"C0123456789","user":"U1","text":"deploy please","ts":"1700000000.000100","event_ts":"1700000000.000100","channel_type":"channel"}}`
	t.Run("a message, a run per matching recipe, once", func(t *testing.T) {
		h := slackSigned(slackSigningSecret, time.Now(), message)
		code, got, _ := slackPost(t, setup.base, message, "application/json", h)
		require.Equal(t, http.StatusOK, code, got)
		require.Empty(t, got, "an empty 200: Slack wants nothing more")
		settled("in-c1", 1)
		settled("anywhere", 1)
		// Slack's retry of the same delivery, with its retry headers
		h.Set(sc.HeaderRetryNum, "1")
		h.Set(sc.HeaderRetryCause, "http_timeout")
		code, _, _ = slackPost(t, setup.base, message, "application/json", h)
		require.Equal(t, http.StatusOK, code)
		// a later event proves the duplicate was handled before it
		later := strings.Replace(strings.Replace(message, "Ev0001", "Ev0002", 1), `"C0123456789"`, `"C0000000009"`, 1)
		code, _, _ = slackPost(t, setup.base, later, "application/json", slackSigned(slackSigningSecret, time.Now(), later))
		require.Equal(t, http.StatusOK, code)
		settled("anywhere", 2)
		require.Equal(t, 1, count("in-c1"))
		require.Equal(t, 0, count("in-c2"))
	})

	t.Run("refused: nothing stored", func(t *testing.T) {
		body := strings.Replace(message, "Ev0001", "Ev0003", 1)
		now := time.Now()
		ts := strconv.FormatInt(now.Unix(), 10)
		tests := []struct {
			name string
			h    http.Header
			code string
		}{
			{"missing signature", http.Header{sc.HeaderTimestamp: {ts}}, "missing_signature"},
			{"missing timestamp", http.Header{sc.HeaderSignature: {sc.Sign(slackSigningSecret, ts, []byte(body))}}, "missing_signature"},
			{"wrong signature", slackSigned("another-secret-0123456789", now, body), "bad_signature"},
			{"signature of other bytes", http.Header{sc.HeaderTimestamp: {ts}, sc.HeaderSignature: {sc.Sign(slackSigningSecret, ts, []byte(message))}}, "bad_signature"},
			{"stale", slackSigned(slackSigningSecret, now.Add(-6*time.Minute), body), "stale_timestamp"},
			{"from the future", slackSigned(slackSigningSecret, now.Add(6*time.Minute), body), "stale_timestamp"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, got, _ := slackPost(t, setup.base, body, "application/json", tc.h)
				require.Equal(t, http.StatusUnauthorized, code, got)
				require.Contains(t, got, tc.code)
				require.NotContains(t, got, slackSigningSecret)
			})
		}
		// a signed bot message: no run of the recipes that leave bots out
		bot := strings.Replace(strings.Replace(message, "Ev0001", "Ev0004", 1), `"user":"U1"`, `"bot_id":"B1"`, 1)
		code, _, _ := slackPost(t, setup.base, bot, "application/json", slackSigned(slackSigningSecret, time.Now(), bot))
		require.Equal(t, http.StatusOK, code)
		mention := `{"type":"event_callback","event_id":"Ev0006","event":{"type":"app_mention","bot_id":"B1","channel":"C1","text":"<@U0> hi","ts":"1.0"}}`
		code, _, _ = slackPost(t, setup.base, mention, "application/json", slackSigned(slackSigningSecret, time.Now(), mention))
		require.Equal(t, http.StatusOK, code)
		settled("bots", 1)
		// then a signed one that is stored, to know the ones before were handled
		ok := strings.Replace(message, "Ev0001", "Ev0005", 1)
		code, _, _ = slackPost(t, setup.base, ok, "application/json", slackSigned(slackSigningSecret, time.Now(), ok))
		require.Equal(t, http.StatusOK, code)
		settled("anywhere", 3)
		settled("in-c1", 2)
	})

	t.Run("other events, interactions", func(t *testing.T) {
		created := `{"type":"event_callback","team_id":"T1","event_id":"Ev0100","event_time":1700000001,"event":{"type":"channel_created","channel":{"id":"C9","name":"new"},"event_ts":"1700000001.0"}}`
		code, _, _ := slackPost(t, setup.base, created, "application/json", slackSigned(slackSigningSecret, time.Now(), created))
		require.Equal(t, http.StatusOK, code)
		settled("created", 1)
		action := url.Values{"payload": {`{"type":"block_actions","trigger_id":"tr-approve-1","user":{"id":"U1"},"response_url":"https://hooks.slack.test/a","actions":[{"action_id":"approve","value":"yes"}]}`}}.Encode()
		code, got, _ := slackPost(t, setup.base, action, form, slackSigned(slackSigningSecret, time.Now(), action))
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, got)
		settled("approve", 1)
		reaction := `{"type":"event_callback","event_id":"Ev0101","event":{"type":"reaction_added","user":"U1","reaction":"eyes","item":{"type":"message","channel":"C1","ts":"1.0"}}}`
		code, _, _ = slackPost(t, setup.base, reaction, "application/json", slackSigned(slackSigningSecret, time.Now(), reaction))
		require.Equal(t, http.StatusOK, code)
		settled("reactions", 1)
		require.Equal(t, 0, count("other"))
	})

	t.Run("a slash command answered at once while its step takes 10 s", func(t *testing.T) {
		body := url.Values{"token": {"vtok"}, "team_id": {"T1"}, "channel_id": {"C1"}, "channel_name": {"ops"}, "user_id": {"U1"},
			"command": {"/ticket"}, "text": {"printer on fire"}, "response_url": {"https://hooks.slack.test/commands/1"},
			"trigger_id": {"tr-ticket-1"}}.Encode()
		sent := time.Now()
		code, got, took := slackPost(t, setup.base, body, form, slackSigned(slackSigningSecret, time.Now(), body))
		require.Equal(t, http.StatusOK, code)
		require.Less(t, took, 3*time.Second)
		var reply map[string]any
		require.NoError(t, json.Unmarshal([]byte(got), &reply), got)
		require.Equal(t, map[string]any{"response_type": "ephemeral", "text": "Filing it…"}, reply)
		// the same command delivered again: the same answer, no second run
		code, got2, _ := slackPost(t, setup.base, body, form, slackSigned(slackSigningSecret, time.Now(), body))
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, got, got2)
		require.Equal(t, 0, count("deploy"), "another command's recipe")
		require.Zero(t, slowDone.Load(), "the step is still running")
		settled("ticket", 1)
		require.GreaterOrEqual(t, time.Since(sent), 10*time.Second)
		require.EqualValues(t, 1, slowDone.Load())
		// a command no reply is set for: an empty 200
		deploy := strings.Replace(strings.Replace(body, "%2Fticket", "%2Fdeploy", 1), "tr-ticket-1", "tr-deploy-1", 1)
		code, got, _ = slackPost(t, setup.base, deploy, form, slackSigned(slackSigningSecret, time.Now(), deploy))
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, got)
		settled("deploy", 1)
	})
	require.Equal(t, 0, count("no-bots"), "a bot's mention")
	stopChild(t, c)
}

// TestSlackPostMessageThroughServe: webhook.received → filter →
// slack.post_message against the fake Web API; the run record holds the
// step's output (channel id, ts, permalink), and the token went as a
// bearer token only.
func TestSlackPostMessageThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	bin := buildSous(t)
	const token = "xoxb-e2e-post-token-0123456789"
	fake := slackfake.New(token)
	defer fake.Stop()
	setup := newServeSetup(t, bin, map[string]string{"deploys.yaml": `version: 1
name: deploys
trigger:
  type: webhook.received
  with: {path: /deploys}
filter: event.body.env == "prod"
steps:
  - id: post
    action: slack.post_message
    connection: slack
    with:
      channel: "#general"
      text: "Deployed {{ event.body.version }}"
`}, "connections:\n  slack: {type: slack, token: "+token+", signing_secret: "+slackSigningSecret+", base_url: \""+fake.URL()+"\"}\n")
	c := setup.start(t, 0)
	waitReady(t, setup.base, c)
	defer func() {
		if t.Failed() {
			t.Log(c.output())
		}
	}()
	for _, body := range []string{`{"env":"staging","version":"1.2.2"}`, `{"env":"prod","version":"1.2.3"}`} {
		resp, err := http.Post(setup.base+"/hooks/deploys", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	var runs []*store.Run
	require.Eventually(t, func() bool {
		var err error
		runs, err = setup.runs("deploys")
		require.NoError(t, err)
		n := 0
		for _, r := range runs {
			if r.Status == "succeeded" {
				n++
			}
		}
		return n == 1
	}, 30*time.Second, 20*time.Millisecond)
	msgs := fake.Messages()
	require.Len(t, msgs, 1, "the staging deploy was filtered out")
	require.Equal(t, "Deployed 1.2.3", msgs[0].Text)
	var id string
	for _, r := range runs {
		if r.Status == "succeeded" {
			id = r.ID
		}
	}
	req, err := http.NewRequest(http.MethodGet, setup.base+"/api/v1/runs/"+id, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+setup.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var rec struct {
		Record struct {
			Steps []struct {
				ID     string         `json:"id"`
				Output map[string]any `json:"output"`
			} `json:"steps"`
		} `json:"record"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rec))
	require.Len(t, rec.Record.Steps, 1)
	out := rec.Record.Steps[0].Output
	require.Equal(t, "C0GENERAL01", out["channel"])
	require.Equal(t, msgs[0].TS, out["ts"])
	require.Equal(t, "https://fake.slack.test/archives/C0GENERAL01/p"+strings.ReplaceAll(msgs[0].TS, ".", ""), out["permalink"])
	for _, call := range fake.Calls("") {
		require.Equal(t, "Bearer "+token, call.Auth, call.Method)
		require.False(t, call.TokenInForm, call.Method)
	}
	require.NotContains(t, c.output(), token)
	stopChild(t, c)
}

// TestSlackTicketExampleThroughServe runs examples/slack/ticket-command.yaml
// for real: a signed /ticket is answered at once with the recipe's reply,
// the ticket is posted to #support on the fake Web API, and the user is
// told its permalink through the command's response_url.
func TestSlackTicketExampleThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	bin := buildSous(t)
	const token = "xoxb-e2e-ticket-token-0123456789"
	fake := slackfake.New(token, slackfake.Channel{ID: "C0SUPPORT01", Name: "support"})
	defer fake.Stop()
	answered := make(chan map[string]any, 4)
	responseURL := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		answered <- m
		_, _ = io.WriteString(w, "ok")
	}))
	defer responseURL.Close()
	example, err := os.ReadFile(filepath.Join(examplesDir, "slack", "ticket-command.yaml"))
	require.NoError(t, err)
	setup := newServeSetup(t, bin, map[string]string{"ticket-command.yaml": string(example)},
		"connections:\n  slack: {type: slack, token: "+token+", signing_secret: "+slackSigningSecret+", base_url: \""+fake.URL()+"\"}\n")
	c := setup.start(t, 0)
	waitReady(t, setup.base, c)
	defer func() {
		if t.Failed() {
			t.Log(c.output())
		}
	}()
	body := url.Values{"token": {"vtok"}, "team_id": {"T1"}, "channel_id": {"C0GENERAL01"}, "channel_name": {"general"},
		"user_id": {"U0123456789"}, "user_name": {"ada"}, "command": {"/ticket"}, "text": {"the printer is on fire"},
		"response_url": {responseURL.URL + "/commands/T1/1/abc"}, "trigger_id": {"1.2.abc"}}.Encode()
	code, got, took := slackPost(t, setup.base, body, "application/x-www-form-urlencoded", slackSigned(slackSigningSecret, time.Now(), body))
	require.Equal(t, http.StatusOK, code)
	require.Less(t, took, 3*time.Second)
	require.JSONEq(t, `{"response_type":"ephemeral","text":"Filing it…"}`, got)
	select {
	case m := <-answered:
		msgs := fake.Messages()
		require.Len(t, msgs, 1)
		require.Equal(t, "C0SUPPORT01", msgs[0].Channel)
		require.Equal(t, "New ticket from <@U0123456789> in <#C0GENERAL01>: the printer is on fire", msgs[0].Text)
		require.Equal(t, "false", msgs[0].Form.Get("unfurl_links"))
		require.Equal(t, "Filed: https://fake.slack.test/archives/C0SUPPORT01/p"+strings.ReplaceAll(msgs[0].TS, ".", ""), m["text"])
		require.Equal(t, "ephemeral", m["response_type"])
	case <-time.After(30 * time.Second):
		t.Fatal("the user was not told through response_url")
	}
	stopChild(t, c)
}

// TestSlackValidateTypo: `sous validate` reports a typo in a Slack
// event's field at its line and column, with a suggestion, and `sous
// connectors` lists the event's fields.
func TestSlackValidateTypo(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "typo.yaml", `version: 1
name: typo
trigger:
  type: slack.slash_command
  connection: slack
  with: {command: /ticket}
filter: event.comand == "/ticket"
steps:
  - id: post
    action: slack.post_message
    connection: slack
    with: {channel: "#support", text: "{{ event.txt }}"}
`)
	r := sous(t, "", "validate", path)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stdout, path+`:7:15: error: expression: unknown field comand in event (did you mean "command"?)`, "%s", r)
	require.Contains(t, r.stdout, path+`:12:49: error: `, "%s", r)
	require.Contains(t, r.stdout, `unknown field txt in event (did you mean "text"?)`, "%s", r)
	r = sous(t, "", "connectors", "slack.slash_command")
	require.Equal(t, 0, r.code, "%s", r)
	for _, s := range []string{"response_url", "trigger_id", "reply_text", "response_type"} {
		require.Contains(t, r.stdout, s)
	}
}

// TestSlackIncidentExampleThroughServe runs
// examples/slack/incident-channel.yaml for real against the fake: every
// Slack action in one run (create_channel, post_message, upload_file,
// update_message), and a second alert for the same incident gives the
// same channel, not a second one; a post whose answer is lost after Slack
// posted it is retried without a second message.
func TestSlackIncidentExampleThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	bin := buildSous(t)
	const token = "xoxb-e2e-incident-token-0123456789"
	fake := slackfake.New(token)
	defer fake.Stop()
	example, err := os.ReadFile(filepath.Join(examplesDir, "slack", "incident-channel.yaml"))
	require.NoError(t, err)
	setup := newServeSetup(t, bin, map[string]string{"incident-channel.yaml": string(example)},
		"connections:\n  slack: {type: slack, token: "+token+", signing_secret: "+slackSigningSecret+", base_url: \""+fake.URL()+"\"}\n")
	const hookSecret = "e2e-incidents-webhook-secret"
	setup.env = []string{"SOUS_SECRET_INCIDENTS_WEBHOOK=" + hookSecret}
	c := setup.start(t, 0)
	waitReady(t, setup.base, c)
	defer func() {
		if t.Failed() {
			t.Log(c.output())
		}
	}()
	const runbook = "1. Check the database.\n2. Page the on-call.\n"
	// the first alert's post is answered 503 after Slack posted it: the
	// retry finds it rather than posting a second
	fake.Fail("chat.postMessage", slackfake.Failure{Status: http.StatusServiceUnavailable, After: true})
	for i, title := range []string{"API latency over 2 s", "API latency over 5 s"} {
		body, err := json.Marshal(map[string]any{"id": 42, "title": title, "runbook": runbook})
		require.NoError(t, err)
		post := func(sig string) int {
			req, err := http.NewRequest(http.MethodPost, setup.base+"/hooks/incidents", strings.NewReader(string(body)))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Signature-256", sig)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		require.Equal(t, http.StatusUnauthorized, post(httpx.SignSHA256("not-the-secret", body)), "a wrong signature is refused")
		require.Equal(t, http.StatusAccepted, post(httpx.SignSHA256(hookSecret, body)))
		require.Eventually(t, func() bool {
			runs, err := setup.runs("slack-incident-channel")
			require.NoError(t, err)
			n := 0
			for _, r := range runs {
				require.NotEqual(t, "failed", r.Status, "%+v", r)
				if r.Status == "succeeded" {
					n++
				}
			}
			return n == i+1
		}, 30*time.Second, 20*time.Millisecond)
	}
	var incident []slackfake.Channel
	for _, ch := range fake.Channels() {
		if ch.Name == "incident-42" {
			incident = append(incident, ch)
		}
	}
	require.Len(t, incident, 1, "one channel for the incident")
	msgs := fake.Messages()
	require.Len(t, msgs, 2, "one message an alert, the lost answer's retry included")
	require.NotEmpty(t, fake.Calls("conversations.history"), "the retry looked for its message")
	files := fake.Files()
	require.Len(t, files, 2)
	for i, m := range msgs {
		require.Equal(t, incident[0].ID, m.Channel)
		require.Contains(t, m.Text, "(runbook: https://fake.slack.test/files/", "message %d was edited with the runbook's link", i)
	}
	for _, f := range files {
		require.Equal(t, runbook, string(f.Content))
		require.Equal(t, incident[0].ID, f.Channel)
	}
	require.Len(t, fake.Calls("chat.update"), 2)
	stopChild(t, c)
}
