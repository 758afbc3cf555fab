package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Slack's request-signing headers.
const (
	HeaderSignature  = "X-Slack-Signature"
	HeaderTimestamp  = "X-Slack-Request-Timestamp"
	HeaderRetryNum   = "X-Slack-Retry-Num"
	HeaderRetryCause = "X-Slack-Retry-Reason"
)

// SignatureWindow is how far a request's timestamp may be from its arrival,
// either way (Slack's documented five minutes).
const SignatureWindow = 5 * time.Minute

// Why a request fails verification.
var (
	ErrNoSecret     = errors.New("the connection has no signing_secret: every request is refused")
	ErrNoSignature  = errors.New("the request has no " + HeaderSignature + " or " + HeaderTimestamp + " header")
	ErrBadTimestamp = errors.New("the " + HeaderTimestamp + " header is not a unix time")
	ErrStale        = errors.New("the request's timestamp is more than 5 minutes from now")
	ErrBadSignature = errors.New("the " + HeaderSignature + " header does not match the body")
)

// Sign is Slack's v0 signature of body sent at timestamp ts (unix seconds,
// as the header carries it): "v0=" and the hex HMAC-SHA256, keyed with the
// signing secret as it is written, of "v0:{ts}:{body}".
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's signature headers against its raw body with
// the app's signing secret, its timestamp within SignatureWindow of now
// (either way). It never accepts a request when secret is empty. The
// errors name no secret and no signature.
//
// slack-go's SecretsVerifier does the same computation but measures the
// window from the wall clock; Verify takes the request's arrival time.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	if secret == "" {
		return ErrNoSecret
	}
	sig, ts := h.Get(HeaderSignature), h.Get(HeaderTimestamp)
	if sig == "" || ts == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureWindow || d < -SignatureWindow {
		return fmt.Errorf("%w (%s off)", ErrStale, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}
