package zoom

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sous-run/sous/engine/connector"
	zc "github.com/sous-run/sous/internal/clients/zoom"
)

// receiver serves POST /hooks/zoom/{connection}.
type receiver struct{}

var _ connector.Receiver = receiver{}

// Receive verifies a request with the connection's webhook_secret (every
// request first, the URL validation too), answers endpoint.url_validation
// with {plainToken, encryptedToken}, and turns any other event into the
// event of its trigger (when it has one) and of zoom.event. Zoom wants a
// 200 or 204, so an event is answered 200 once stored.
func (receiver) Receive(_ context.Context, in *connector.Incoming) (*connector.Received, error) {
	secret := in.Connection.Values.String(zc.FieldWebhookSecret)
	if err := zc.Verify(secret, in.Header, in.Body, in.Now, window(in.Connection.Values)); err != nil {
		code := "bad_signature"
		switch {
		case errors.Is(err, zc.ErrNoSecret):
			code = "no_secret"
		case errors.Is(err, zc.ErrNoSignature):
			code = "missing_signature"
		case errors.Is(err, zc.ErrStale), errors.Is(err, zc.ErrBadTimestamp):
			code = "stale_timestamp"
		}
		return nil, connector.Reject(http.StatusUnauthorized, code, "%s", err.Error())
	}
	d, err := zc.Parse(in.Body)
	if err != nil {
		return nil, connector.Reject(http.StatusBadRequest, "bad_body", "%s", err.Error())
	}
	if d.Event == zc.EventURLValidation {
		reply, err := connector.JSONReply(http.StatusOK, map[string]string{
			"plainToken": d.PlainToken, "encryptedToken": zc.EncryptToken(secret, d.PlainToken)})
		return &connector.Received{Reply: reply}, err
	}
	ev := connector.Event{DedupKey: d.DedupKey, Payload: d.Payload, JSON: d.JSON, Exact: true}
	var events []connector.Event
	if s, ok := Events[d.Event]; ok {
		ev.Type = s.ID
		events = append(events, ev)
	}
	ev.Type = Event.ID
	events = append(events, ev)
	reply, err := connector.JSONReply(http.StatusOK, map[string]string{"status": "received"})
	return &connector.Received{Events: events, Reply: reply}, err
}

// window is the connection's signature_window.
func window(with connector.Values) time.Duration {
	if d := with.Duration(zc.FieldSignatureWindow); d > 0 {
		return d
	}
	if d, err := time.ParseDuration(with.String(zc.FieldSignatureWindow)); err == nil && d > 0 {
		return d
	}
	return zc.DefaultSignatureWindow
}
