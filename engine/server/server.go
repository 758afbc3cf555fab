// Package server is the runtime's HTTP face: webhook intake under /hooks,
// the REST API under /api/v1, Prometheus /metrics, /healthz and /readyz.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sous-run/sous/engine/metrics"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
)

// DefaultMaxBody is the default limit of a webhook body.
const DefaultMaxBody = 1 << 20

// Config assembles a server.
type Config struct {
	Engine  *pipeline.Engine
	Store   *store.Store
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// APIKeys authorise the REST API; with none, every API call is refused.
	APIKeys []string
	// MaxBody bounds a webhook body (DefaultMaxBody when zero).
	MaxBody int64
	// Ready reports whether the pipeline runs.
	Ready func() bool
}

// Server is the HTTP handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

// New builds the handler.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	s.mux.HandleFunc("/hooks/", s.hook)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics.Registry, promhttp.HandlerOpts{}))
	s.mux.Handle("GET /api/v1/recipes", s.auth(s.listRecipes))
	s.mux.Handle("GET /api/v1/recipes/{name}", s.auth(s.showRecipe))
	s.mux.Handle("GET /api/v1/runs", s.auth(s.listRuns))
	s.mux.Handle("GET /api/v1/runs/{id}", s.auth(s.showRun))
	s.mux.Handle("POST /api/v1/runs/{id}/replay", s.auth(s.replayRun))
	s.mux.Handle("GET /api/v1/stats", s.auth(s.stats))
	s.mux.Handle("/api/", s.auth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s
}

// ServeHTTP implements http.Handler. A webhook on a path that the mux
// would clean (/hooks, /hooks/a//b, /hooks/a/./b) goes straight to intake,
// which looks its exact path up: the mux would answer it with a redirect,
// which senders do not follow with their body, and a hook on such a path,
// which the trigger allows, could never be reached. Wrong methods on known
// API paths get a JSON 405 rather than the mux's text answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "/hooks" || strings.HasPrefix(p, "/hooks/") && unclean(r.URL.EscapedPath()) {
		s.hook(w, r)
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" && !strings.HasPrefix(r.URL.Path, "/hooks/") {
		// the mux answers 405 with text; answer JSON
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// unclean reports whether the mux would redirect an (escaped) path to its
// clean form, as net/http's cleanPath does.
func unclean(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c != p
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.DB.PingContext(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the store does not answer")
		return
	}
	if s.cfg.Ready != nil && !s.cfg.Ready() {
		writeError(w, http.StatusServiceUnavailable, "starting", "the pipeline is not running yet")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

// auth requires one of the configured API keys, as a bearer token or in
// X-API-Key, compared in constant time.
func (s *Server) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if h := r.Header.Get("Authorization"); key == "" && strings.HasPrefix(h, "Bearer ") {
			key = strings.TrimPrefix(h, "Bearer ")
		}
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sous"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "an API key is required (Authorization: Bearer KEY or X-API-Key)")
			return
		}
		ok := false
		for _, k := range s.cfg.APIKeys {
			if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
				ok = true
			}
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "the API key is not valid")
			return
		}
		next(w, r)
	})
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
