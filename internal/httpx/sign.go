package httpx

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"mime"
	"strings"
)

// SignSHA256 returns `sha256=<hex>` of the HMAC-SHA256 of body under
// secret: the signature header value of GitHub-style webhooks, for senders
// and tests.
func SignSHA256(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ValidSHA256 checks a `sha256=<hex>` signature of body under secret in
// constant time.
func ValidSHA256(secret string, body []byte, got string) bool {
	hexsig, ok := strings.CutPrefix(strings.TrimSpace(got), "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(hexsig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// ValidToken checks, in constant time, the token a request carries in
// header: as `Bearer <token>` in Authorization, bare in any other.
func ValidToken(token, header, got string) bool {
	if strings.EqualFold(header, "Authorization") {
		scheme, cred, ok := strings.Cut(got, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		got = strings.TrimSpace(cred)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// IsJSON reports whether a request's content type is JSON, the default
// when none is given: application/json or any +json type.
func IsJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
