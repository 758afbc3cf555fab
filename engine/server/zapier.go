package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/zapier"
	"github.com/sous-run/sous/recipes"
)

// MaxZapierWait bounds how long POST /api/v1/zapier/actions/{name} waits
// for its runs: under the 30 s Zapier gives a call.
const MaxZapierWait = 25 * time.Second

// zapierRoutes are the endpoints under /api/v1/zapier (PROTOCOLS.md §6),
// behind the API keys; with no Hub configured there are none.
func (s *Server) zapierRoutes() []route {
	if s.cfg.Zapier == nil {
		return nil
	}
	return []route{
		{http.MethodGet, "/api/v1/zapier/me", s.auth(s.zapierMe)},
		{http.MethodGet, "/api/v1/zapier/hooks", s.auth(s.zapierListHooks)},
		{http.MethodPost, "/api/v1/zapier/hooks", s.auth(s.zapierSubscribe)},
		{http.MethodGet, "/api/v1/zapier/hooks/{id}", s.auth(s.zapierShowHook)},
		{http.MethodDelete, "/api/v1/zapier/hooks/{id}", s.auth(s.zapierUnsubscribe)},
		{http.MethodGet, "/api/v1/zapier/events", s.auth(s.zapierEvents)},
		{http.MethodGet, "/api/v1/zapier/events/{event}/samples", s.auth(s.zapierSamples)},
		{http.MethodGet, "/api/v1/zapier/actions", s.auth(s.zapierActions)},
		{http.MethodGet, "/api/v1/zapier/actions/{name}", s.auth(s.zapierAction)},
		{http.MethodPost, "/api/v1/zapier/actions/{name}", s.auth(s.zapierStart)},
		{http.MethodGet, "/api/v1/zapier/deliveries", s.auth(s.zapierDeliveries)},
		{http.MethodGet, "/api/v1/zapier/stats", s.auth(s.zapierStats)},
	}
}

// zapierMe answers Zapier's authentication test.
func (s *Server) zapierMe(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "name": "Sous", "key": keyName(r.Context())})
}

var eventNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// hookTargetKeys are the names a subscription request may give its
// target URL: Zapier apps name it as they like, so every usual name is
// taken.
var hookTargetKeys = []string{"target_url", "url", "hookUrl", "targetUrl"}

// hookRequest is a subscription request.
type hookRequest struct {
	Target string
	Event  string
	Filter map[string]string
}

// parseHookRequest reads a subscription request: a JSON object with the
// target URL (under any of hookTargetKeys), event, an optional filter
// object, and any other field as a filter field, as Zapier's CLI sends
// `{url: bundle.targetUrl, ...bundle.inputData}`. Filter values are
// strings, numbers or booleans, kept as text (zapier.FilterText); a top-level
// field that is null or "" (a Zap's field left blank) filters nothing, and
// the filter object's fields win over top-level ones of the same name.
func parseHookRequest(raw []byte) (*hookRequest, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, errors.New("the body must be a JSON object with target_url and event")
	}
	str := func(k string) (string, error) {
		v, ok := fields[k]
		if !ok || string(v) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%s must be a string", k)
		}
		return s, nil
	}
	req := &hookRequest{Filter: map[string]string{}}
	targets := make([]string, 0, len(hookTargetKeys))
	for _, k := range hookTargetKeys {
		s, err := str(k)
		if err != nil {
			return nil, err
		}
		targets = append(targets, s)
	}
	req.Target = firstSet(targets...)
	var err error
	if req.Event, err = str("event"); err != nil {
		return nil, err
	}
	for k, v := range fields {
		if k == "event" || k == "filter" || slices.Contains(hookTargetKeys, k) {
			continue
		}
		text, set, err := zapier.FilterText(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if set && text != "" {
			req.Filter[k] = text
		}
	}
	if v, ok := fields["filter"]; ok && string(v) != "null" {
		var nested map[string]json.RawMessage
		if err := json.Unmarshal(v, &nested); err != nil {
			return nil, errors.New("filter must be an object of strings, numbers or booleans")
		}
		for k, fv := range nested {
			text, set, err := zapier.FilterText(fv)
			if err != nil {
				return nil, fmt.Errorf("filter.%s: %w", k, err)
			}
			if set {
				req.Filter[k] = text
			}
		}
	}
	if len(req.Filter) == 0 {
		req.Filter = nil
	}
	return req, nil
}

func (s *Server) zapierSubscribe(w http.ResponseWriter, r *http.Request) {
	raw, bad := s.readBody(w, r)
	if bad != nil {
		writeError(w, bad.status, bad.code, bad.msg)
		return
	}
	req, err := parseHookRequest(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_body", err.Error())
		return
	}
	target := req.Target
	if target == "" {
		writeError(w, http.StatusBadRequest, "bad_target", "target_url (or url, hookUrl, targetUrl) is required")
		return
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		writeError(w, http.StatusBadRequest, "bad_target", "target_url must be an absolute http or https URL")
		return
	}
	if !eventNameRE.MatchString(req.Event) {
		writeError(w, http.StatusBadRequest, "bad_event", "event is required: letters, digits, _ . and -")
		return
	}
	h, created, err := s.cfg.Zapier.Subscribe(r.Context(), req.Event, target, req.Filter, keyName(r.Context()))
	if err != nil {
		s.log.Error("zapier subscribe", "error", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the subscription could not be stored: retry")
		return
	}
	if created {
		s.audit(r, "zapier.subscribed", h.ID, "event "+h.Event)
	}
	// the same target and event again is the same subscription, answered
	// as the first subscribe was (201), with its id
	writeJSON(w, http.StatusCreated, hookView(h))
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// hookView is a subscription as the API shows it: its target URL without
// its path and query, which carry Zapier's secret for the Zap.
func hookView(h *store.ZapierHook) map[string]any {
	return map[string]any{"id": h.ID, "event": h.Event, "target": RedactTarget(h.Target), "filter": h.Filter,
		"created_at": h.CreatedAt}
}

// RedactTarget shows a subscriber's URL as its scheme and host: the rest
// of a Zapier hook URL is the Zap's secret.
func RedactTarget(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

func (s *Server) zapierListHooks(w http.ResponseWriter, r *http.Request) {
	hooks, err := s.cfg.Zapier.Store().ListZapierHooks(r.Context(), r.URL.Query().Get("event"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "the subscriptions could not be read")
		return
	}
	out := make([]map[string]any, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, hookView(h))
	}
	writeJSON(w, http.StatusOK, map[string]any{"hooks": out})
}

func (s *Server) zapierShowHook(w http.ResponseWriter, r *http.Request) {
	h, err := s.cfg.Zapier.Store().GetZapierHook(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no subscription "+strconv.Quote(r.PathValue("id")))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "the subscription could not be read")
		return
	}
	writeJSON(w, http.StatusOK, hookView(h))
}

func (s *Server) zapierUnsubscribe(w http.ResponseWriter, r *http.Request) {
	ok, err := s.cfg.Zapier.Unsubscribe(r.Context(), r.PathValue("id"))
	if err != nil {
		s.log.Error("zapier unsubscribe", "error", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the subscription could not be deleted: retry")
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no subscription "+strconv.Quote(r.PathValue("id")))
		return
	}
	s.audit(r, "zapier.unsubscribed", r.PathValue("id"), "")
	writeJSON(w, http.StatusOK, map[string]any{"status": "deleted", "id": r.PathValue("id")})
}

func (s *Server) zapierEvents(w http.ResponseWriter, r *http.Request) {
	evs, err := s.cfg.Zapier.Events(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "the events could not be read")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

// zapierSamples answers an event's latest items, newest first, as a bare
// array: what a trigger's performList returns.
func (s *Server) zapierSamples(w http.ResponseWriter, r *http.Request) {
	limit := 10
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.ZapierSamplesKept {
			writeError(w, http.StatusBadRequest, "bad_filter", "limit must be a number from 1 to "+strconv.Itoa(store.ZapierSamplesKept))
			return
		}
		limit = n
	}
	items, err := s.cfg.Zapier.Samples(r.Context(), r.PathValue("event"), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "the samples could not be read")
		return
	}
	writeJSON(w, http.StatusOK, items)
}

func (s *Server) zapierActions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"actions": s.cfg.Zapier.Actions()})
}

func (s *Server) zapierAction(w http.ResponseWriter, r *http.Request) {
	for _, a := range s.cfg.Zapier.Actions() {
		if a.Name == r.PathValue("name") {
			writeJSON(w, http.StatusOK, a)
			return
		}
	}
	writeError(w, http.StatusNotFound, "not_found", "no recipe answers to action "+strconv.Quote(r.PathValue("name")))
}

// zapierStart starts the recipes of an action. The body is the input, or
// {"input": {...}, "meta": {...}, "wait": ...}; wait (there or in the
// query: seconds, a duration, or true for the most) waits for the runs.
//
// Any Content-Type is taken whose body is a JSON object (Zapier sends
// application/json, curl's -d form type); an empty body is {}.
func (s *Server) zapierStart(w http.ResponseWriter, r *http.Request) {
	raw, bad := s.readBody(w, r)
	if bad != nil {
		writeError(w, bad.status, bad.code, bad.msg)
		return
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		writeError(w, http.StatusBadRequest, "bad_body", "the input must be a JSON object (whatever the Content-Type)")
		return
	}
	waitV, hasWait := body["wait"]
	if q := r.URL.Query().Get("wait"); q != "" {
		waitV, hasWait = q, true
	}
	wait, err := parseWait(waitV, hasWait)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_wait", err.Error())
		return
	}
	var input map[string]any
	meta := map[string]any{}
	if in, ok := body["input"].(map[string]any); ok {
		input = in
		if m, ok := body["meta"].(map[string]any); ok {
			meta = m
		}
	} else {
		input = make(map[string]any, len(body))
		for k, v := range body {
			if k != "wait" {
				input[k] = v
			}
		}
	}
	runs, err := s.cfg.Zapier.Start(r.Context(), r.PathValue("name"), input, meta, wait)
	var ie *zapier.InputError
	switch {
	case errors.As(err, &ie):
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Field   string `json:"field"`
			} `json:"error"`
		}
		e.Error.Code, e.Error.Message, e.Error.Field = "bad_input", ie.Error(), ie.Field
		writeJSON(w, http.StatusBadRequest, e)
		return
	case errors.Is(err, zapier.ErrNoAction):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case err != nil && len(runs) == 0:
		s.log.Error("zapier start", "action", r.PathValue("name"), "error", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the run could not be queued: retry")
		return
	case err != nil:
		s.log.Error("zapier start", "action", r.PathValue("name"), "error", err)
	}
	ids := make([]string, 0, len(runs))
	for _, run := range runs {
		ids = append(ids, run.ID)
	}
	s.audit(r, "zapier.action", r.PathValue("name"), "runs "+strings.Join(ids, ", "))
	out := map[string]any{"id": ids[0], "run_ids": ids, "runs": runs, "status": runs[0].Status}
	if runs[0].Outputs != nil {
		out["outputs"] = runs[0].Outputs
	}
	status := http.StatusAccepted
	if wait > 0 {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
}

// parseWait reads wait: a number of seconds, a duration, or a boolean
// (true: the most), at most MaxZapierWait.
func parseWait(v any, set bool) (time.Duration, error) {
	if !set || v == nil {
		return 0, nil
	}
	var d time.Duration
	switch x := v.(type) {
	case bool:
		if x {
			d = MaxZapierWait
		}
	case float64:
		d = time.Duration(x * float64(time.Second))
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return parseWait(b, true)
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return parseWait(f, true)
		}
		var err error
		if d, err = time.ParseDuration(x); err != nil {
			return 0, errors.New("wait must be a number of seconds, a duration such as 20s, or true")
		}
	default:
		return 0, errors.New("wait must be a number of seconds, a duration such as 20s, or true")
	}
	if d < 0 {
		return 0, errors.New("wait must not be negative")
	}
	return min(d, MaxZapierWait), nil
}

func (s *Server) zapierDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ZapierDeliveryFilter{RunID: q.Get("run_id"), HookID: q.Get("hook_id"), Event: q.Get("event"), Status: q.Get("status")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_filter", "limit must be a number from 1 to 1000")
			return
		}
		f.Limit = n
	}
	ds, err := s.cfg.Zapier.Store().ListZapierDeliveries(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "the deliveries could not be read")
		return
	}
	for _, d := range ds {
		d.Target = RedactTarget(d.Target)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": append(make([]*store.ZapierDelivery, 0, len(ds)), ds...)})
}

func (s *Server) zapierStats(w http.ResponseWriter, r *http.Request) {
	since := 24 * time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := recipes.ParsePeriod(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "bad_filter", "since must be a positive duration such as 24h or 7d")
			return
		}
		since = d
	}
	st, err := s.cfg.Zapier.Store().ZapierStats(r.Context(), time.Now().Add(-since))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "the statistics could not be read")
		return
	}
	for _, h := range st {
		h.Target = RedactTarget(h.Target)
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscribers": append(make([]*store.ZapierHookStats, 0, len(st)), st...)})
}
