package zoom_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/clients/zoom"
)

const secret = "zoom-secret-token-0123456789"

func vector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

func TestSign(t *testing.T) {
	// computed independently: printf 'v0:1739923528:{"a":1}' | openssl dgst -sha256 -hmac secret
	got := zoom.Sign("secret", "1739923528", []byte(`{"a":1}`))
	require.Equal(t, "v0=220676373f55d4e38f23e70db18b0684bfadeb3b7c8517cabd7b508588746d40", got)
	require.NotEqual(t, got, zoom.Sign("secret", "1739923529", []byte(`{"a":1}`)), "the timestamp is signed")
	require.NotEqual(t, got, zoom.Sign("secret", "1739923528", []byte(`{"a":2}`)), "the body is signed")
	require.NotEqual(t, got, zoom.Sign("secreT", "1739923528", []byte(`{"a":1}`)), "the key counts")
}

func TestVerify(t *testing.T) {
	body := vector(t, "zoom_meeting_ended.json")
	now := time.Unix(1739923528, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := zoom.Sign(secret, ts, body)
	tests := []struct {
		name   string
		secret string
		sig    string
		ts     string
		now    time.Time
		window time.Duration
		body   []byte
		want   error
	}{
		{name: "right", secret: secret, sig: good, ts: ts, now: now},
		{name: "right, 4 min late", secret: secret, sig: good, ts: ts, now: now.Add(4 * time.Minute)},
		{name: "right, 4 min early", secret: secret, sig: good, ts: ts, now: now.Add(-4 * time.Minute)},
		{name: "stale", secret: secret, sig: good, ts: ts, now: now.Add(5*time.Minute + time.Second), want: zoom.ErrStale},
		{name: "future", secret: secret, sig: good, ts: ts, now: now.Add(-6 * time.Minute), want: zoom.ErrStale},
		{name: "a window of 10 min", secret: secret, sig: good, ts: ts, now: now.Add(9 * time.Minute), window: 10 * time.Minute},
		{name: "a window of 30 s", secret: secret, sig: good, ts: ts, now: now.Add(31 * time.Second), window: 30 * time.Second, want: zoom.ErrStale},
		{name: "wrong secret", secret: "other", sig: good, ts: ts, now: now, want: zoom.ErrBadSignature},
		{name: "no secret", secret: "", sig: good, ts: ts, now: now, want: zoom.ErrNoSecret},
		{name: "body changed", secret: secret, sig: good, ts: ts, now: now, body: append([]byte(" "), body...), want: zoom.ErrBadSignature},
		{name: "timestamp changed", secret: secret, sig: good, ts: strconv.FormatInt(now.Unix()+1, 10), now: now, want: zoom.ErrBadSignature},
		{name: "no signature", secret: secret, ts: ts, now: now, want: zoom.ErrNoSignature},
		{name: "no timestamp", secret: secret, sig: good, now: now, want: zoom.ErrNoSignature},
		{name: "timestamp in ms", secret: secret, sig: good, ts: ts + "000", now: now, want: zoom.ErrStale},
		{name: "timestamp not a number", secret: secret, sig: good, ts: "yesterday", now: now, want: zoom.ErrBadTimestamp},
		{name: "huge timestamp", secret: secret, sig: good, ts: "9223372036854775807", now: now, want: zoom.ErrStale},
		{name: "no v0= prefix", secret: secret, sig: good[3:], ts: ts, now: now, want: zoom.ErrBadSignature},
		{name: "sha256= prefix", secret: secret, sig: "sha256=" + good[3:], ts: ts, now: now, want: zoom.ErrBadSignature},
		{name: "not hex", secret: secret, sig: "v0=zz", ts: ts, now: now, want: zoom.ErrBadSignature},
		{name: "upper-case hex", secret: secret, sig: "v0=" + upper(good[3:]), ts: ts, now: now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.sig != "" {
				h.Set(zoom.HeaderSignature, tc.sig)
			}
			if tc.ts != "" {
				h.Set(zoom.HeaderTimestamp, tc.ts)
			}
			b := body
			if tc.body != nil {
				b = tc.body
			}
			err := zoom.Verify(tc.secret, h, b, tc.now, tc.window)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.NotContains(t, err.Error(), secret)
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestSignedHeader(t *testing.T) {
	body := vector(t, "zoom_meeting_ended.json")
	now := time.Now()
	h := zoom.SignedHeader(secret, body, now)
	require.NoError(t, zoom.Verify(secret, h, body, now, 0))
	require.Equal(t, strconv.FormatInt(now.Unix(), 10), h.Get("x-zm-request-timestamp"))
}

func TestEncryptToken(t *testing.T) {
	// HMAC-SHA256 of the doc's plainToken under the test secret, as
	// Zoom's sample computes it (crypto.createHmac('sha256', secret).update(plainToken).digest('hex'))
	got := zoom.EncryptToken(secret, "qgg8vlvZRS6UYooatFL8Aw")
	require.Len(t, got, 64)
	require.Equal(t, got, zoom.EncryptToken(secret, "qgg8vlvZRS6UYooatFL8Aw"))
	require.NotEqual(t, got, zoom.EncryptToken("other", "qgg8vlvZRS6UYooatFL8Aw"))
	// RFC 4231 test case 2 (key "Jefe"), which fixes the algorithm and encoding
	require.Equal(t, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
		zoom.EncryptToken("Jefe", "what do ya want for nothing?"))
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		event   string
		id      any
		key     string
		plain   string
		wantErr string
	}{
		{name: "meeting.ended, id a string", body: vector(t, "zoom_meeting_ended.json"), event: "meeting.ended", id: "85343498290",
			key: "meeting.ended|1739923528123|4444AAAiAAAAAiAiAiiAii==|85343498290"},
		{name: "recording.completed, id a number", body: vector(t, "zoom_recording_completed.json"), event: "recording.completed", id: "85343498290",
			key: "recording.completed|1739926000456|4444AAAiAAAAAiAiAiiAii==|85343498290"},
		{name: "participant", body: vector(t, "zoom_participant_joined.json"), event: "meeting.participant_joined", id: "85343498290",
			key: "meeting.participant_joined|1739923600000|4444AAAiAAAAAiAiAiiAii==|85343498290|p4rt-uu1d|2025-02-19T00:01:00Z|"},
		{name: "a big id keeps its digits", body: []byte(`{"event":"x.y","event_ts":1,"payload":{"object":{"id":12345678901234567890}}}`),
			event: "x.y", id: "12345678901234567890", key: "x.y|1||12345678901234567890"},
		{name: "no object", body: []byte(`{"event":"x.y","event_ts":1,"payload":{}}`), event: "x.y", key: "x.y|1||"},
		{name: "url validation", body: vector(t, "zoom_url_validation.json"), event: zoom.EventURLValidation, plain: "qgg8vlvZRS6UYooatFL8Aw"},
		{name: "url validation without a token", body: []byte(`{"event":"endpoint.url_validation","payload":{}}`), wantErr: "plainToken"},
		{name: "not JSON", body: []byte(`nope`), wantErr: "not a JSON object"},
		{name: "a list", body: []byte(`[1]`), wantErr: "not a JSON object"},
		{name: "two values", body: []byte(`{"event":"a.b"} {}`), wantErr: "more than one"},
		{name: "no event", body: []byte(`{"payload":{}}`), wantErr: "no event name"},
		{name: "payload not an object", body: []byte(`{"event":"a.b","payload":3}`), wantErr: "payload is not an object"},
		{name: "id an object", body: []byte(`{"event":"a.b","payload":{"object":{"id":{}}}}`), wantErr: "neither a string nor a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := zoom.Parse(tc.body)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.event, d.Event)
			require.Equal(t, tc.plain, d.PlainToken)
			if tc.plain != "" {
				return
			}
			require.Equal(t, tc.key, d.DedupKey)
			object, _ := d.Payload["payload"].(map[string]any)["object"].(map[string]any)
			require.Equal(t, tc.id, object["id"])
			var again map[string]any
			require.NoError(t, json.Unmarshal(d.JSON, &again))
			require.Equal(t, d.Payload, again, "Payload is what JSON decodes to")
		})
	}
}

func TestParseRecording(t *testing.T) {
	d, err := zoom.Parse(vector(t, "zoom_recording_completed.json"))
	require.NoError(t, err)
	require.Equal(t, "dl-t0ken-abc", d.Payload["download_token"])
	files := d.Payload["payload"].(map[string]any)["object"].(map[string]any)["recording_files"].([]any)
	require.Len(t, files, 1)
	require.Equal(t, "https://example.zoom.us/rec/download/abc", files[0].(map[string]any)["download_url"])
}

// FuzzVerify: no input panics, and only the right signature within the
// window verifies.
func FuzzVerify(f *testing.F) {
	body := vector(f, "zoom_meeting_ended.json")
	f.Add(body, "1739923528", zoom.Sign(secret, "1739923528", body), int64(0))
	f.Add([]byte("{}"), "-1", "v0=", int64(1<<62))
	f.Add([]byte(""), "9223372036854775807", "v0=00", int64(-1<<62))
	f.Fuzz(func(t *testing.T, body []byte, ts, sig string, skew int64) {
		h := http.Header{}
		h.Set(zoom.HeaderSignature, sig)
		h.Set(zoom.HeaderTimestamp, ts)
		sec, _ := strconv.ParseInt(ts, 10, 64)
		err := zoom.Verify(secret, h, body, time.Unix(sec, 0).Add(time.Duration(skew%int64(time.Hour))), 0)
		if err == nil && sig != zoom.Sign(secret, ts, body) && upper(sig[3:]) != upper(zoom.Sign(secret, ts, body)[3:]) {
			t.Fatalf("a wrong signature verified: %q", sig)
		}
	})
}

// FuzzParse: no body panics the parser, and an event it accepts has a
// string id (or none) and JSON that decodes to its Payload.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"zoom_meeting_ended.json", "zoom_url_validation.json", "zoom_recording_completed.json", "zoom_participant_joined.json"} {
		f.Add(vector(f, name))
	}
	f.Add([]byte(`{"event":"a.b","payload":{"object":{"id":1e400}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := zoom.Parse(body)
		if err != nil || d.PlainToken != "" {
			return
		}
		payload, _ := d.Payload["payload"].(map[string]any)
		if object, ok := payload["object"].(map[string]any); ok {
			if id, ok := object["id"]; ok {
				if _, ok := id.(string); !ok {
					t.Fatalf("id %v is a %T", id, id)
				}
			}
		}
		var again map[string]any
		if err := json.Unmarshal(d.JSON, &again); err != nil {
			t.Fatalf("the event's JSON does not decode: %v", err)
		}
	})
}
