package slack

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sous-run/sous/internal/httpx"
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
func Sign(secret, ts string, body []byte) string { return httpx.SignV0(secret, ts, body) }

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
	switch why, off := httpx.CheckV0(secret, sig, ts, body, now, SignatureWindow); why {
	case httpx.V0BadTimestamp:
		return ErrBadTimestamp
	case httpx.V0Stale:
		return fmt.Errorf("%w (%s off)", ErrStale, off)
	case httpx.V0BadSignature:
		return ErrBadSignature
	}
	return nil
}
