package slack_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	slackactions "github.com/sous-run/sous/actions/slack"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	sc "github.com/sous-run/sous/internal/clients/slack"
	"github.com/sous-run/sous/internal/clients/slack/slackfake"
)

const token = "xoxb-test-token-0123456789"

// connection is a slack connection on the fake, with its client.
func connection(t *testing.T, base string) *connector.Connection {
	t.Helper()
	c := &connector.Connection{Name: "slack", Type: "slack",
		Values: connector.Values{"token": token, "signing_secret": "s3cr3t-signing", "base_url": base}}
	cl, err := connector.NewClient(c, sc.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	return c
}

func run(t *testing.T, spec *connector.Spec, conn *connector.Connection, with map[string]any) (map[string]any, error) {
	t.Helper()
	w, err := connectortest.With(spec, with)
	require.NoError(t, err)
	return spec.Action.Run(context.Background(), &connector.Request{Recipe: "r", RunID: "run-1", Step: "s", With: w,
		Connection: conn, IdempotencyKey: "run-1:s", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// noToken checks that every call carried the token as a bearer token and
// never in its form or query.
func noToken(t *testing.T, f *slackfake.Fake) {
	t.Helper()
	calls := f.Calls("")
	require.NotEmpty(t, calls)
	for _, c := range calls {
		require.Equal(t, "Bearer "+token, c.Auth, c.Method)
		require.False(t, c.TokenInForm, "%s sent a token field", c.Method)
	}
}

func TestPostMessage(t *testing.T) {
	blocks := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*hi*"}}}
	tests := []struct {
		name string
		with map[string]any
		form map[string]string // fields chat.postMessage must get
		no   []string          // fields it must not get
	}{
		{name: "text to a channel by name", with: map[string]any{"channel": "#general", "text": "hello"},
			form: map[string]string{"channel": "#general", "text": "hello"}, no: []string{"thread_ts", "reply_broadcast", "unfurl_links", "unfurl_media"}},
		{name: "blocks to an id, in a thread, broadcast", with: map[string]any{"channel": "C0GENERAL01", "text": "fallback", "blocks": blocks,
			"thread_ts": "1700000000.000001", "reply_broadcast": true},
			form: map[string]string{"channel": "C0GENERAL01", "text": "fallback", "thread_ts": "1700000000.000001", "reply_broadcast": "true",
				"blocks": `[{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}}]`}},
		{name: "no unfurling", with: map[string]any{"channel": "general", "text": "https://example.test", "unfurl_links": false, "unfurl_media": false},
			form: map[string]string{"unfurl_links": "false", "unfurl_media": "false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := slackfake.New(token)
			defer f.Stop()
			out, err := run(t, slackactions.PostMessage, connection(t, f.URL()), tc.with)
			require.NoError(t, err)
			msgs := f.Messages()
			require.Len(t, msgs, 1)
			require.Equal(t, "C0GENERAL01", out["channel"])
			require.Equal(t, msgs[0].TS, out["ts"])
			require.Equal(t, "https://fake.slack.test/archives/C0GENERAL01/p"+msgs[0].TS[:10]+msgs[0].TS[11:], out["permalink"])
			for k, v := range tc.form {
				require.Equal(t, v, msgs[0].Form.Get(k), k)
			}
			for _, k := range tc.no {
				require.False(t, msgs[0].Form.Has(k), k)
			}
			perm := f.Calls("chat.getPermalink")
			require.Len(t, perm, 1)
			require.Equal(t, http.MethodGet, perm[0].HTTP)
			require.Equal(t, msgs[0].TS, perm[0].Form.Get("message_ts"))
			noToken(t, f)
		})
	}
}

// TestPostMessageRetried: an attempt whose answer was lost after Slack
// posted is followed by one that finds that message by its metadata tag
// and posts none, in a channel or a thread, past other messages and
// pages; the first attempt never searches; a retry whose search Slack
// refuses (no history scope) posts.
func TestPostMessageRetried(t *testing.T) {
	attempt := func(f *slackfake.Fake, n int, key string, with map[string]any) (map[string]any, error) {
		w, err := connectortest.With(slackactions.PostMessage, with)
		require.NoError(t, err)
		return slackactions.PostMessage.Action.Run(context.Background(), &connector.Request{Recipe: "r", RunID: "run-1", Step: "s",
			With: w, Connection: connection(t, f.URL()), IdempotencyKey: key, Attempt: n, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	for _, tc := range []struct {
		name string
		with map[string]any
	}{
		{"in a channel, by name", map[string]any{"channel": "#general", "text": "deployed"}},
		{"in a thread", map[string]any{"channel": "C0GENERAL01", "text": "deployed", "thread_ts": "THREAD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := slackfake.New(token)
			defer f.Stop()
			if tc.with["thread_ts"] != nil {
				parent, err := attempt(f, 1, "run-0:parent", map[string]any{"channel": "general", "text": "parent"})
				require.NoError(t, err)
				tc.with["thread_ts"] = parent["ts"]
			}
			f.Fail("chat.postMessage", slackfake.Failure{Status: http.StatusServiceUnavailable, After: true})
			_, err := attempt(f, 1, "run-1:s", tc.with)
			require.True(t, connector.Classify(err).Retryable, "%v", err)
			require.Empty(t, f.Calls("conversations.history"), "a first attempt does not search")
			require.Empty(t, f.Calls("conversations.replies"))
			first := f.Messages()[len(f.Messages())-1]
			var md map[string]any
			require.NoError(t, json.Unmarshal([]byte(first.Metadata), &md))
			require.Equal(t, "sous_step", md["event_type"])
			require.NotContains(t, first.Metadata, "run-1", "the key is hashed")
			// other steps' messages after it, over more than one page
			for i := range 250 {
				_, err := attempt(f, 1, fmt.Sprintf("run-2:s%d", i), tc.with)
				require.NoError(t, err)
			}
			n := len(f.Messages())
			out, err := attempt(f, 2, "run-1:s", tc.with)
			require.NoError(t, err)
			require.Len(t, f.Messages(), n, "the retry posted nothing")
			require.Equal(t, first.TS, out["ts"])
			require.Equal(t, true, out["existed"])
			require.NoError(t, connectortest.Conforms(slackactions.PostMessage.Shape, out))
			out, err = attempt(f, 2, "run-3:s", tc.with)
			require.NoError(t, err)
			require.Len(t, f.Messages(), n+1, "a retry whose first attempt posted nothing posts")
			require.Equal(t, false, out["existed"])
			noToken(t, f)
		})
	}
	t.Run("the search is refused", func(t *testing.T) {
		f := slackfake.New(token)
		defer f.Stop()
		f.Fail("conversations.history", slackfake.Failure{Error: "missing_scope"})
		out, err := attempt(f, 2, "run-1:s", map[string]any{"channel": "general", "text": "x"})
		require.NoError(t, err)
		require.Len(t, f.Messages(), 1)
		require.Equal(t, false, out["existed"])
	})
}

func TestPostMessageErrors(t *testing.T) {
	tests := []struct {
		name      string
		with      map[string]any
		fail      []slackfake.Failure
		token     string
		retryable bool
		reason    connector.Reason
		after     time.Duration
		msg       string
	}{
		{name: "429 with Retry-After", fail: []slackfake.Failure{{Status: 429, Header: map[string]string{"Retry-After": "3"}}},
			retryable: true, reason: connector.ReasonRateLimited, after: 3 * time.Second},
		{name: "ok:false ratelimited", fail: []slackfake.Failure{{Error: "ratelimited"}}, retryable: true, reason: connector.ReasonRateLimited},
		{name: "503", fail: []slackfake.Failure{{Status: 503}}, retryable: true, reason: connector.ReasonServerError},
		{name: "internal_error", fail: []slackfake.Failure{{Error: "internal_error"}}, retryable: true, reason: connector.ReasonServerError},
		{name: "invalid_auth", token: "xoxb-another", reason: connector.ReasonAuth, msg: "invalid_auth"},
		{name: "token_revoked", fail: []slackfake.Failure{{Error: "token_revoked"}}, reason: connector.ReasonAuth, msg: "token_revoked"},
		{name: "not_authed", fail: []slackfake.Failure{{Error: "not_authed"}}, reason: connector.ReasonAuth},
		{name: "channel_not_found names the channel", with: map[string]any{"channel": "#nowhere", "text": "x"},
			reason: connector.ReasonNotFound, msg: `channel_not_found: channel "#nowhere"`},
		{name: "other ok:false", fail: []slackfake.Failure{{Error: "msg_too_long"}}, reason: connector.ReasonClientError, msg: "msg_too_long"},
		{name: "not_in_channel names the channel", fail: []slackfake.Failure{{Error: "not_in_channel"}}, reason: connector.ReasonClientError, msg: "not_in_channel"},
		{name: "another thing not found", fail: []slackfake.Failure{{Error: "user_not_found"}}, reason: connector.ReasonNotFound, msg: "user_not_found"},
		{name: "neither text nor blocks", with: map[string]any{"channel": "general"}, reason: connector.ReasonInvalid},
		{name: "bad blocks", with: map[string]any{"channel": "general", "blocks": []any{map[string]any{"type": 5}}}, reason: connector.ReasonInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := slackfake.New(token)
			defer f.Stop()
			if tc.token != "" {
				f.Token = tc.token
			}
			f.Fail("chat.postMessage", tc.fail...)
			with := tc.with
			if with == nil {
				with = map[string]any{"channel": "general", "text": "hello"}
			}
			_, err := run(t, slackactions.PostMessage, connection(t, f.URL()), with)
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tc.retryable, ce.Retryable, "%v", err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.after, ce.RetryAfter)
			require.Contains(t, err.Error(), tc.msg)
			require.NotContains(t, err.Error(), token)
			require.Empty(t, f.Messages())
		})
	}
}

func TestUpdateMessage(t *testing.T) {
	f := slackfake.New(token)
	defer f.Stop()
	conn := connection(t, f.URL())
	posted, err := run(t, slackactions.PostMessage, conn, map[string]any{"channel": "general", "text": "deploying"})
	require.NoError(t, err)
	out, err := run(t, slackactions.UpdateMessage, conn, map[string]any{"channel": "#general", "ts": posted["ts"], "text": "deployed"})
	require.NoError(t, err)
	require.Equal(t, posted["ts"], out["ts"])
	require.Equal(t, "C0GENERAL01", out["channel"])
	require.NotEmpty(t, out["permalink"])
	require.Equal(t, "deployed", f.Messages()[0].Text)
	up := f.Calls("chat.update")
	require.Len(t, up, 1)
	require.Equal(t, "C0GENERAL01", up[0].Form.Get("channel"), "the name is resolved to the id chat.update needs")
	noToken(t, f)

	_, err = run(t, slackactions.UpdateMessage, conn, map[string]any{"channel": "general", "ts": "1.2", "text": "x"})
	require.ErrorContains(t, err, "message_not_found")
	require.False(t, connector.Classify(err).Retryable)
	_, err = run(t, slackactions.UpdateMessage, conn, map[string]any{"channel": "#nowhere", "ts": "1.2", "text": "x"})
	require.ErrorContains(t, err, `channel_not_found: channel "#nowhere"`)
}

// TestPermalinkBestEffort: a message posted or updated is a success even
// when chat.getPermalink fails (stock slacktest has no handler for it):
// the permalink is empty and a warning logged.
func TestPermalinkBestEffort(t *testing.T) {
	for _, fail := range []struct {
		name string
		f    slackfake.Failure
	}{
		{"no such method (404)", slackfake.Failure{Status: http.StatusNotFound}},
		{"503", slackfake.Failure{Status: http.StatusServiceUnavailable}},
		{"ok:false", slackfake.Failure{Error: "internal_error"}},
	} {
		for _, spec := range []*connector.Spec{slackactions.PostMessage, slackactions.UpdateMessage} {
			t.Run(fail.name+"/"+spec.ID, func(t *testing.T) {
				f := slackfake.New(token)
				defer f.Stop()
				conn := connection(t, f.URL())
				with := map[string]any{"channel": "#general", "text": "deploying"}
				if spec == slackactions.UpdateMessage {
					posted, err := run(t, slackactions.PostMessage, conn, with)
					require.NoError(t, err)
					with = map[string]any{"channel": "#general", "ts": posted["ts"], "text": "deployed"}
				}
				f.Fail("chat.getPermalink", fail.f)
				w, err := connectortest.With(spec, with)
				require.NoError(t, err)
				var logs bytes.Buffer
				out, err := spec.Action.Run(context.Background(), &connector.Request{Recipe: "r", RunID: "run-2", Step: "s", With: w,
					Connection: conn, IdempotencyKey: "run-2:s", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				require.NoError(t, err, "the message is posted: the step succeeds")
				require.Equal(t, "", out["permalink"])
				require.Equal(t, "C0GENERAL01", out["channel"])
				msgs := f.Messages()
				require.Len(t, msgs, 1)
				require.Equal(t, msgs[0].TS, out["ts"])
				require.Equal(t, with["text"], msgs[0].Text)
				require.Contains(t, logs.String(), "level=WARN")
				require.Contains(t, logs.String(), "no permalink")
				require.NotContains(t, logs.String(), token)
			})
		}
	}
}

func TestUploadFile(t *testing.T) {
	binary := []byte{0, 1, 2, 0xff, 'P', 'N', 'G'}
	tests := []struct {
		name string
		with map[string]any
		want []byte
	}{
		{name: "text to a channel", with: map[string]any{"channel": "#general", "filename": "report.csv", "content": "a,b\n1,2\n",
			"title": "Weekly", "initial_comment": "numbers"}, want: []byte("a,b\n1,2\n")},
		{name: "binary, not shared", with: map[string]any{"filename": "x.png", "content_base64": base64.StdEncoding.EncodeToString(binary)}, want: binary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := slackfake.New(token)
			defer f.Stop()
			out, err := run(t, slackactions.UploadFile, connection(t, f.URL()), tc.with)
			require.NoError(t, err)
			files := f.Files()
			require.Len(t, files, 1)
			fl := files[out["file_id"].(string)]
			require.Equal(t, tc.want, fl.Content, "byte for byte")
			require.True(t, fl.Completed)
			require.Equal(t, "https://fake.slack.test/files/"+fl.ID+"/"+fl.Name, out["permalink"])
			require.Equal(t, len(tc.want), out["size"])
			get := f.Calls("files.getUploadURLExternal")
			require.Len(t, get, 1)
			require.Equal(t, tc.with["filename"], get[0].Form.Get("filename"))
			require.Equal(t, len(tc.want), atoi(get[0].Form.Get("length")))
			done := f.Calls("files.completeUploadExternal")
			require.Len(t, done, 1)
			if tc.with["channel"] != nil {
				require.Equal(t, "C0GENERAL01", done[0].Form.Get("channel_id"))
				require.Equal(t, "C0GENERAL01", out["channel"])
				require.Equal(t, "numbers", done[0].Form.Get("initial_comment"))
				require.Equal(t, "Weekly", fl.Title)
			} else {
				require.False(t, done[0].Form.Has("channel_id"))
			}
			up := f.Calls("upload")
			require.Len(t, up, 1)
			require.Equal(t, "Bearer "+token, up[0].Auth)
			noToken(t, f)
		})
	}
	t.Run("empty", func(t *testing.T) {
		f := slackfake.New(token)
		defer f.Stop()
		_, err := run(t, slackactions.UploadFile, connection(t, f.URL()), map[string]any{"filename": "x"})
		require.Equal(t, connector.ReasonInvalid, connector.Classify(err).Reason)
		require.Empty(t, f.Calls("files.getUploadURLExternal"))
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestCreateChannelTwice: a Slack channel created twice gives one
// channel; the second run finds it through conversations.list's pages.
func TestCreateChannelTwice(t *testing.T) {
	f := slackfake.New(token, slackfake.Channel{ID: "C0GENERAL01", Name: "general"},
		slackfake.Channel{ID: "C0RANDOM001", Name: "random"}, slackfake.Channel{ID: "C0OPS000001", Name: "ops"})
	defer f.Stop()
	conn := connection(t, f.URL())
	first, err := run(t, slackactions.CreateChannel, conn, map[string]any{"name": "incident-42"})
	require.NoError(t, err)
	require.Equal(t, true, first["created"])
	second, err := run(t, slackactions.CreateChannel, conn, map[string]any{"name": "#incident-42"})
	require.NoError(t, err)
	require.Equal(t, false, second["created"])
	require.Equal(t, first["id"], second["id"])
	n := 0
	for _, ch := range f.Channels() {
		if ch.Name == "incident-42" {
			n++
		}
	}
	require.Equal(t, 1, n, "one channel")
	require.Len(t, f.Calls("conversations.list"), 2, "the existing channel is on the second page")
	noToken(t, f)

	_, err = run(t, slackactions.CreateChannel, conn, map[string]any{"name": "ops", "is_private": true})
	require.NoError(t, err)
	f.Fail("conversations.create", slackfake.Failure{Error: "name_taken"})
	_, err = run(t, slackactions.CreateChannel, conn, map[string]any{"name": "hidden"})
	require.ErrorContains(t, err, "cannot see")
	require.Equal(t, connector.ReasonConflict, connector.Classify(err).Reason, "%v", err)
}

// proxy is an http.Handler in front of the fake, for the kit (which
// injects failures in front of the handler it is given).
func proxy(t *testing.T) http.Handler {
	f := slackfake.New("")
	t.Cleanup(f.Stop)
	u, err := url.Parse(f.URL())
	require.NoError(t, err)
	return httputil.NewSingleHostReverseProxy(u)
}

// TestKit runs the shared action checks on each Slack action.
func TestKit(t *testing.T) {
	kits := []connectortest.Kit{
		{Spec: slackactions.PostMessage, With: map[string]any{"channel": "#general", "text": "hello"}},
		{Spec: slackactions.UpdateMessage, With: map[string]any{"channel": "C0GENERAL01", "ts": "1.2", "text": "x"}},
		{Spec: slackactions.UploadFile, With: map[string]any{"channel": "general", "filename": "a.txt", "content": "hi"}},
		{Spec: slackactions.CreateChannel, With: map[string]any{"name": "kit-channel"}},
	}
	for _, k := range kits {
		t.Run(k.Spec.ID, func(t *testing.T) {
			k.Connection = map[string]any{"token": "set-by-the-kit"}
			k.Fake = proxy(t)
			if k.Spec == slackactions.UpdateMessage {
				k.Fake = seeded(t)
			}
			connectortest.Run(t, k)
		})
	}
}

// seeded is a fake holding message 1.2 in #general, for chat.update.
func seeded(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chat.update":
			_, _ = io.WriteString(w, `{"ok":true,"channel":"C0GENERAL01","ts":"1.2","text":"x"}`)
		case "/chat.getPermalink":
			_, _ = io.WriteString(w, `{"ok":true,"channel":"C0GENERAL01","permalink":"https://fake.slack.test/archives/C0GENERAL01/p12"}`)
		default:
			http.NotFound(w, r)
		}
	})
}
