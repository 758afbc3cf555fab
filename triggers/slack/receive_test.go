package slack

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

const messageBody = `{"token":"vtok","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"Ev1","event_time":1700000000,` +
	`"event":{"type":"message","channel":"C0123456789","user":"U1","text":"hello","ts":"1700000000.000100","event_ts":"1700000000.000100"}}`

func incoming(body string, sign func(h http.Header, ts string), now time.Time, secret string) *connector.Incoming {
	h := http.Header{}
	ts := strconv.FormatInt(now.Unix(), 10)
	if sign != nil {
		sign(h, ts)
	} else {
		h.Set(sc.HeaderTimestamp, ts)
		h.Set(sc.HeaderSignature, sc.Sign(secret, ts, []byte(body)))
	}
	vals := connector.Values{"token": "xoxb-test"}
	if secret != "" {
		vals[sc.FieldSigningSecret] = secret
	}
	return &connector.Incoming{Method: http.MethodPost, Path: "/slack/acme", Header: h, Body: []byte(body), Now: now,
		Connection: &connector.Connection{Name: "acme", Type: "slack", Values: vals}}
}

func TestReceive(t *testing.T) {
	now := time.Unix(1700000000, 0)
	slash := url.Values{"command": {"/ticket"}, "text": {"fire"}, "trigger_id": {"tr-1"}, "channel_id": {"C1"}}.Encode()
	interaction := url.Values{"payload": {`{"type":"shortcut","callback_id":"new","trigger_id":"tr-2","user":{"id":"U1"}}`}}.Encode()
	tests := []struct {
		name   string
		in     *connector.Incoming
		status int    // a rejection's
		code   string // a rejection's
		types  []string
		dedup  string
		reply  string
	}{
		{name: "message", in: incoming(messageBody, nil, now, secret), types: []string{IDMessage, IDEvent}, dedup: "Ev1"},
		{name: "url_verification", in: incoming(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`, nil, now, secret),
			reply: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
		{name: "other event", in: incoming(`{"type":"event_callback","event_id":"Ev2","event":{"type":"channel_created","channel":{"id":"C9","name":"new"}}}`, nil, now, secret),
			types: []string{IDEvent}, dedup: "Ev2"},
		{name: "reaction", in: incoming(`{"type":"event_callback","event_id":"Ev3","event":{"type":"reaction_added","reaction":"eyes","item":{"channel":"C1"}}}`, nil, now, secret),
			types: []string{IDReactionAdded, IDEvent}, dedup: "Ev3"},
		{name: "slash command", in: incoming(slash, nil, now, secret), types: []string{IDSlashCommand}, dedup: "tr-1"},
		{name: "interaction", in: incoming(interaction, nil, now, secret), types: []string{IDInteraction}, dedup: "tr-2"},
		{name: "ssl_check", in: incoming("ssl_check=1&token=vtok", nil, now, secret), reply: ""},
		{name: "rate limited notice", in: incoming(`{"type":"app_rate_limited","team_id":"T1"}`, nil, now, secret), reply: ""},
		{name: "no signature", in: incoming(messageBody, func(h http.Header, ts string) { h.Set(sc.HeaderTimestamp, ts) }, now, secret),
			status: 401, code: "missing_signature"},
		{name: "wrong signature", in: incoming(messageBody, func(h http.Header, ts string) {
			h.Set(sc.HeaderTimestamp, ts)
			h.Set(sc.HeaderSignature, sc.Sign("another-secret", ts, []byte(messageBody)))
		}, now, secret), status: 401, code: "bad_signature"},
		{name: "stale", in: func() *connector.Incoming {
			in := incoming(messageBody, nil, now, secret)
			in.Now = now.Add(6 * time.Minute)
			return in
		}(), status: 401, code: "stale_timestamp"},
		{name: "no signing secret", in: incoming(messageBody, nil, now, ""), status: 401, code: "no_secret"},
		{name: "bad body, signed", in: incoming(`{"type":"event_callback"}`, nil, now, secret), status: 400, code: "bad_body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := receiver{}.Receive(context.Background(), tc.in)
			if tc.status != 0 {
				require.Nil(t, got)
				var rej *connector.Rejection
				require.ErrorAs(t, err, &rej)
				require.Equal(t, tc.status, rej.Status)
				require.Equal(t, tc.code, rej.Code)
				require.NotContains(t, rej.Message, secret)
				return
			}
			require.NoError(t, err)
			var types []string
			for _, ev := range got.Events {
				types = append(types, ev.Type)
				require.Equal(t, tc.dedup, ev.DedupKey)
				require.NotNil(t, ev.Payload)
			}
			require.Equal(t, tc.types, types)
			if tc.types == nil {
				require.NotNil(t, got.Reply)
				require.Equal(t, http.StatusOK, got.Reply.Status)
				require.Equal(t, tc.reply, string(got.Reply.Body))
			} else {
				require.Nil(t, got.Reply, "the recipes' triggers answer (Respond)")
				if tc.types[0] == IDSlashCommand || tc.types[0] == IDInteraction {
					require.NotNil(t, got.Ignored, "no recipe listening: an empty 200, not the engine's JSON")
					require.Empty(t, got.Ignored.Body)
				}
			}
		})
	}
}

func TestMatch(t *testing.T) {
	msg := map[string]any{"type": "message", "channel": "C1", "user": "U1", "text": "hi"}
	bot := map[string]any{"type": "message", "channel": "C1", "bot_id": "B1", "text": "hi"}
	botSub := map[string]any{"type": "message", "channel": "C1", "subtype": "bot_message"}
	reaction := map[string]any{"type": "reaction_added", "reaction": "eyes", "user": "U2", "item": map[string]any{"channel": "C1"}}
	slash := map[string]any{"command": "/ticket", "channel_id": "C1", "channel_name": "ops", "user_id": "U1"}
	action := map[string]any{"type": "block_actions", "action_id": "approve", "callback_id": "", "user": map[string]any{"id": "U1"},
		"channel": map[string]any{"id": "C1", "name": "ops"}}
	created := map[string]any{"type": "channel_created", "channel": map[string]any{"id": "C9", "name": "new"}}
	sub := func(s string) map[string]any {
		return map[string]any{"type": "message", "channel": "C1", "user": "U1", "text": "hi", "subtype": s}
	}
	tests := []struct {
		name    string
		id      string
		with    connector.Values
		payload map[string]any
		want    bool
	}{
		{"message, no options", IDMessage, nil, msg, true},
		{"message, its channel", IDMessage, connector.Values{"channel": "C1"}, msg, true},
		{"message, another channel", IDMessage, connector.Values{"channel": "C2"}, msg, false},
		{"message, its user", IDMessage, connector.Values{"user": "U1"}, msg, true},
		{"message, another user", IDMessage, connector.Values{"user": "U9"}, msg, false},
		{"bot message skipped", IDMessage, nil, bot, false},
		{"bot_message subtype skipped", IDMessage, nil, botSub, false},
		{"bot message asked for", IDMessage, connector.Values{"include_bots": true}, bot, true},
		{"a thread broadcast is a post", IDMessage, nil, sub("thread_broadcast"), true},
		{"a file share is a post", IDMessage, nil, sub("file_share"), true},
		{"an edit is no post", IDMessage, nil, sub("message_changed"), false},
		{"a deletion is no post", IDMessage, nil, sub("message_deleted"), false},
		{"a join is no post", IDMessage, nil, sub("channel_join"), false},
		{"a join asked for", IDMessage, connector.Values{"all_subtypes": true}, sub("channel_join"), true},
		{"slack.event of type message keeps every subtype", IDEvent, connector.Values{"type": "message"}, sub("message_deleted"), true},
		{"app_mention by a bot skipped", IDAppMention, nil, bot, false},
		{"reaction, its emoji with colons", IDReactionAdded, connector.Values{"reaction": ":eyes:", "channel": "C1"}, reaction, true},
		{"reaction, another emoji", IDReactionAdded, connector.Values{"reaction": "tada"}, reaction, false},
		{"slash, its command without slash", IDSlashCommand, connector.Values{"command": "ticket"}, slash, true},
		{"slash, its command", IDSlashCommand, connector.Values{"command": "/ticket", "channel": "#ops"}, slash, true},
		{"slash, another command", IDSlashCommand, connector.Values{"command": "/deploy"}, slash, false},
		{"slash, channel by name", IDSlashCommand, connector.Values{"channel": "ops"}, slash, true},
		{"slash, another channel name", IDSlashCommand, connector.Values{"channel": "general"}, slash, false},
		{"interaction, its action_id", IDInteraction, connector.Values{"action_id": "approve", "user": "U1", "channel": "ops"}, action, true},
		{"interaction, another action_id", IDInteraction, connector.Values{"action_id": "reject"}, action, false},
		{"interaction, its type", IDInteraction, connector.Values{"interaction_type": "block_actions"}, action, true},
		{"interaction, another type", IDInteraction, connector.Values{"interaction_type": "view_submission"}, action, false},
		{"interaction, a callback_id it lacks", IDInteraction, connector.Values{"callback_id": "x"}, action, false},
		{"event, its type", IDEvent, connector.Values{"type": "channel_created", "channel": "new"}, created, true},
		{"event, another type", IDEvent, connector.Values{"type": "member_joined_channel"}, created, false},
		{"no payload", IDMessage, nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, match(tc.id)(tc.with, &connector.Event{Type: tc.id, Payload: tc.payload}))
		})
	}
}

func TestRespond(t *testing.T) {
	blocks := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*ok*"}}}
	slash := &connector.Event{Type: IDSlashCommand, Payload: map[string]any{"command": "/x"}}
	tests := []struct {
		name string
		with connector.Values
		ev   *connector.Event
		body string
	}{
		{"no reply: an empty 200", nil, slash, ""},
		{"text", connector.Values{"reply_text": "On it"}, slash, `{"response_type":"ephemeral","text":"On it"}`},
		{"in channel with blocks", connector.Values{"reply_text": "ok", "reply_blocks": blocks, "response_type": "in_channel"}, slash,
			`{"blocks":[{"text":{"text":"*ok*","type":"mrkdwn"},"type":"section"}],"response_type":"in_channel","text":"ok"}`},
		{"a block action", connector.Values{"reply_text": "ok"}, &connector.Event{Type: IDInteraction, Payload: map[string]any{"type": "block_actions"}},
			`{"response_type":"ephemeral","text":"ok"}`},
		{"a view submission: an empty 200 closes the modal", connector.Values{"reply_text": "ok"},
			&connector.Event{Type: IDInteraction, Payload: map[string]any{"type": "view_submission"}}, ""},
		{"a message event", nil, &connector.Event{Type: IDMessage, Payload: map[string]any{"type": "message"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := respond(tc.with, tc.ev)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r.Status)
			require.Equal(t, tc.body, string(r.Body))
		})
	}
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte(messageBody), true)
	f.Add([]byte(url.Values{"command": {"/x"}}.Encode()), true)
	f.Add([]byte("payload=%7B%22type%22%3A%22shortcut%22%7D"), true)
	f.Add([]byte(`{"type":"url_verification","challenge":"c"}`), false)
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, body []byte, signed bool) {
		in := incoming(string(body), nil, now, secret)
		if !signed {
			in.Header.Set(sc.HeaderSignature, "v0=00")
		}
		got, err := receiver{}.Receive(context.Background(), in)
		if err != nil {
			var rej *connector.Rejection
			require.ErrorAs(t, err, &rej)
			require.True(t, rej.Status == 400 || rej.Status == 401)
			return
		}
		require.True(t, signed, "an unsigned request was accepted")
		for _, ev := range got.Events {
			if ev.Type == "" || ev.Payload == nil {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}
