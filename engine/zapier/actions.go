package zapier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// Input is one declared input field of a zapier.action trigger (its
// `inputs` option): what the action's caller must or may send, and what
// Zapier shows as an input field.
type Input struct {
	Key      string `json:"key"`
	Label    string `json:"label,omitempty"`
	Type     string `json:"type"` // string, number, integer, boolean, datetime
	Required bool   `json:"required,omitempty"`
	Help     string `json:"help_text,omitempty"`
}

// InputTypes are the types an input may declare.
var InputTypes = []string{"string", "number", "integer", "boolean", "datetime"}

// Action is a name zapier.action recipes answer to, with their inputs
// (those of every recipe of that name, the first declaration of a key
// winning) and the recipes.
type Action struct {
	Name    string   `json:"name"`
	Inputs  []Input  `json:"inputs"`
	Recipes []string `json:"recipes"`
}

// ErrNoAction is Start's error for a name no enabled recipe answers to.
var ErrNoAction = errors.New("no recipe answers to that action")

// InputError is an input that does not fit its declaration.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return "input." + e.Field + ": " + e.Message }

// ParseInputs reads a zapier.action trigger's `inputs` option: a list of
// {key, type, required, label, help}.
func ParseInputs(v any) ([]Input, error) {
	list, _ := v.([]any)
	out := make([]Input, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("inputs[%d]: want an object with key and type", i)
		}
		in := Input{Type: "string"}
		in.Key, _ = m["key"].(string)
		if t, ok := m["type"].(string); ok && t != "" {
			in.Type = t
		}
		in.Label, _ = m["label"].(string)
		in.Help, _ = m["help"].(string)
		in.Required, _ = m["required"].(bool)
		if in.Key == "" {
			return nil, fmt.Errorf("inputs[%d]: no key", i)
		}
		if !contains(InputTypes, in.Type) {
			return nil, fmt.Errorf("inputs[%d] (%s): type %q is not one of %s", i, in.Key, in.Type, strings.Join(InputTypes, ", "))
		}
		out = append(out, in)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// channelUse is how a spec takes part in this channel; nil when it does
// not.
func channelUse(s *connector.Spec) *connector.ChannelUse {
	if s == nil || s.Channel == nil || s.Channel.Name != Channel {
		return nil
	}
	return s.Channel
}

// actions gathers the recipes Zapier starts (their trigger declares this
// channel), by the name they answer to.
func (h *Hub) actions() map[string]*Action {
	out := map[string]*Action{}
	if h.cfg.Engine == nil || h.cfg.Engine.Index() == nil {
		return out
	}
	for _, rec := range h.cfg.Engine.Index().Recipes() {
		use := channelUse(rec.Trigger.Spec)
		if use == nil || !rec.Enabled {
			continue
		}
		opts, err := rec.Trigger.Options(nil)
		if err != nil {
			h.log.Warn("zapier: the trigger options of a recipe Zapier starts", "recipe", rec.Name, "error", err)
			continue
		}
		name := opts.String(use.TopicField)
		inputs, err := ParseInputs(opts[use.InputsField])
		if err != nil {
			h.log.Warn("zapier: the inputs of a recipe Zapier starts", "recipe", rec.Name, "error", err)
			continue
		}
		a := out[name]
		if a == nil {
			a = &Action{Name: name, Inputs: []Input{}}
			out[name] = a
		}
		a.Recipes = append(a.Recipes, rec.Name)
		for _, in := range inputs {
			if !containsKey(a.Inputs, in.Key) {
				a.Inputs = append(a.Inputs, in)
			}
		}
	}
	return out
}

func containsKey(ins []Input, key string) bool {
	for _, in := range ins {
		if in.Key == key {
			return true
		}
	}
	return false
}

// Actions lists the actions of the loaded recipes, by name.
func (h *Hub) Actions() []*Action {
	m := h.actions()
	out := make([]*Action, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Validate checks an input against the declared fields and returns it
// coerced: numbers, integers and booleans may come as text (Zapier sends
// what its user typed), a datetime is RFC 3339 text. Keys not declared
// pass as they are.
func Validate(decl []Input, input map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(input))
	for k, v := range input {
		out[k] = v
	}
	for _, in := range decl {
		v, ok := input[in.Key]
		if !ok || v == nil || v == "" {
			if in.Required {
				return nil, &InputError{Field: in.Key, Message: "required"}
			}
			delete(out, in.Key)
			continue
		}
		c, err := coerce(in.Type, v)
		if err != nil {
			return nil, &InputError{Field: in.Key, Message: err.Error()}
		}
		out[in.Key] = c
	}
	return out, nil
}

func coerce(typ string, v any) (any, error) {
	s, isText := v.(string)
	s = strings.TrimSpace(s)
	switch typ {
	case "string":
		switch x := v.(type) {
		case string:
			return x, nil
		case float64, bool:
			b, _ := json.Marshal(x)
			return string(b), nil
		}
		return nil, errors.New("want text")
	case "number":
		if f, ok := v.(float64); ok {
			return f, nil
		}
		if f, err := strconv.ParseFloat(s, 64); isText && err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, nil
		}
		return nil, errors.New("want a number")
	case "integer":
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		if n, err := strconv.ParseInt(s, 10, 64); isText && err == nil {
			return n, nil
		}
		return nil, errors.New("want an integer")
	case "boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
		if b, err := strconv.ParseBool(s); isText && err == nil {
			return b, nil
		}
		return nil, errors.New("want true or false")
	case "datetime":
		if t, err := time.Parse(time.RFC3339, s); isText && err == nil {
			return t.UTC().Format(time.RFC3339Nano), nil
		}
		return nil, errors.New("want a date and time in RFC 3339 (2026-01-02T15:04:05Z)")
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}

// Started is a run a Start began, and, once it finished (wait), its
// outcome and its steps' outputs.
type Started struct {
	ID      string                    `json:"id"`
	Recipe  string                    `json:"recipe"`
	EventID string                    `json:"event_id"`
	Status  string                    `json:"status"` // queued, or the run's status
	Error   string                    `json:"error,omitempty"`
	Outputs map[string]map[string]any `json:"outputs,omitempty"`
}

// Start validates an input for the action name and starts every recipe
// that answers to it with the event {action, input, meta}: each run is
// queued durably before Start returns. With wait, it then waits (up to
// wait) for the runs to finish and reads their outputs.
func (h *Hub) Start(ctx context.Context, name string, input, meta map[string]any, wait time.Duration) ([]*Started, error) {
	a := h.actions()[name]
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoAction, name)
	}
	in, err := Validate(a.Inputs, input)
	if err != nil {
		return nil, err
	}
	if meta == nil {
		meta = map[string]any{}
	}
	payload, err := json.Marshal(map[string]any{"action": name, "input": in, "meta": meta})
	if err != nil {
		return nil, fmt.Errorf("the input is not JSON: %w", err)
	}
	var out []*Started
	for _, rec := range a.Recipes {
		eventID, runID, queued, err := h.cfg.Engine.RunNow(ctx, rec, payload)
		if err != nil {
			return out, fmt.Errorf("start %s: %w", rec, err)
		}
		st := &Started{ID: runID, Recipe: rec, EventID: eventID, Status: "queued"}
		if !queued {
			st.Status = "filtered"
		}
		out = append(out, st)
	}
	if wait <= 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		done := true
		for _, st := range out {
			if st.Status != "queued" {
				continue
			}
			run, err := h.cfg.Store.GetRun(ctx, st.ID)
			if errors.Is(err, store.ErrNotFound) || err == nil && !finished(run.Status) {
				done = false
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return out, nil
				}
				return out, err
			}
			st.Status, st.Error, st.Outputs = run.Status, run.Error, outputs(run.Record)
		}
		if done {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, nil // those still running say "queued"
		case <-t.C:
		}
	}
}

func finished(status string) bool {
	switch status {
	case "succeeded", "failed", "filtered", "dead":
		return true
	}
	return false
}

// outputs reads the steps' outputs from a run's record.
func outputs(record json.RawMessage) map[string]map[string]any {
	var r struct {
		Steps []struct {
			ID     string         `json:"id"`
			Output map[string]any `json:"output"`
		} `json:"steps"`
	}
	out := map[string]map[string]any{}
	if json.Unmarshal(record, &r) != nil {
		return out
	}
	for _, s := range r.Steps {
		if s.Output != nil {
			out[s.ID] = s.Output
		}
	}
	return out
}

// recipesOf lists loaded recipes.
func (h *Hub) recipesOf() []*recipes.Recipe {
	if h.cfg.Engine == nil || h.cfg.Engine.Index() == nil {
		return nil
	}
	return h.cfg.Engine.Index().Recipes()
}
