package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/httpx"
	"github.com/sous-run/sous/recipes"
)

// RecipeInfo is a recipe as the API shows it.
type RecipeInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	File        string   `json:"file"`
	Enabled     bool     `json:"enabled"`
	Trigger     string   `json:"trigger"`
	Steps       []string `json:"steps"`
	OnError     []string `json:"on_error,omitempty"`
	Filter      string   `json:"filter,omitempty"`
}

// Info describes a recipe.
func Info(r *recipes.Recipe) RecipeInfo {
	ri := RecipeInfo{Name: r.Name, Description: r.Description, File: r.File, Enabled: r.Enabled, Trigger: r.Trigger.Type}
	for _, s := range r.Steps {
		ri.Steps = append(ri.Steps, s.ID+" ("+s.Action+")")
	}
	for _, s := range r.OnError {
		ri.OnError = append(ri.OnError, s.ID+" ("+s.Action+")")
	}
	if r.Filter != nil {
		ri.Filter = r.Filter.Source
	}
	return ri
}

func (s *Server) listRecipes(w http.ResponseWriter, _ *http.Request) {
	out := []RecipeInfo{}
	for _, r := range s.cfg.Engine.Index().Recipes() {
		out = append(out, Info(r))
	}
	writeJSON(w, http.StatusOK, map[string]any{"recipes": out})
}

func (s *Server) showRecipe(w http.ResponseWriter, r *http.Request) {
	rec := s.cfg.Engine.Index().Recipe(r.PathValue("name"))
	if rec == nil {
		writeError(w, http.StatusNotFound, "not_found", "no recipe named "+strconv.Quote(r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, Info(rec))
}

// ParseFilter reads run filters from query parameters: recipe, status,
// since and until (RFC 3339 or a duration back from now, such as 24h or
// 7d), limit.
func ParseFilter(q map[string][]string, now time.Time) (store.RunFilter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := store.RunFilter{Recipe: get("recipe"), Status: get("status")}
	switch f.Status {
	case "", "succeeded", "failed", "filtered", "dead":
	default:
		return f, errors.New("status must be succeeded, failed, filtered or dead")
	}
	var err error
	if f.Since, err = parseTime(get("since"), now); err != nil {
		return f, errors.New("since: " + err.Error())
	}
	if f.Until, err = parseTime(get("until"), now); err != nil {
		return f, errors.New("until: " + err.Error())
	}
	if l := get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return f, errors.New("limit must be a number from 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

func parseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := recipes.ParsePeriod(v); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("want a duration back from now, not a negative one")
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 or a duration such as 24h or 7d")
	}
	return t, nil
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	runs, err := s.cfg.Store.ListRuns(r.Context(), f)
	if err != nil {
		s.log.Error("list runs", "error", err)
		writeError(w, http.StatusInternalServerError, "store_error", "runs could not be read")
		return
	}
	out := append(make([]*store.Run, 0, len(runs)), runs...) // [] rather than null
	if err := s.cfg.Store.RunInputs(r.Context(), out); err != nil {
		s.log.Warn("read the runs' inputs", "error", err) // listed without them
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
}

func (s *Server) showRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.cfg.Store.GetRun(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no run "+strconv.Quote(r.PathValue("id")))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", "the run could not be read")
		return
	}
	// its Zapier deliveries as they stand now; the run is shown without
	// them when they cannot be read
	if ds, err := s.cfg.Store.RunDeliveries(r.Context(), run.ID, RedactTarget); err == nil {
		run.Deliveries = ds
	} else {
		s.log.Warn("read a run's zapier deliveries", "run", run.ID, "error", err)
	}
	if err := s.cfg.Store.RunInputs(r.Context(), []*store.Run{run}); err != nil {
		s.log.Warn("read a run's input", "run", run.ID, "error", err)
	}
	writeJSON(w, http.StatusOK, run)
}

// readObject reads a request's body as a JSON object (what names it in
// errors: "the event"); an empty body is {}. It answers the request
// itself (415, 413, 400) and reports false when the body is not one.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, what string) ([]byte, map[string]any, bool) {
	if !httpx.IsJSON(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", what+" must be JSON (Content-Type: application/json)")
		return nil, nil, false
	}
	raw, bad := s.readBody(w, r)
	if bad != nil {
		writeError(w, bad.status, bad.code, bad.msg)
		return nil, nil, false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		writeError(w, http.StatusBadRequest, "bad_body", what+" must be a JSON object")
		return nil, nil, false
	}
	return raw, obj, true
}

// runRecipe runs one recipe now on the event in the body (a JSON object,
// as the recipe's trigger would deliver it; none is {}).
func (s *Server) runRecipe(w http.ResponseWriter, r *http.Request) {
	raw, _, ok := s.readObject(w, r, "the event")
	if !ok {
		return
	}
	eventID, runID, queued, err := s.cfg.Engine.RunNow(r.Context(), r.PathValue("name"), raw)
	if errors.Is(err, pipeline.ErrNoRecipe) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	if err != nil {
		s.log.Error("run a recipe now", "recipe", r.PathValue("name"), "error", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the run could not be queued: retry")
		return
	}
	s.audit(r, "recipe.run", r.PathValue("name"), "run "+runID)
	if !queued {
		writeJSON(w, http.StatusOK, map[string]any{"status": "filtered", "event_id": eventID, "run_id": runID})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "queued", "event_id": eventID, "run_id": runID})
}

func (s *Server) replayRun(w http.ResponseWriter, r *http.Request) {
	fromFailed := r.URL.Query().Get("from_failed_step") == "true"
	id, err := s.cfg.Engine.Replay(r.Context(), r.PathValue("id"), fromFailed)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, "cannot_replay", err.Error())
		return
	}
	detail := "as " + id
	if fromFailed {
		detail += ", from the failed step"
	}
	s.audit(r, "run.replayed", r.PathValue("id"), detail)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "queued", "run_id": id})
}

// audit records a change made through the API, by the key's name; the
// audit log failing fails nothing.
func (s *Server) audit(r *http.Request, action, target, detail string) {
	err := s.cfg.Store.AddAudit(context.WithoutCancel(r.Context()), store.AuditEntry{Actor: "api:" + keyName(r.Context()),
		Action: action, Target: target, Detail: detail})
	if err != nil {
		s.log.Warn("audit", "action", action, "error", err)
	}
}

// listAudit lists the audit log, newest first: ?since=24h (default 7d),
// ?limit=N (default 100, at most 1000).
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	since, ok := sinceParam(w, r, 7*24*time.Hour)
	if !ok {
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_filter", "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	entries, err := s.cfg.Store.ListAudit(r.Context(), time.Now().Add(-since), limit)
	if err != nil {
		s.log.Error("audit", "error", err)
		writeError(w, http.StatusInternalServerError, "store_error", "the audit log could not be read")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

// connections lists the config's connections and their state: no secret.
func (s *Server) connections(w http.ResponseWriter, r *http.Request) {
	sts := []oauth.Status{}
	if s.cfg.Connections != nil {
		var err error
		if sts, err = s.cfg.Connections(r.Context()); err != nil {
			s.log.Error("connections", "error", err)
			writeError(w, http.StatusInternalServerError, "store_error", "the connections' state could not be read")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": sts})
}

// sinceParam reads ?since= (def when absent); false when it is bad,
// which it answered.
func sinceParam(w http.ResponseWriter, r *http.Request, def time.Duration) (time.Duration, bool) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return def, true
	}
	d, err := recipes.ParsePeriod(v)
	if err != nil || d <= 0 {
		writeError(w, http.StatusBadRequest, "bad_filter", "since must be a positive duration such as 24h or 7d")
		return 0, false
	}
	return d, true
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	since, ok := sinceParam(w, r, 24*time.Hour)
	if !ok {
		return
	}
	st, err := s.cfg.Store.Stats(r.Context(), r.URL.Query().Get("recipe"), time.Now().Add(-since))
	if err != nil {
		s.log.Error("stats", "error", err)
		writeError(w, http.StatusInternalServerError, "store_error", "stats could not be computed")
		return
	}
	writeJSON(w, http.StatusOK, st)
}
