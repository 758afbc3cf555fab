// Package connectortest is the test kit every action runs: the checks that
// hold for any service, written once. An action's test describes a call
// that succeeds against the service's fake (Kit), and Run checks that
//
//   - the spec's field examples and the kit's `with` validate;
//   - the call succeeds and its output matches the declared shape;
//   - a secret canary placed in every secret field of the connection shows
//     up in no error, log line or output;
//   - 429 (with its Retry-After) and 5xx are retryable, with their reasons,
//     and 400, 401, 403 and 404 are not (400 client_error, 401 auth, 404
//     not_found);
//   - a cancelled context ends the call at once, with an error.
//
// Failures are injected in front of the fake, for every request of the
// call, so that each of the action's requests is held to them.
package connectortest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// Kit describes one action for Run.
type Kit struct {
	// Spec is the action's spec.
	Spec *connector.Spec
	// ConnectionSpec is the connection type; Run looks up Spec.Connection
	// in connector.Default when nil.
	ConnectionSpec *connector.ConnectionSpec
	// Connection holds the connection's values (without base_url, which
	// Run points at the fake). Run sets every secret field of the type,
	// given or not, to a canary, and nested secrets (oauth's) too.
	Connection connector.Values
	// With is a `with` block for a call that succeeds against Fake: literal
	// values, before defaults (Run applies them).
	With map[string]any
	// Fake answers the service's API for the successful call.
	Fake http.Handler
	// BaseURL gives the connection's base_url from the fake's URL; the
	// fake's URL with a trailing slash when nil.
	BaseURL func(serverURL string) string
	// NoHTTP says the action does not speak HTTP to the fake (email over
	// SMTP): Run skips the injected HTTP failures, and Fake is not served.
	NoHTTP bool
	// Cancel, with NoHTTP, is a `with` block and connection values whose
	// call blocks until its context ends (a server that never answers),
	// for the cancellation check; nil skips it.
	Cancel func(t *testing.T) (with map[string]any, conn connector.Values)
}

// Canary is the prefix of the secret canary Run places in a connection.
const Canary = "sous-canary-"

// Run runs the shared checks on an action as subtests of t.
func Run(t *testing.T, k Kit) {
	t.Helper()
	require.NotNil(t, k.Spec, "Kit.Spec")
	require.NotNil(t, k.Spec.Action, "%s has no Action", k.Spec.ID)
	cs := k.ConnectionSpec
	if cs == nil && k.Spec.Connection != "" {
		var ok bool
		cs, ok = connector.Default.Connection(k.Spec.Connection)
		require.True(t, ok, "connection type %q is not registered", k.Spec.Connection)
	}
	canary := Canary + randomHex()

	t.Run("examples validate", func(t *testing.T) {
		for _, f := range k.Spec.Fields {
			if f.Example == nil || isTemplate(f.Example) {
				continue
			}
			_, err := f.CheckValue(f.Example)
			require.NoError(t, err, "%s: the example of %s", k.Spec.ID, f.Name)
		}
		_, err := With(k.Spec, k.With)
		require.NoError(t, err, "Kit.With")
	})

	inject := &injector{stop: make(chan struct{})}
	srv := httptest.NewServer(inject.wrap(k.Fake))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(inject.stop) }) // runs first: no handler hangs on

	base := srv.URL + "/"
	if k.BaseURL != nil {
		base = k.BaseURL(srv.URL)
	}
	conn := func(values connector.Values) *connector.Connection {
		vals := Canaried(cs, values, canary)
		if !k.NoHTTP && cs != nil {
			if _, ok := fieldOf(cs.Fields, connector.ConnBaseURL); ok {
				vals[connector.ConnBaseURL] = base
			}
		}
		c := &connector.Connection{Name: "kit", Values: vals}
		if cs != nil {
			c.Type = cs.Type
			cl, err := connector.NewClient(c, cs, nil, connector.ClientHooks{})
			require.NoError(t, err)
			c.Client = cl
			c.AccessToken = cl.Token
		}
		return c
	}
	call := func(ctx context.Context, with map[string]any, values connector.Values) (map[string]any, string, error) {
		w, err := With(k.Spec, with)
		require.NoError(t, err)
		var logs bytes.Buffer
		req := &connector.Request{Recipe: "kit", RunID: "run-kit-1", Step: "step", With: w, Connection: conn(values),
			IdempotencyKey: "run-kit-1:step",
			Logger:         slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		out, err := k.Spec.Action.Run(ctx, req)
		return out, logs.String(), err
	}
	noCanary := func(t *testing.T, out map[string]any, err error, logs string) {
		t.Helper()
		if err != nil {
			require.NotContains(t, err.Error(), canary, "the error holds a secret")
		}
		require.NotContains(t, logs, canary, "a log line holds a secret")
		require.NotContains(t, fmt.Sprint(out), canary, "the output holds a secret")
	}

	t.Run("succeeds with the declared output", func(t *testing.T) {
		inject.set(0)
		out, logs, err := call(context.Background(), k.With, k.Connection)
		noCanary(t, out, err, logs)
		require.NoError(t, err)
		if k.Spec.Shape != nil {
			require.NoError(t, Conforms(k.Spec.Shape, out), "output %v", out)
		}
	})

	if !k.NoHTTP {
		for _, tc := range []struct {
			status     int
			retryable  bool
			reason     connector.Reason
			retryAfter time.Duration
		}{
			{http.StatusTooManyRequests, true, connector.ReasonRateLimited, 7 * time.Second},
			{http.StatusInternalServerError, true, connector.ReasonServerError, 0},
			{http.StatusBadGateway, true, connector.ReasonServerError, 0},
			{http.StatusServiceUnavailable, true, connector.ReasonServerError, 0},
			{http.StatusBadRequest, false, connector.ReasonClientError, 0},
			{http.StatusUnauthorized, false, connector.ReasonAuth, 0},
			{http.StatusForbidden, false, "", 0},
			{http.StatusNotFound, false, connector.ReasonNotFound, 0},
		} {
			t.Run(fmt.Sprintf("a %d is %s", tc.status, kind(tc.retryable)), func(t *testing.T) {
				inject.set(tc.status)
				defer inject.set(0)
				out, logs, err := call(context.Background(), k.With, k.Connection)
				noCanary(t, out, err, logs)
				require.Error(t, err, "a call answered %d must fail", tc.status)
				ce := connector.Classify(err)
				require.Equal(t, tc.retryable, ce.Retryable, "%v", err)
				if tc.reason != "" {
					require.Equal(t, tc.reason, ce.Reason, "%v", err)
				}
				if tc.retryAfter > 0 {
					require.Equal(t, tc.retryAfter, ce.RetryAfter, "Retry-After is honoured: %v", err)
				}
			})
		}
	}

	t.Run("a cancelled context ends the call", func(t *testing.T) {
		with, values := k.With, k.Connection
		if k.NoHTTP {
			if k.Cancel == nil {
				t.Skip("Kit.Cancel is nil: the action has no server to hang")
			}
			with, values = k.Cancel(t)
		} else {
			inject.set(hang)
			defer inject.set(0)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		out, logs, err := call(ctx, with, values)
		noCanary(t, out, err, logs)
		require.Error(t, err)
		require.Less(t, time.Since(start), 10*time.Second, "the call outlived its context")
	})
}

func kind(retryable bool) string {
	if retryable {
		return "retryable"
	}
	return "permanent"
}

// hang is the injected mode of a server that answers nothing until the
// request's context ends.
const hang = -1

// injector answers every request with a failure while a status is set,
// and hands it to the fake otherwise.
type injector struct {
	status atomic.Int64
	stop   chan struct{}
}

func (in *injector) set(status int) { in.status.Store(int64(status)) }

func (in *injector) wrap(fake http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch st := int(in.status.Load()); {
		case st == hang:
			select {
			case <-r.Context().Done():
			case <-in.stop:
			}
		case st != 0:
			if st == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "7")
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"ok":false,"error":"injected %d","message":"injected %d"}`, st, st)
		case fake == nil:
			http.Error(w, "the kit has no fake", http.StatusNotImplemented)
		default:
			fake.ServeHTTP(w, r)
		}
	})
}

// With checks a literal `with` block against a spec as a recipe's would
// be: unknown and missing required fields refused, each value coerced and
// checked, defaults applied, the spec's Validate run.
func With(s *connector.Spec, with map[string]any) (connector.Values, error) {
	out := connector.Values{}
	for name, v := range with {
		f, ok := s.Field(name)
		if !ok {
			return nil, fmt.Errorf("%s has no field %q", s.ID, name)
		}
		c, err := f.CheckValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = c
	}
	for _, f := range s.Fields {
		if _, ok := out[f.Name]; ok {
			continue
		}
		if f.Required {
			return nil, fmt.Errorf("%s: %s is required", s.ID, f.Name)
		}
		if f.Default != nil {
			c, err := f.CheckValue(f.Default)
			if err != nil {
				return nil, fmt.Errorf("%s: the default: %w", f.Name, err)
			}
			out[f.Name] = c
		}
	}
	if s.Validate != nil {
		if errs := s.Validate(out); len(errs) > 0 {
			return nil, fmt.Errorf("%s: %s", errs[0].Field, errs[0].Message)
		}
	}
	return out, nil
}

// Canaried is values with every secret field of the connection type set
// to canary, nested ones (oauth's client_secret) included. A type's
// choice between credentials (ConnectionSpec.OneOf) is kept: a secret
// field is set only where values sets it or it belongs to no OneOf set,
// or to the set values chose.
func Canaried(cs *connector.ConnectionSpec, values connector.Values, canary string) connector.Values {
	out := connector.Values{}
	for k, v := range values {
		out[k] = v
	}
	if cs == nil {
		return out
	}
	chosen := map[string]bool{}
	for _, set := range cs.OneOf {
		for _, name := range set {
			if values.Has(name) {
				for _, n := range set {
					chosen[n] = true
				}
			}
		}
	}
	inOneOf := map[string]bool{}
	for _, set := range cs.OneOf {
		for _, name := range set {
			inOneOf[name] = true
		}
	}
	for _, f := range cs.Fields {
		if inOneOf[f.Name] && !chosen[f.Name] && !values.Has(f.Name) {
			continue
		}
		switch {
		case f.Secret && f.Type == connector.StringMap:
			m := map[string]any{}
			for k := range values.StringMap(f.Name) {
				m[k] = canary
			}
			if len(m) == 0 {
				m["X-Canary"] = canary
			}
			out[f.Name] = m
		case f.Secret:
			out[f.Name] = canary
		case len(f.Fields) > 0 && values.Has(f.Name):
			m := map[string]any{}
			for k, v := range values.Map(f.Name) {
				m[k] = v
			}
			for _, sub := range f.Fields {
				if sub.Secret {
					m[sub.Name] = canary
				}
			}
			out[f.Name] = m
		}
	}
	return out
}

// Conforms checks a value against a shape: an object's declared keys are
// there with their types (a closed object holds no other key), a list's
// elements have the element's shape; Any matches anything, and nil
// matches any shape but a required top-level key's absence.
func Conforms(s *connector.Shape, v any) error {
	return conforms(s, v, "output")
}

func conforms(s *connector.Shape, v any, at string) error {
	if s == nil || v == nil || s.Type == connector.Any {
		return nil
	}
	switch s.Type {
	case connector.Object, connector.StringMap:
		m, ok := v.(map[string]any)
		if !ok {
			if _, isSM := v.(map[string]string); isSM && s.Type == connector.StringMap {
				return nil
			}
			return fmt.Errorf("%s: want an object, got %T", at, v)
		}
		if s.Type == connector.StringMap {
			for k, e := range m {
				if _, ok := e.(string); !ok {
					return fmt.Errorf("%s.%s: want a string, got %T", at, k, e)
				}
			}
			return nil
		}
		declared := map[string]bool{}
		for _, p := range s.Props {
			declared[p.Name] = true
			e, ok := m[p.Name]
			if !ok {
				if at == "output" {
					return fmt.Errorf("%s: the declared key %q is missing", at, p.Name)
				}
				continue
			}
			if err := conforms(p.Shape, e, at+"."+p.Name); err != nil {
				return err
			}
		}
		for k, e := range m {
			if declared[k] {
				continue
			}
			if !s.Open {
				return fmt.Errorf("%s: key %q is not declared", at, k)
			}
			if err := conforms(s.Elem, e, at+"."+k); err != nil {
				return err
			}
		}
	case connector.List:
		l, ok := v.([]any)
		if !ok {
			if isSlice(v) {
				return nil // a typed slice: its elements are typed by Go
			}
			return fmt.Errorf("%s: want a list, got %T", at, v)
		}
		for i, e := range l {
			if err := conforms(s.Elem, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case connector.String, connector.Duration, connector.Expression:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: want a string, got %T", at, v)
		}
	case connector.Int:
		switch v.(type) {
		case int, int64, int32:
		default:
			return fmt.Errorf("%s: want an integer (int64), got %T", at, v)
		}
	case connector.Number:
		switch v.(type) {
		case float64, int64, int:
		default:
			return fmt.Errorf("%s: want a number, got %T", at, v)
		}
	case connector.Bool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %T", at, v)
		}
	}
	return nil
}

func isSlice(v any) bool {
	switch v.(type) {
	case []string, []map[string]any, []int64, []float64:
		return true
	}
	return false
}

// isTemplate reports whether an example is a placeholder (${VAR} or a
// {{ }} template) rather than a value to check.
func isTemplate(v any) bool {
	s, ok := v.(string)
	return ok && (strings.Contains(s, "${") || strings.Contains(s, "{{"))
}

func fieldOf(fields []connector.Field, name string) (*connector.Field, bool) {
	for i := range fields {
		if fields[i].Name == name {
			return &fields[i], true
		}
	}
	return nil, false
}

func randomHex() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed"))
	}
	return hex.EncodeToString(b)
}
