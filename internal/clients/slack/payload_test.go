package slack

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

const messageBody = `{"token":"vtok","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"Ev1","event_time":1700000000,` +
	`"event":{"type":"message","channel":"C0123456789","user":"U1","text":"hello","ts":"1700000000.000100","event_ts":"1700000000.000100","channel_type":"channel"}}`

const interactionPayload = `{"type":"block_actions","token":"vtok","trigger_id":"tr-1","response_url":"https://hooks.slack.test/actions/1",` +
	`"user":{"id":"U1","username":"ana","team_id":"T1"},"channel":{"id":"C1","name":"ops"},"team":{"id":"T1","domain":"acme"},` +
	`"actions":[{"action_id":"approve","block_id":"b1","type":"button","value":"yes","action_ts":"1700000000.1"}]}`

func TestParseRequest(t *testing.T) {
	slash := url.Values{"token": {"vtok"}, "command": {"/ticket"}, "text": {"printer on fire"}, "user_id": {"U1"},
		"channel_id": {"C1"}, "channel_name": {"ops"}, "trigger_id": {"tr-9"}, "response_url": {"https://hooks.slack.test/commands/1"}}
	view := `{"type":"view_submission","trigger_id":"tr-2","user":{"id":"U2"},"view":{"id":"V1","callback_id":"new_ticket","state":{"values":{}}}}`
	tests := []struct {
		name    string
		h       http.Header
		body    string
		kind    string
		typ     string
		dedup   string
		payload map[string]any
		err     string
	}{
		{name: "url_verification", body: urlVerifBody, kind: KindURLVerification},
		{name: "message", body: messageBody, h: http.Header{HeaderRetryNum: {"2"}, HeaderRetryCause: {"http_timeout"}},
			kind: KindEvent, typ: "message", dedup: "Ev1",
			payload: map[string]any{"text": "hello", "channel": "C0123456789", "event_id": "Ev1", "team_id": "T1", "retry_num": 2, "retry_reason": "http_timeout"}},
		{name: "app_mention of slack-go's vector", body: goBody, kind: KindEvent, typ: "app_mention", dedup: "TvBP7LRED7",
			payload: map[string]any{"retry_num": 0, "retry_reason": "", "channel": "TTTTTTTTT"}},
		{name: "slash command", body: slash.Encode(), kind: KindSlashCommand, typ: KindSlashCommand, dedup: "tr-9",
			payload: map[string]any{"command": "/ticket", "text": "printer on fire", "channel_name": "ops"}},
		{name: "slack's official slash command", body: officialBody, kind: KindSlashCommand, typ: KindSlashCommand,
			dedup: "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c", payload: map[string]any{"command": "/webhook-collect", "user_name": "roadrunner"}},
		{name: "block action", body: url.Values{"payload": {interactionPayload}}.Encode(), kind: KindInteraction, typ: "block_actions", dedup: "tr-1",
			payload: map[string]any{"action_id": "approve", "action_value": "yes", "response_url": "https://hooks.slack.test/actions/1"}},
		{name: "view submission", body: url.Values{"payload": {view}}.Encode(), kind: KindInteraction, typ: "view_submission", dedup: "tr-2",
			payload: map[string]any{"callback_id": "new_ticket", "action_id": ""}},
		{name: "rate limited", body: `{"token":"x","type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820}`, kind: KindRateLimited},
		{name: "ssl_check", body: "ssl_check=1&token=vtok", kind: KindSSLCheck},
		{name: "not JSON", body: `{"type":`, err: "not an Events API request"},
		{name: "no type", body: `{}`, err: "no type"},
		{name: "unknown type", body: `{"type":"nope"}`, err: "unknown Events API request type"},
		{name: "callback without event", body: `{"type":"event_callback","event_id":"E"}`, err: "without an event"},
		{name: "event not an object", body: `{"type":"event_callback","event_id":"E","event":[1]}`, err: "not an object"},
		{name: "event without type", body: `{"type":"event_callback","event_id":"E","event":{"text":"x"}}`, err: "has no type"},
		{name: "no event_id", body: `{"type":"event_callback","event":{"type":"message"}}`, err: "without an event_id"},
		{name: "challenge missing", body: `{"type":"url_verification"}`, err: "without a challenge"},
		{name: "form without command", body: "text=x", err: "no command"},
		{name: "interaction not JSON", body: "payload=%7B", err: "not valid"},
		{name: "interaction without type", body: "payload=%7B%7D", err: "no type"},
		{name: "bad form", body: "a=%zz", err: "neither JSON nor a form"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			if h == nil {
				h = http.Header{}
			}
			d, err := ParseRequest(h, []byte(tc.body))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.kind, d.Kind)
			require.Equal(t, tc.typ, d.Type)
			require.Equal(t, tc.dedup, d.DedupKey)
			for k, v := range tc.payload {
				require.Equal(t, v, d.Payload[k], k)
			}
			if d.Payload != nil {
				require.NotContains(t, d.Payload, "token", "Slack's verification token is not kept")
			}
			if tc.kind == KindURLVerification {
				require.Equal(t, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", d.Challenge)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(messageBody))
	f.Add([]byte(goBody))
	f.Add([]byte(urlVerifBody))
	f.Add([]byte(officialBody))
	f.Add([]byte(url.Values{"payload": {interactionPayload}}.Encode()))
	f.Add([]byte(`{"type":"event_callback","event_id":"E","event":{"type":"reaction_added","item":{"channel":"C1"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := ParseRequest(http.Header{HeaderRetryNum: {"x"}}, body)
		if err != nil {
			return
		}
		switch d.Kind {
		case KindEvent, KindSlashCommand, KindInteraction:
			if d.Payload == nil || d.Type == "" {
				t.Fatalf("a %s without payload or type", d.Kind)
			}
		case KindURLVerification:
			if d.Challenge == "" {
				t.Fatal("a url_verification without challenge")
			}
		case KindRateLimited, KindSSLCheck:
		default:
			t.Fatalf("kind %q", d.Kind)
		}
	})
}
