package zoom

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sous-run/sous/internal/httpx"
)

// The headers of a Zoom webhook request.
const (
	HeaderSignature = "X-Zm-Signature"
	HeaderTimestamp = "X-Zm-Request-Timestamp"
	HeaderRequestID = "X-Zm-Request-Id"
)

// EventURLValidation is the event of Zoom's endpoint check.
const EventURLValidation = "endpoint.url_validation"

// DefaultSignatureWindow is how far a request's timestamp may be from now
// when the connection sets no signature_window. Zoom states none; five
// minutes is the usual choice.
const DefaultSignatureWindow = 5 * time.Minute

// Why a request's signature is refused.
var (
	ErrNoSecret     = errors.New("the connection has no webhook_secret, so no request can be verified")
	ErrNoSignature  = errors.New("the request has no " + HeaderSignature + " or " + HeaderTimestamp + " header")
	ErrBadTimestamp = errors.New("the " + HeaderTimestamp + " header is not a unix time in seconds")
	ErrStale        = errors.New("the request's timestamp is outside the signature window")
	ErrBadSignature = errors.New("the " + HeaderSignature + " signature does not match the body")
)

// Sign returns the x-zm-signature of body sent at timestamp ts (unix
// seconds, as the header carries it): `v0=` and the hex HMAC-SHA256 of
// `v0:{ts}:{body}` under the app's secret token.
func Sign(secret, ts string, body []byte) string { return httpx.SignV0(secret, ts, body) }

// SignedHeader is the header Zoom sends with body at now, signed with
// secret: for senders and tests.
func SignedHeader(secret string, body []byte, now time.Time) http.Header {
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Zoom Marketplace/1.0a")
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign(secret, ts, body))
	return h
}

// Verify checks a request's x-zm-signature over its raw body, and that
// its x-zm-request-timestamp is within window of now (DefaultSignatureWindow
// when window is not positive). The error is one of the Err values above.
func Verify(secret string, header http.Header, body []byte, now time.Time, window time.Duration) error {
	if secret == "" {
		return ErrNoSecret
	}
	sig, ts := strings.TrimSpace(header.Get(HeaderSignature)), strings.TrimSpace(header.Get(HeaderTimestamp))
	if sig == "" || ts == "" {
		return ErrNoSignature
	}
	if window <= 0 {
		window = DefaultSignatureWindow
	}
	switch why, _ := httpx.CheckV0(secret, sig, ts, body, now, window); why {
	case httpx.V0BadTimestamp:
		return ErrBadTimestamp
	case httpx.V0Stale:
		return ErrStale
	case httpx.V0BadSignature:
		return ErrBadSignature
	}
	return nil
}

// EncryptToken is the encryptedToken of Zoom's URL validation: the hex
// HMAC-SHA256 of plainToken under the app's secret token.
func EncryptToken(secret, plainToken string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(plainToken))
	return hex.EncodeToString(mac.Sum(nil))
}

// Delivery is one parsed webhook request.
type Delivery struct {
	// Event is Zoom's event name ("meeting.ended").
	Event string
	// TS is event_ts, when the event happened (unix milliseconds).
	TS int64
	// PlainToken is the token of an endpoint.url_validation.
	PlainToken string
	// JSON is the body with payload.object.id made a string: the event
	// recipes see.
	JSON json.RawMessage
	// Payload is JSON decoded with encoding/json.
	Payload map[string]any
	// DedupKey is stable across Zoom's redeliveries of one event (see
	// Parse).
	DedupKey string
}

// Parse reads a webhook body. Zoom sends payload.object.id as a string in
// some events (meeting.ended) and as a number in others
// (recording.completed): the event always has it as a string, its decimal
// digits. The dedup key is the event name, event_ts, the object's uuid
// (else its id), and for a participant event the participant's
// participant_uuid, user_id or id with its join or leave time: the same
// for every redelivery of one event, since Zoom resends the same body
// (x-zm-request-id is not documented as stable across retries, so it is
// not used).
func Parse(body []byte) (*Delivery, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("the body is not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("the body holds more than one JSON value")
	}
	d := &Delivery{}
	d.Event, _ = m["event"].(string)
	if d.Event == "" {
		return nil, errors.New("the body has no event name")
	}
	if n, ok := m["event_ts"].(json.Number); ok {
		if ts, err := n.Int64(); err == nil {
			d.TS = ts
		}
	}
	payload, _ := m["payload"].(map[string]any)
	if payload == nil && m["payload"] != nil {
		return nil, errors.New("payload is not an object")
	}
	if d.Event == EventURLValidation {
		d.PlainToken, _ = payload["plainToken"].(string)
		if d.PlainToken == "" {
			return nil, errors.New("an endpoint.url_validation without payload.plainToken")
		}
		return d, nil
	}
	object, _ := payload["object"].(map[string]any)
	if object != nil {
		switch id := object["id"].(type) {
		case json.Number:
			object["id"] = id.String()
		case nil, string:
		default:
			return nil, fmt.Errorf("payload.object.id is neither a string nor a number")
		}
	}
	key := []string{d.Event, strconv.FormatInt(d.TS, 10), str(object, "uuid"), str(object, "id")}
	if p, ok := object["participant"].(map[string]any); ok {
		key = append(key, first(str(p, "participant_uuid"), str(p, "user_id"), str(p, "id")), str(p, "join_time"), str(p, "leave_time"))
	}
	d.DedupKey = strings.Join(key, "|")
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode the event: %w", err)
	}
	d.JSON = raw
	if err := json.Unmarshal(raw, &d.Payload); err != nil {
		return nil, fmt.Errorf("decode the event: %w", err)
	}
	return d, nil
}

// str is a string or number value of m as text.
func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

func first(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
