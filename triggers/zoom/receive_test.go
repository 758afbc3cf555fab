package zoom

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	zc "github.com/sous-run/sous/internal/clients/zoom"
)

const secret = "zoom-secret-token-0123456789"

func vector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../internal/clients/zoom/testdata/" + name)
	require.NoError(t, err)
	return b
}

func incoming(body []byte, h http.Header, now time.Time, with connector.Values) *connector.Incoming {
	return &connector.Incoming{Method: http.MethodPost, Path: "/zoom/zoom", Header: h, Body: body, Now: now,
		Connection: &connector.Connection{Name: "zoom", Type: "zoom", Values: with}}
}

func TestReceive(t *testing.T) {
	now := time.Now()
	conn := connector.Values{zc.FieldWebhookSecret: secret}
	ended := vector(t, "zoom_meeting_ended.json")
	tests := []struct {
		name       string
		body       []byte
		header     http.Header
		with       connector.Values
		now        time.Time
		status     int
		code       string
		types      []string
		replyJSON  string
		replyCode  int
		wantObject map[string]any
	}{
		{name: "meeting.ended", body: ended, header: zc.SignedHeader(secret, ended, now), with: conn,
			types: []string{"zoom.meeting_ended", "zoom.event"}, replyJSON: `{"status":"received"}`, replyCode: 200},
		{name: "recording.completed", body: vector(t, "zoom_recording_completed.json"),
			header: zc.SignedHeader(secret, vector(t, "zoom_recording_completed.json"), now), with: conn,
			types: []string{"zoom.recording_completed", "zoom.event"}, replyJSON: `{"status":"received"}`, replyCode: 200},
		{name: "another event goes to zoom.event only", body: []byte(`{"event":"meeting.created","event_ts":1,"payload":{"object":{"id":5}}}`),
			header: zc.SignedHeader(secret, []byte(`{"event":"meeting.created","event_ts":1,"payload":{"object":{"id":5}}}`), now), with: conn,
			types: []string{"zoom.event"}, replyJSON: `{"status":"received"}`, replyCode: 200},
		{name: "url validation", body: vector(t, "zoom_url_validation.json"), header: zc.SignedHeader(secret, vector(t, "zoom_url_validation.json"), now), with: conn,
			replyCode: 200, replyJSON: `{"plainToken":"qgg8vlvZRS6UYooatFL8Aw","encryptedToken":"` + zc.EncryptToken(secret, "qgg8vlvZRS6UYooatFL8Aw") + `"}`},
		{name: "url validation with a wrong signature", body: vector(t, "zoom_url_validation.json"),
			header: zc.SignedHeader("wrong", vector(t, "zoom_url_validation.json"), now), with: conn, status: 401, code: "bad_signature"},
		{name: "wrong signature", body: ended, header: zc.SignedHeader("wrong", ended, now), with: conn, status: 401, code: "bad_signature"},
		{name: "missing headers", body: ended, header: http.Header{}, with: conn, status: 401, code: "missing_signature"},
		{name: "stale", body: ended, header: zc.SignedHeader(secret, ended, now.Add(-6*time.Minute)), with: conn, status: 401, code: "stale_timestamp"},
		{name: "within a wider window", body: ended, header: zc.SignedHeader(secret, ended, now.Add(-6*time.Minute)),
			with:  connector.Values{zc.FieldWebhookSecret: secret, zc.FieldSignatureWindow: 10 * time.Minute},
			types: []string{"zoom.meeting_ended", "zoom.event"}, replyJSON: `{"status":"received"}`, replyCode: 200},
		{name: "outside a narrower window", body: ended, header: zc.SignedHeader(secret, ended, now.Add(-time.Minute)),
			with: connector.Values{zc.FieldWebhookSecret: secret, zc.FieldSignatureWindow: "30s"}, status: 401, code: "stale_timestamp"},
		{name: "a connection without a secret refuses all", body: ended, header: zc.SignedHeader("", ended, now),
			with: connector.Values{}, status: 401, code: "no_secret"},
		{name: "signed garbage", body: []byte(`{"event":`), header: zc.SignedHeader(secret, []byte(`{"event":`), now), with: conn, status: 400, code: "bad_body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := receiver{}.Receive(context.Background(), incoming(tc.body, tc.header, now, tc.with))
			if tc.status != 0 {
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
				require.NotEmpty(t, ev.DedupKey)
				var decoded map[string]any
				require.NoError(t, json.Unmarshal(ev.JSON, &decoded))
				require.Equal(t, decoded, ev.Payload)
				id := ev.Payload["payload"].(map[string]any)["object"].(map[string]any)["id"]
				require.IsType(t, "", id, "the id is a string")
			}
			require.Equal(t, tc.types, types)
			require.NotNil(t, got.Reply)
			require.Equal(t, tc.replyCode, got.Reply.Status)
			require.JSONEq(t, tc.replyJSON, string(got.Reply.Body))
		})
	}
}

func TestEventMatch(t *testing.T) {
	ev := &connector.Event{Payload: map[string]any{"event": "meeting.created"}}
	require.True(t, Event.Trigger.Match(connector.Values{FieldEvent: "meeting.created"}, ev))
	require.False(t, Event.Trigger.Match(connector.Values{FieldEvent: "meeting.deleted"}, ev))
	require.False(t, Event.Trigger.Match(connector.Values{FieldEvent: "meeting.created"}, &connector.Event{}))
}

// FuzzReceive: no request panics the receiver; what it refuses is a
// Rejection with a 4xx, and what it accepts was signed right.
func FuzzReceive(f *testing.F) {
	now := time.Unix(1739923528, 0)
	for _, name := range []string{"zoom_meeting_ended.json", "zoom_url_validation.json", "zoom_recording_completed.json", "zoom_participant_joined.json"} {
		b := vector(f, name)
		f.Add(b, "1739923528", zc.Sign(secret, "1739923528", b))
	}
	f.Add([]byte(`{"event":"a.b","payload":{"object":{"id":[1]}}}`), "1739923528", "v0=00")
	f.Fuzz(func(t *testing.T, body []byte, ts, sig string) {
		h := http.Header{}
		h.Set(zc.HeaderTimestamp, ts)
		h.Set(zc.HeaderSignature, sig)
		// sign half of the inputs right, to reach the parser
		if len(body)%2 == 0 {
			h.Set(zc.HeaderSignature, zc.Sign(secret, ts, body))
		}
		got, err := receiver{}.Receive(context.Background(), incoming(body, h, now, connector.Values{zc.FieldWebhookSecret: secret}))
		if err != nil {
			var rej *connector.Rejection
			if !errorsAs(err, &rej) || rej.Status < 400 || rej.Status > 499 {
				t.Fatalf("not a 4xx rejection: %v", err)
			}
			return
		}
		if got.Reply == nil {
			t.Fatal("no reply")
		}
	})
}
