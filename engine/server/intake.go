package server

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// deliveryHeaders carry a sender's own delivery id, used for dedup when
// the recipe sets no id expression.
var deliveryHeaders = []string{"Idempotency-Key", "X-Idempotency-Key", "X-Delivery-Id", "X-Github-Delivery", "X-Request-Id"}

func (s *Server) reject(w http.ResponseWriter, status int, reason, msg string) {
	s.cfg.Metrics.IntakeRejects.WithLabelValues(reason).Inc()
	writeError(w, status, reason, msg)
}

// hook is the intake of webhook.received: POST /hooks/<path>.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/hooks")
	h := s.cfg.Engine.Index().Hook(path)
	if h == nil {
		s.reject(w, http.StatusNotFound, "unknown_path", "no recipe listens on "+r.URL.Path)
		return
	}
	methods := h.Methods
	if len(methods) == 0 {
		methods = []string{http.MethodPost}
	}
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		s.reject(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not accepted on "+r.URL.Path)
		return
	}
	raw, bad := s.readBody(w, r)
	if bad != nil {
		s.reject(w, bad.status, bad.code, bad.msg)
		return
	}
	if h.Secret != "" {
		header := h.SignatureHeader
		if header == "" {
			header = "X-Signature-256"
		}
		if !validSignature(h.Secret, raw, r.Header.Get(header)) {
			s.reject(w, http.StatusUnauthorized, "bad_signature", "the "+header+" signature does not match the body")
			return
		}
	}
	tokenHeader := ""
	if h.Token != "" {
		tokenHeader = http.CanonicalHeaderKey(cmp.Or(h.TokenHeader, "Authorization"))
		if !validToken(h.Token, tokenHeader, r.Header.Get(tokenHeader)) {
			s.reject(w, http.StatusUnauthorized, "bad_token", "the "+tokenHeader+" header does not carry the token")
			return
		}
	}
	body, exact, err := parseBody(r.Header.Get("Content-Type"), raw)
	if err != nil {
		status := http.StatusBadRequest
		reason := "bad_body"
		if errors.Is(err, errUnsupportedType) {
			status, reason = http.StatusUnsupportedMediaType, "unsupported_media_type"
		}
		s.reject(w, status, reason, err.Error())
		return
	}
	headers, query := firstValues(r.Header), firstValues(r.URL.Query())
	if tokenHeader != "" {
		// verified: the credential is not kept with the event
		delete(headers, tokenHeader)
	}
	payload := eventPayload(body, headers, query, r.Method, path)
	ev := &store.Event{ID: pipeline.NewEventID(), Type: "webhook.received", Source: path, ReceivedAt: time.Now().UTC(), Recipes: h.Recipes}
	key, err := dedupKey(h, payload, r.Header)
	if err != nil {
		s.reject(w, http.StatusUnprocessableEntity, "bad_id", err.Error())
		return
	}
	if key == "" {
		key = ev.ID
	}
	ev.DedupKey = "hook:" + path + ":" + key
	if ev.Payload, err = storedPayload(raw, body != nil && isJSONType(r.Header.Get("Content-Type")), body, headers, query, r.Method, path); err != nil {
		s.reject(w, http.StatusBadRequest, "bad_body", "the body cannot be stored as JSON")
		return
	}
	if roundTrips(exact, headers, query) {
		// what the matcher would decode from ev.Payload: it is handed
		// over instead (a body with an integer a float64 would round
		// keeps it as sent here, text that is not UTF-8 is stored with
		// U+FFFD: those are decoded again there)
		ev.Decoded = payload
	}
	fresh, err := s.cfg.Engine.Accept(r.Context(), ev)
	if err == nil || r.Context().Err() == nil {
		// the outcome of an intake commit answers /readyz for a while; a
		// sender that went away says nothing of the store
		s.noteWrite(err, s.now())
	}
	if err != nil {
		s.log.Error("store event", "path", path, "error", err)
		s.reject(w, http.StatusServiceUnavailable, "store_unavailable", "the event could not be stored; retry later")
		return
	}
	if !fresh {
		s.cfg.Metrics.IntakeDup.WithLabelValues("webhook").Inc()
		writeJSON(w, http.StatusOK, map[string]any{"status": "duplicate", "dedup_key": key})
		return
	}
	s.cfg.Metrics.IntakeAccepted.WithLabelValues("webhook").Inc()
	// the answer to every accepted webhook, written without an encoder
	// (an event id needs no escaping)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"accepted","event_id":"`+ev.ID+`"}`+"\n")
}

// validUTF8 reports whether the keys and values of m (strings, as
// firstValues gives) are valid UTF-8, and so survive a JSON round trip.
func validUTF8(m map[string]any) bool {
	for k, v := range m {
		if s, ok := v.(string); !utf8.ValidString(k) || (ok && !utf8.ValidString(s)) {
			return false
		}
	}
	return true
}

// roundTrips reports whether the event built of a body parsed exact (see
// parseBody), headers and query is what its stored JSON decodes to.
func roundTrips(exact bool, headers, query map[string]any) bool {
	return exact && validUTF8(headers) && validUTF8(query)
}

// eventPayload is the event of a webhook, as its recipes see it.
func eventPayload(body any, headers, query map[string]any, method, path string) map[string]any {
	return map[string]any{
		"body":    body,
		"headers": headers,
		"query":   query,
		"method":  method,
		"path":    path,
	}
}

// storedPayload is the JSON of an event as intake stores it: {"body",
// "headers", "query", "method", "path"}. A JSON body is stored as it came
// (parseBody checked it), rather than encoded again from its parsed value:
// decoded, both give the same value.
func storedPayload(raw []byte, rawJSON bool, body any, headers, query map[string]any, method, path string) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(raw) + 256)
	b.WriteString(`{"body":`)
	if rawJSON {
		b.Write(bytes.TrimSpace(raw))
	} else {
		enc, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		b.Write(enc)
	}
	for _, part := range []struct {
		name string
		v    any
	}{{"headers", headers}, {"query", query}, {"method", method}, {"path", path}} {
		enc, err := json.Marshal(part.v)
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"` + part.name + `":`)
		b.Write(enc)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func dedupKey(h *pipeline.Hook, payload map[string]any, header http.Header) (string, error) {
	if h.ID != nil {
		v, err := h.ID.Eval(map[string]any{"event": payload})
		if err != nil {
			// the detail names the recipe file: it is for the log, not the sender
			return "", fmt.Errorf("the recipe's id expression %q failed on this event", h.ID.Source)
		}
		if v == nil || recipes.Text(v) == "" {
			return "", fmt.Errorf("the recipe's id expression %q gave no value for this event", h.ID.Source)
		}
		return recipes.Text(v), nil
	}
	for _, name := range deliveryHeaders {
		if v := header.Get(name); v != "" {
			return name + "=" + v, nil
		}
	}
	return "", nil
}

// validToken checks the token a request carries in header (as `Bearer
// <token>` in Authorization, bare in any other) in constant time.
func validToken(token, header, got string) bool {
	if header == "Authorization" {
		scheme, cred, ok := strings.Cut(got, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		got = strings.TrimSpace(cred)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// validSignature checks `sha256=<hex>` of the raw body in constant time.
func validSignature(secret string, body []byte, got string) bool {
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

// Sign returns the signature header value for a body, for senders and tests.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// badBody is why a request's body was refused.
type badBody struct {
	status    int
	code, msg string
}

// readBody reads a request's body up to MaxBody.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *badBody) {
	tooLarge := &badBody{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxBody)}
	if r.ContentLength > s.cfg.MaxBody {
		return nil, tooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, &badBody{http.StatusBadRequest, "bad_body", "the body could not be read"}
	}
	return raw, nil
}

var errUnsupportedType = errors.New("unsupported content type")

// isJSONType reports whether a request's content type is JSON (the
// default when none is given).
func isJSONType(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// parseBody parses JSON (the default when no type is given) and forms.
// exact reports that the value is what decoding its stored JSON with
// encoding/json gives: false when it keeps an integer as sent (see
// parseJSON).
func parseBody(contentType string, raw []byte) (v any, exact bool, err error) {
	mt := "application/json"
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, false, fmt.Errorf("%w: %q", errUnsupportedType, contentType)
		}
	}
	switch {
	case isJSONType(mt):
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, true, nil
		}
		return parseJSON(raw)
	case mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, false, fmt.Errorf("the form body is not valid: %v", err)
		}
		form := firstValues(vals)
		return form, validUTF8(form), nil
	}
	return nil, false, fmt.Errorf("%w %q: send application/json or application/x-www-form-urlencoded", errUnsupportedType, mt)
}

// parseJSON parses a JSON body as json.Unmarshal into any does, except for
// integers too large for a float64: those stay json.Number, so that the
// stored body keeps them as sent and an id expression cannot give two
// deliveries (9007199254740992 and 9007199254740993) the same dedup key.
func parseJSON(raw []byte) (v any, exact bool, err error) {
	if !json.Valid(raw) {
		// json.Unmarshal's error names the offending character
		err := json.Unmarshal(raw, &v)
		return nil, false, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	kept := false
	v, err = numbers(v, &kept)
	return v, !kept, err
}

// numbers turns the json.Numbers of a decoded value into float64 where
// that is exact or the number is not an integer; it sets *kept when it
// keeps one.
func numbers(v any, kept *bool) (any, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("the body is not valid JSON: number %s is out of range", x)
		}
		if !strings.ContainsAny(string(x), ".eE") && strconv.FormatFloat(f, 'f', 0, 64) != string(x) {
			*kept = true
			return x, nil // an integer a float64 would round
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			n, err := numbers(e, kept)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := numbers(e, kept)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

func firstValues(m map[string][]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}
