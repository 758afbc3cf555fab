package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/httpx"
	"github.com/sous-run/sous/recipes"
)

func (s *Server) reject(w http.ResponseWriter, status int, reason, msg string) {
	s.cfg.Metrics.IntakeRejects.WithLabelValues(reason).Inc()
	writeError(w, status, reason, msg)
}

// intakeTarget is what answers a request under /hooks: the hook of a
// trigger keyed by a field (a webhook path), or a service's receiver
// with one of its connections.
type intakeTarget struct {
	hook     *pipeline.Hook // nil for a service webhook
	receiver connector.Receiver
	conn     *connector.Connection
	service  string // the metrics label: the trigger's or receiver's service
	source   string // the index key events name: the path, or the connection
}

// target finds what answers path (under /hooks): a hook registered on it,
// else a service's receiver at /{service}/{connection}.
func (s *Server) target(ctx context.Context, ix *pipeline.Index, path string) (*intakeTarget, *badBody) {
	if h := ix.Hook(path); h != nil {
		return &intakeTarget{hook: h, receiver: h.Spec.Trigger.Receiver, service: h.Spec.Service(), source: path}, nil
	}
	unknown := &badBody{http.StatusNotFound, "unknown_path", "no recipe listens on /hooks" + path}
	svc, name, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, unknown
	}
	rs, ok := s.cfg.Registry.Receiver(svc)
	if !ok {
		return nil, unknown
	}
	var conn *connector.Connection
	var err error
	if s.cfg.Connection != nil {
		conn, err = s.cfg.Connection(name)
	}
	if conn == nil || err != nil {
		return nil, &badBody{http.StatusNotFound, "unknown_connection", fmt.Sprintf("no %s connection is named %q in the config", svc, name)}
	}
	if conn.Type != rs.Connection {
		return nil, &badBody{http.StatusNotFound, "unknown_connection",
			fmt.Sprintf("connection %q is of type %s, not %s", name, conn.Type, rs.Connection)}
	}
	if s.cfg.Paused != nil {
		if err := s.cfg.Paused(ctx, conn); err != nil {
			return nil, &badBody{http.StatusServiceUnavailable, "connection_needs_reauth", err.Error()}
		}
	}
	return &intakeTarget{receiver: rs.Receiver, conn: conn, service: svc, source: name}, nil
}

// hook is the intake of every trigger that receives requests: POST
// /hooks/<path> for a webhook keyed by path, POST /hooks/{service}/
// {connection} for a service's webhooks. The receiver verifies and parses
// the request; intake stores what it returns, each event for the recipes
// that listen to it, before answering.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/hooks")
	ix := s.cfg.Engine.Index()
	t, bad := s.target(r.Context(), ix, path)
	if bad != nil {
		if bad.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "300")
		}
		s.reject(w, bad.status, bad.code, bad.msg)
		return
	}
	raw, bad := s.readBody(w, r)
	if bad != nil {
		s.reject(w, bad.status, bad.code, bad.msg)
		return
	}
	in := &connector.Incoming{Method: r.Method, Path: path, Header: r.Header, Query: r.URL.Query(), Body: raw,
		Connection: t.conn, Now: s.now()}
	if t.hook != nil {
		in.With = t.hook.With
	}
	got, err := receive(r.Context(), t.receiver, in)
	if err != nil {
		var rej *connector.Rejection
		if errors.As(err, &rej) && rej.Status >= 400 && rej.Status < 500 {
			for k, v := range rej.Header {
				w.Header()[k] = v
			}
			s.reject(w, rej.Status, rej.Code, rej.Message)
			return
		}
		s.log.Error("receive a webhook", "path", path, "error", err)
		s.reject(w, http.StatusInternalServerError, "receiver_failed", "the request could not be handled")
		return
	}
	if got == nil {
		got = &connector.Received{}
	}
	var ids, dups []string
	for i := range got.Events {
		ev, key, bad := s.event(ix, t, &got.Events[i])
		if bad != nil {
			s.reject(w, bad.status, bad.code, bad.msg)
			return
		}
		if ev == nil {
			continue // no recipe listens to it
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
		if got.Reply == nil && t.hook == nil {
			// a recipe's own immediate answer (Trigger.Respond), for a
			// redelivery too: the sender waits for one either way
			reply, err := ix.Respond(ev.Type, t.source, &got.Events[i], ev.Recipes)
			if err != nil {
				s.log.Error("answer a webhook", "path", path, "error", err)
			}
			got.Reply = reply
		}
		if !fresh {
			s.cfg.Metrics.IntakeDup.WithLabelValues(t.service).Inc()
			dups = append(dups, key)
			continue
		}
		s.cfg.Metrics.IntakeAccepted.WithLabelValues(t.service).Inc()
		ids = append(ids, ev.ID)
	}
	switch {
	case got.Reply != nil:
		for k, v := range got.Reply.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(cmp.Or(got.Reply.Status, http.StatusOK))
		_, _ = w.Write(got.Reply.Body)
	case len(ids) == 1 && len(dups) == 0:
		// the answer to every accepted webhook, written without an
		// encoder (an event id needs no escaping)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"accepted","event_id":"`+ids[0]+`"}`+"\n")
	case len(ids) == 0 && len(dups) == 1:
		writeJSON(w, http.StatusOK, map[string]any{"status": "duplicate", "dedup_key": dups[0]})
	case len(ids) > 0:
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "event_ids": ids, "duplicates": len(dups)})
	case len(dups) > 0:
		writeJSON(w, http.StatusOK, map[string]any{"status": "duplicate", "duplicates": len(dups)})
	case got.Ignored != nil:
		for k, v := range got.Ignored.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(cmp.Or(got.Ignored.Status, http.StatusOK))
		_, _ = w.Write(got.Ignored.Body)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ignored", "message": "no recipe listens to this request's events"})
	}
}

// receive calls a connector's receiver; a panic is answered 500 as any
// failure of the receiver, and logged with the rest.
func receive(ctx context.Context, rcv connector.Receiver, in *connector.Incoming) (got *connector.Received, err error) {
	defer func() {
		if v := recover(); v != nil {
			got, err = nil, fmt.Errorf("the receiver panicked: %v", v)
		}
	}()
	return rcv.Receive(ctx, in)
}

// event is the stored event of what a receiver returned, with the recipes
// it is for, and its dedup key as the sender sees it; nil when no recipe
// listens to it.
func (s *Server) event(ix *pipeline.Index, t *intakeTarget, got *connector.Event) (*store.Event, string, *badBody) {
	typ, names := got.Type, []string(nil)
	if t.hook != nil {
		typ, names = t.hook.Spec.ID, t.hook.Recipes
	} else if names = ix.Listeners(typ, t.source, got); len(names) == 0 {
		return nil, "", nil
	}
	ev, err := pipeline.StoredEvent(typ, t.source, names, got, time.Now())
	if err != nil {
		return nil, "", &badBody{http.StatusBadRequest, "bad_body", err.Error()}
	}
	key := got.DedupKey
	if t.hook != nil && t.hook.ID != nil {
		if key, err = dedupKey(t.hook.ID, got.Payload); err != nil {
			return nil, "", &badBody{http.StatusUnprocessableEntity, "bad_id", err.Error()}
		}
	}
	if key == "" {
		key = ev.ID
	}
	if t.hook != nil {
		ev.DedupKey = "hook:" + t.source + ":" + key
	} else {
		ev.DedupKey = "hook:/" + t.service + "/" + t.source + ":" + typ + ":" + key
	}
	return ev, key, nil
}

// dedupKey is the value of a recipe's id expression on an event.
func dedupKey(id *recipes.Expr, payload map[string]any) (string, error) {
	v, err := id.Eval(map[string]any{"event": payload})
	if err != nil {
		// the detail names the recipe file: it is for the log, not the sender
		return "", fmt.Errorf("the recipe's id expression %q failed on this event", id.Source)
	}
	if v == nil || recipes.Text(v) == "" {
		return "", fmt.Errorf("the recipe's id expression %q gave no value for this event", id.Source)
	}
	return recipes.Text(v), nil
}

// Sign returns the signature header value for a body, for senders and tests.
func Sign(secret string, body []byte) string { return httpx.SignSHA256(secret, body) }

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
