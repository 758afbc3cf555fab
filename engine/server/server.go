// Package server is the runtime's HTTP face: webhook intake under /hooks,
// the REST API under /api/v1, Prometheus /metrics, /healthz and /readyz.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/metrics"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/zapier"
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
	// ProbeWrite finds whether the store takes writes now, for /readyz
	// when no intake committed lately (Store.ProbeWrite when nil).
	ProbeWrite func(context.Context) error
	// Registry holds the services' webhook receivers (connector.Default
	// when nil).
	Registry *connector.Registry
	// Connection resolves a connection by name, for the services'
	// webhooks at /hooks/{service}/{connection}; nil: there are none.
	Connection func(name string) (*connector.Connection, error)
	// Paused, when set, says why a connection's service webhooks must wait
	// (its OAuth token needs re-authorization): they are answered 503
	// with Retry-After, so that the service delivers them again later,
	// and nothing is stored. nil error: serve them.
	Paused func(ctx context.Context, conn *connector.Connection) error
	// Vault opens the store's vault of OAuth tokens, for the flow at
	// /oauth/NAME/start and /oauth/callback (no flow when nil).
	Vault func() (*oauth.Vault, error)
	// Connections says the state of the config's connections, for GET
	// /api/v1/connections (an empty list when nil).
	Connections func(ctx context.Context) ([]oauth.Status, error)
	// Zapier serves /api/v1/zapier (REST hooks, actions); none when nil.
	Zapier *zapier.Hub
}

// Server is the HTTP handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
	// writes is the latest outcome of a write to the store, for /readyz
	writes writeHealth
	// now is time.Now, or a test's clock
	now func() time.Time
	// flows are the OAuth authorizations started here
	flows flows
}

// ReadyFresh is how long the outcome of the latest write to the store (a
// webhook's intake, or /readyz's own probe) answers /readyz; after that,
// /readyz probes with a tiny write transaction of its own (at most one
// at a time), so that probes every few seconds cost at most one small
// commit each while no webhook comes, and none while webhooks do.
const ReadyFresh = 5 * time.Second

// writeHealth is the latest outcome of a write to the store. The times
// are Unix nanoseconds; the latest of okAt and failAt is the outcome.
type writeHealth struct {
	okAt, failAt atomic.Int64
	failErr      atomic.Pointer[error]
	// probe holds a token while a probe runs: one at a time, and a
	// caller waits for it no longer than its context
	probe chan struct{}
}

// noteWrite records the outcome of a write to the store at now.
func (s *Server) noteWrite(err error, now time.Time) {
	if err == nil {
		s.writes.okAt.Store(now.UnixNano())
		return
	}
	s.writes.failErr.Store(&err)
	s.writes.failAt.Store(now.UnixNano())
}

// latestWrite reports whether an outcome was recorded since after, and
// the latest one's error.
func (s *Server) latestWrite(after int64) (bool, error) {
	ok, fail := s.writes.okAt.Load(), s.writes.failAt.Load()
	switch {
	case fail > ok && fail > after:
		if e := s.writes.failErr.Load(); e != nil {
			return true, *e
		}
		return true, errors.New("a write failed")
	case ok >= fail && ok > after:
		return true, nil
	}
	return false, nil
}

// writable reports whether the store takes writes now: the outcome of
// the latest write if it is fresh, else of a probe.
func (s *Server) writable(ctx context.Context) error {
	fresh := s.now().Add(-ReadyFresh).UnixNano()
	if ok, err := s.latestWrite(fresh); ok {
		return err
	}
	select {
	case s.writes.probe <- struct{}{}:
		defer func() { <-s.writes.probe }()
	case <-ctx.Done():
		return fmt.Errorf("a probe of the store is still running: %w", ctx.Err())
	}
	// a probe that ran while this one waited answers for it
	if ok, err := s.latestWrite(s.now().Add(-ReadyFresh).UnixNano()); ok {
		return err
	}
	probe := s.cfg.ProbeWrite
	if probe == nil {
		probe = s.cfg.Store.ProbeWrite
	}
	err := probe(ctx)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// the caller went away (as intake, it says nothing of the
		// store): the next caller probes again
		return err
	}
	s.noteWrite(err, s.now())
	if err != nil {
		s.log.Warn("readyz: the store does not take writes", "error", err)
	}
	return err
}

// New builds the handler.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = connector.Default
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, now: time.Now}
	s.writes.probe = make(chan struct{}, 1)
	s.mux.HandleFunc("/hooks/", s.hook)
	s.routes([]route{
		{http.MethodGet, "/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
		})},
		{http.MethodGet, "/readyz", http.HandlerFunc(s.ready)},
		{http.MethodGet, "/metrics", promhttp.HandlerFor(cfg.Metrics.Registry, promhttp.HandlerOpts{})},
		{http.MethodGet, "/api/v1/recipes", s.auth(s.listRecipes)},
		{http.MethodGet, "/api/v1/recipes/{name}", s.auth(s.showRecipe)},
		{http.MethodPost, "/api/v1/recipes/{name}/run", s.auth(s.runRecipe)},
		{http.MethodGet, "/api/v1/runs", s.auth(s.listRuns)},
		{http.MethodGet, "/api/v1/runs/{id}", s.auth(s.showRun)},
		{http.MethodPost, "/api/v1/runs/{id}/replay", s.auth(s.replayRun)},
		{http.MethodGet, "/api/v1/stats", s.auth(s.stats)},
		{http.MethodGet, "/api/v1/connections", s.auth(s.connections)},
		{http.MethodGet, "/api/v1/audit", s.auth(s.listAudit)},
		{http.MethodGet, "/oauth/{name}/start", s.auth(s.oauthStart)},
		{http.MethodGet, "/oauth/callback", http.HandlerFunc(s.oauthCallback)},
	})
	s.routes(s.zapierRoutes())
	s.mux.Handle("/api/", s.auth(notFound))
	s.mux.HandleFunc("/", notFound)
	return s
}

// route is one endpoint: a method on a path pattern.
type route struct {
	method, path string
	h            http.Handler
}

// routes registers each route as a method pattern, and for each path a
// pattern without a method that answers every other method with a JSON
// 405 naming the allowed ones. (The mux would answer 405 by itself, but in
// text, and only when no catch-all pattern matches the path.) Under /api/
// the 405 needs an API key like every other answer there, so that a
// request without one learns nothing of the API.
func (s *Server) routes(rs []route) {
	allow := map[string][]string{}
	var paths []string
	for _, rt := range rs {
		s.mux.Handle(rt.method+" "+rt.path, rt.h)
		if _, ok := allow[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == http.MethodGet {
			// the mux serves HEAD with the GET pattern
			allow[rt.path] = append(allow[rt.path], http.MethodHead)
		}
	}
	for _, p := range paths {
		h := methodNotAllowed(strings.Join(allow[p], ", "))
		if strings.HasPrefix(p, "/api/") {
			s.mux.Handle(p, s.auth(h))
			continue
		}
		s.mux.Handle(p, h)
	}
}

// methodNotAllowed answers a JSON 405 with the Allow header.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path+" (allowed: "+allow+")")
	}
}

// notFound answers a JSON 404.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// ServeHTTP implements http.Handler. A webhook on a path that the mux
// would clean (/hooks, /hooks/a//b, /hooks/a/./b) goes straight to intake,
// which looks its exact path up: the mux would answer it with a redirect,
// which senders do not follow with their body, and a hook on such a path,
// which the trigger allows, could never be reached.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "/hooks" || strings.HasPrefix(p, "/hooks/") && unclean(r.URL.EscapedPath()) {
		s.hook(w, r)
		return
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

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.DB.PingContext(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the store does not answer")
		return
	}
	if err := s.writable(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the store does not take writes now (a full disk, a damaged file?); the log says why")
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
		next(w, r.WithContext(context.WithValue(r.Context(), keyNameKey{}, KeyName(key))))
	})
}

// keyNameKey is the context key of the name of the API key a request
// carried.
type keyNameKey struct{}

// KeyName names an API key in the audit log without revealing it: "key-"
// and the first 8 hex digits of its SHA-256.
func KeyName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "key-" + hex.EncodeToString(sum[:4])
}

// keyName is the name of the API key of a request ("" outside the API).
func keyName(ctx context.Context) string {
	n, _ := ctx.Value(keyNameKey{}).(string)
	return n
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
