package httpx

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"math"
	"mime"
	"strconv"
	"strings"
	"time"
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

// SignV0 is the "v0" request signature Slack and Zoom both use: `v0=` and
// the hex HMAC-SHA256, under secret as it is written, of
// `v0:{ts}:{body}`, ts the request's unix time in seconds as its header
// carries it.
func SignV0(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Why CheckV0 refuses a request.
const (
	V0BadTimestamp = iota + 1 // ts is not a unix time in seconds
	V0Stale                   // ts is further than the window from now
	V0BadSignature            // sig is not SignV0 of the body
)

// CheckV0 checks a "v0" signature sig of body sent at ts (SignV0) under
// secret, and that ts is within window of now either way: 0 when both
// hold, else why not (V0BadTimestamp, V0Stale, V0BadSignature), with how
// far ts is from now. The signature's hex may be in either case; it is
// compared in constant time. Nothing is trimmed: the caller trims headers
// if it wants to.
func CheckV0(secret, sig, ts string, body []byte, now time.Time, window time.Duration) (int, time.Duration) {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return V0BadTimestamp, 0
	}
	// in seconds: a time.Time of any int64 would overflow
	d := now.Unix() - sec
	if d < 0 {
		d = -d
	}
	if d < 0 || d > int64(window/time.Second) { // d < 0: the negation of MinInt64
		return V0Stale, time.Duration(min(d, int64(math.MaxInt64/time.Second))) * time.Second
	}
	hexsig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return V0BadSignature, 0
	}
	got, err := hex.DecodeString(hexsig) // either case, as hex is
	if err != nil {
		return V0BadSignature, 0
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return V0BadSignature, 0
	}
	return 0, 0
}
