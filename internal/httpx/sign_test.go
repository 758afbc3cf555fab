package httpx

import (
	"testing"

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
