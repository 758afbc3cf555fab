package httpx

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSignatures(t *testing.T) {
	body := []byte(`{"order":1}`)
	good := SignSHA256("s3cret", body)
	// a known vector: printf '{"order":1}' | openssl dgst -sha256 -hmac s3cret
	require.Equal(t, "sha256=5e74c0c40d473233598024d7ef981822c4b7be491984c9a97738151af5c3770a", good)
	tests := []struct {
		name, secret, got string
		body              []byte
		want              bool
	}{
		{"the signature", "s3cret", good, body, true},
		{"spaces around it", "s3cret", "  " + good + " ", body, true},
		{"another secret", "other", good, body, false},
		{"another body", "s3cret", good, []byte(`{"order":2}`), false},
		{"no prefix", "s3cret", good[len("sha256="):], body, false},
		{"not hex", "s3cret", "sha256=zz", body, false},
		{"empty", "s3cret", "", body, false},
		{"a prefix of it", "s3cret", good[:20], body, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, ValidSHA256(tc.secret, tc.body, tc.got))
		})
	}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		name, header, got string
		want              bool
	}{
		{"bearer", "Authorization", "Bearer tok-123", true},
		{"bearer in any case", "authorization", "bearer  tok-123", true},
		{"bare in Authorization", "Authorization", "tok-123", false},
		{"another scheme", "Authorization", "Basic tok-123", false},
		{"bare in another header", "X-Gitlab-Token", "tok-123", true},
		{"bearer in another header", "X-Gitlab-Token", "Bearer tok-123", false},
		{"wrong", "X-Gitlab-Token", "tok-124", false},
		{"empty", "X-Gitlab-Token", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, ValidToken("tok-123", tc.header, tc.got))
		})
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"": true, "application/json": true, "application/json; charset=utf-8": true, "application/vnd.api+json": true,
		"text/plain": false, "application/x-www-form-urlencoded": false, "application/json;;": false,
	} {
		require.Equal(t, want, IsJSON(ct), ct)
	}
}

// TestV0: the "v0" scheme of Slack and Zoom, on Slack's published vector
// (PROTOCOLS.md §10), and what CheckV0 refuses.
func TestV0(t *testing.T) {
	const (
		secret = "8f742231b10e8888abcd99yyyzzz85a5"
		ts     = "1531420618"
		body   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		want   = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	require.Equal(t, want, SignV0(secret, ts, []byte(body)))
	at := time.Unix(1531420618, 0)
	tests := []struct {
		name, sig, ts, body string
		now                 time.Time
		why                 int
	}{
		{"the published vector", want, ts, body, at, 0},
		{"four minutes later", want, ts, body, at.Add(4 * time.Minute), 0},
		{"four minutes early", want, ts, body, at.Add(-4 * time.Minute), 0},
		{"six minutes later", want, ts, body, at.Add(6 * time.Minute), V0Stale},
		{"a timestamp that is no number", want, "soon", body, at, V0BadTimestamp},
		{"the lowest int64", want, "-9223372036854775808", body, at, V0BadTimestamp},
		{"the highest int64", want, "9223372036854775807", body, at, V0Stale},
		{"another body", want, ts, body + "x", at, V0BadSignature},
		{"no v0= prefix", want[3:], ts, body, at, V0BadSignature},
		{"not hex", "v0=zz", ts, body, at, V0BadSignature},
		{"upper-case hex", "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503", ts, body, at, 0},
		{"a timestamp with a space", want, " " + ts, body, at, V0BadTimestamp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			why, _ := CheckV0(secret, tc.sig, tc.ts, []byte(tc.body), tc.now, 5*time.Minute)
			require.Equal(t, tc.why, why)
		})
	}
}
