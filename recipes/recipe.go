// Package recipes is the recipe language of Sous: the model, YAML loading
// with positions, validation into diagnostics, expression compiling and
// type-checking, templates, the config file and recipe tests.
package recipes

import (
	"errors"
	"time"

	"github.com/sous-run/sous/engine/connector"
)

// Version is the recipe format version this build reads.
const Version = 1

// Recipe is a loaded, checked and compiled recipe.
type Recipe struct {
	File        string
	Pos         Pos
	Version     int
	Name        string
	Description string
	Enabled     bool
	Trigger     Trigger
	Filter      *Expr // nil: every event passes
	Vars        []Var
	Steps       []*Step
	OnError     []*Step
}

// Step returns the step (or on_error step) with that id.
func (r *Recipe) Step(id string) *Step {
	for _, s := range r.Steps {
		if s.ID == id {
			return s
		}
	}
	for _, s := range r.OnError {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Trigger is the compiled trigger of a recipe.
type Trigger struct {
	Type       string
	Connection string
	Spec       *connector.Spec
	Pos        Pos
	// with holds the trigger options; templates in them may use secrets only.
	with Value
	// Exprs are the options of type expression (such as webhook `id`),
	// compiled against the event.
	Exprs map[string]*Expr
	// Event is the shape of the events when the recipe declares a part of
	// it (a webhook's body_schema or body_sample), nil otherwise: see
	// EventShape.
	Event *connector.Shape
}

// Options renders the trigger options with the given secrets, coerces them
// to their field types and applies defaults.
func (t *Trigger) Options(secrets map[string]string) (connector.Values, error) {
	return renderWith(t.Spec, t.with, map[string]any{"secrets": secretsEnv(secrets)})
}

// Sets reports whether the recipe wrote a trigger option, whatever it
// renders to.
func (t *Trigger) Sets(field string) bool {
	if m, ok := t.with.(mapValue); ok {
		_, set := m.get(field)
		return set
	}
	return false
}

// Var is one entry of `vars`.
type Var struct {
	Name  string
	Pos   Pos
	Value Value
}

// Step is one compiled step.
type Step struct {
	ID              string
	Name            string
	Action          string
	Connection      string
	Spec            *connector.Spec
	Pos             Pos
	If              *Expr
	with            Value
	Retry           Retry
	Timeout         time.Duration
	ContinueOnError bool
}

// Render evaluates the step's `with` against env, coerces every field to
// its declared type and applies defaults.
func (s *Step) Render(env map[string]any) (connector.Values, error) {
	return renderWith(s.Spec, s.with, env)
}

// RenderRaw evaluates the step's `with` without coercion: what the recipe
// author wrote, rendered. Recipe tests compare against it.
func (s *Step) RenderRaw(env map[string]any) (map[string]any, error) {
	if s.with == nil {
		return map[string]any{}, nil
	}
	v, err := s.with.Render(env)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// Backoff names a retry backoff.
type Backoff string

// The backoffs.
const (
	BackoffExponential Backoff = "exponential"
	BackoffConstant    Backoff = "constant"
	BackoffLinear      Backoff = "linear"
)

// Retry is a step's retry policy.
type Retry struct {
	MaxAttempts     int
	Backoff         Backoff
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

// DefaultRetry is the policy of a step that sets none.
var DefaultRetry = Retry{MaxAttempts: 3, Backoff: BackoffExponential, InitialInterval: time.Second, MaxInterval: time.Minute}

// DefaultTimeout bounds one attempt of a step that sets no timeout.
const DefaultTimeout = 30 * time.Second

func secretsEnv(secrets map[string]string) map[string]any {
	m := make(map[string]any, len(secrets))
	for k, v := range secrets {
		m[k] = v
	}
	return m
}

func renderWith(spec *connector.Spec, with Value, env map[string]any) (connector.Values, error) {
	out := connector.Values{}
	if with != nil {
		raw, err := with.Render(env)
		if err != nil {
			return nil, err
		}
		m, _ := raw.(map[string]any)
		for k, v := range m {
			fd, ok := spec.Field(k)
			if !ok {
				out[k] = v
				continue
			}
			if v == nil {
				continue
			}
			c, err := fd.CheckValue(v)
			if err != nil {
				if fd.Secret { // the message could quote the value
					err = errors.New("the value does not fit the field")
				}
				return nil, &FieldError{Field: k, Err: err}
			}
			out[k] = c
		}
	}
	for _, fd := range spec.Fields {
		if _, ok := out[fd.Name]; !ok {
			if fd.Default != nil {
				out[fd.Name] = fd.Default
			} else if fd.Required {
				return nil, &FieldError{Field: fd.Name, Err: errMissing}
			}
		}
	}
	return out, nil
}

// FieldError is a rendered `with` value that does not fit its field.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "with." + e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

type missingError struct{}

func (missingError) Error() string { return "required but empty" }

var errMissing = missingError{}
