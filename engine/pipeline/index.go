// Package pipeline is the runtime's data flow on Watermill: accepted
// events on the "events" topic, a matcher that finds the recipes an event
// starts (an index by trigger type and key, so its cost does not grow with
// recipes that do not match) and evaluates their filters, one message per
// matched recipe on the "runs" topic, and a runner that executes them,
// records every attempt and retries durably.
package pipeline

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// Index finds recipes by trigger type and key. The key is what the
// trigger's spec says (connector.IndexKey): an option's value for a
// receiver keyed by a field (webhook.received's path), the connection for
// service webhooks, the recipe for schedules, connection and options for
// pollers. An Index is immutable: a reload builds a new one.
type Index struct {
	byName map[string]*recipes.Recipe
	// byKey holds the recipes of every trigger type but those keyed by a
	// field, whose hooks hold them: one map entry less per webhook recipe
	byKey map[string]map[string][]*recipes.Recipe // type -> key -> recipes
	hooks map[string]*Hook                        // field key (path) -> hook
	polls map[string]*Poll                        // poll key -> poller
	// opts holds the options of the recipes whose trigger filters events
	// by them (Trigger.Match), by recipe
	opts map[string]connector.Values
}

// Hook is what intake needs to know about one key of a trigger keyed by a
// field (a webhook path), shared by all recipes on it.
type Hook struct {
	Path string // the key: the path under /hooks
	Spec *connector.Spec
	// With holds the options the recipes on the path share, secrets
	// rendered, but the key field (the path): what the receiver verifies
	// requests with. Hooks with the same options share one map.
	With    connector.Values
	ID      *recipes.Expr // dedup key expression (Trigger.DedupField), may be nil
	Recipes []string
	recipes []*recipes.Recipe // as Recipes
}

// Poll is one poller: a polled trigger, its connection and options, and
// the recipes that share them.
type Poll struct {
	Key        string // connector.PollKey
	Spec       *connector.Spec
	Connection string
	With       connector.Values
	Recipes    []string
}

// Key is the index key of a recipe's trigger.
func Key(r *recipes.Recipe, opts connector.Values) string {
	if r.Trigger.Spec == nil {
		return r.Trigger.Connection
	}
	return connector.IndexKey(r.Trigger.Spec, r.Name, r.Trigger.Connection, opts)
}

// keyedByField reports whether a trigger's recipes are held by hooks.
func keyedByField(s *connector.Spec) bool {
	return s != nil && s.Trigger != nil && s.Trigger.Key == connector.KeyField
}

// BuildIndex indexes the enabled recipes. Recipes sharing a key of a
// trigger keyed by a field (a webhook path) must agree on the options
// their receiver uses (Trigger.Compatible); a conflict is returned as an
// error naming both recipes, and the later recipe is left out.
func BuildIndex(rs []*recipes.Recipe, secrets map[string]string) (*Index, []error) {
	ix := &Index{byName: make(map[string]*recipes.Recipe, len(rs)), byKey: map[string]map[string][]*recipes.Recipe{},
		hooks: map[string]*Hook{}, polls: map[string]*Poll{}, opts: map[string]connector.Values{}}
	var errs []error
	shared := sharedOptions{}
	sorted := append([]*recipes.Recipe(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, r := range sorted {
		if !r.Enabled {
			continue
		}
		opts, err := r.Trigger.Options(secrets)
		if err != nil {
			errs = append(errs, fmt.Errorf("recipe %s: trigger options: %w", r.Name, err))
			continue
		}
		if missing := missingSecrets(r, opts); len(missing) > 0 {
			// an empty signing secret would accept unsigned requests
			errs = append(errs, fmt.Errorf("recipe %s: trigger option %s is empty: set its secret in the environment (SOUS_SECRET_<NAME>)",
				r.Name, strings.Join(missing, ", ")))
			continue
		}
		spec := r.Trigger.Spec
		key := Key(r, opts)
		if keyedByField(spec) {
			var id *recipes.Expr
			if spec.Trigger.DedupField != "" {
				id = r.Trigger.Exprs[spec.Trigger.DedupField]
			}
			if prev, ok := ix.hooks[key]; ok {
				if err := prev.compatible(spec, opts, id); err != nil {
					errs = append(errs, fmt.Errorf("recipe %s: webhook path %s is shared with recipe %s, but %w", r.Name, key, prev.Recipes[0], err))
					continue
				}
				prev.Recipes = append(prev.Recipes, r.Name)
				prev.recipes = append(prev.recipes, r)
			} else {
				ix.hooks[key] = &Hook{Path: key, Spec: spec, With: shared.of(spec, opts), ID: id, Recipes: []string{r.Name},
					recipes: []*recipes.Recipe{r}}
			}
			ix.byName[r.Name] = r
			continue // its hook holds it
		}
		if spec != nil && connector.Polls(spec, opts) {
			if p, ok := ix.polls[key]; ok {
				p.Recipes = append(p.Recipes, r.Name)
			} else {
				ix.polls[key] = &Poll{Key: key, Spec: spec, Connection: r.Trigger.Connection, With: opts, Recipes: []string{r.Name}}
			}
		}
		if spec != nil && spec.Trigger != nil && (spec.Trigger.Match != nil || spec.Trigger.Respond != nil) {
			ix.opts[r.Name] = opts
		}
		ix.byName[r.Name] = r
		m, ok := ix.byKey[r.Trigger.Type]
		if !ok {
			m = map[string][]*recipes.Recipe{}
			ix.byKey[r.Trigger.Type] = m
		}
		m[key] = append(m[key], r)
	}
	return ix, errs
}

// sharedOptions holds one copy of each distinct set of hook options, so
// that the many webhook recipes whose options differ only by path (the
// key, which the receiver has from the request) keep one map between them
// rather than one each: a few hundred bytes per loaded recipe.
type sharedOptions map[string]connector.Values

// of is opts without the key field, shared with the hooks that have the
// same.
func (so sharedOptions) of(spec *connector.Spec, opts connector.Values) connector.Values {
	rest := make(connector.Values, len(opts))
	for k, v := range opts {
		if k != spec.Trigger.KeyField {
			rest[k] = v
		}
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return rest
	}
	key := spec.ID + " " + string(b)
	if v, ok := so[key]; ok {
		return v
	}
	so[key] = rest
	return rest
}

// compatible checks that a recipe of spec with options opts and dedup
// expression id may share the hook.
func (h *Hook) compatible(spec *connector.Spec, opts connector.Values, id *recipes.Expr) error {
	if spec != h.Spec {
		return fmt.Errorf("their triggers differ (%s, %s)", h.Spec.ID, spec.ID)
	}
	check := spec.Trigger.Compatible
	if check == nil {
		check = connector.DefaultCompatible(spec)
	}
	if err := check(h.With, opts); err != nil {
		return err
	}
	if exprSource(h.ID) != exprSource(id) {
		return fmt.Errorf("their id expressions differ")
	}
	return nil
}

func exprSource(e *recipes.Expr) string {
	if e == nil {
		return ""
	}
	return e.Source
}

// Match returns the recipes an event of a type and key starts.
func (ix *Index) Match(typ, key string) []*recipes.Recipe {
	if m, ok := ix.byKey[typ]; ok {
		return m[key]
	}
	if h := ix.hooks[key]; h != nil && h.Spec.ID == typ {
		return h.recipes
	}
	return nil
}

// Options are a recipe's trigger options, secrets rendered, for triggers
// that filter events or answer requests by them (Trigger.Match,
// Trigger.Respond); nil for the others.
func (ix *Index) Options(recipe string) connector.Values { return ix.opts[recipe] }

// Polls lists the pollers the recipes need, by key.
func (ix *Index) Polls() []*Poll {
	out := make([]*Poll, 0, len(ix.polls))
	for _, p := range ix.polls {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Recipe returns a recipe by name.
func (ix *Index) Recipe(name string) *recipes.Recipe { return ix.byName[name] }

// Hook returns the webhook registered on a path.
func (ix *Index) Hook(path string) *Hook { return ix.hooks[path] }

// Recipes lists the indexed recipes by name.
func (ix *Index) Recipes() []*recipes.Recipe {
	out := make([]*recipes.Recipe, 0, len(ix.byName))
	for _, r := range ix.byName {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ByType lists the recipes with a trigger type.
func (ix *Index) ByType(typ string) []*recipes.Recipe {
	var out []*recipes.Recipe
	for _, h := range ix.hooks {
		if h.Spec.ID == typ {
			out = append(out, h.recipes...)
		}
	}
	for _, rs := range ix.byKey[typ] {
		out = append(out, rs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// missingSecrets lists the secret trigger options a recipe sets that render
// empty.
func missingSecrets(r *recipes.Recipe, opts connector.Values) []string {
	var out []string
	for _, name := range r.Trigger.Spec.SecretFields() {
		if r.Trigger.Sets(name) && opts.String(name) == "" {
			out = append(out, name)
		}
	}
	return out
}

// emptyIndex is the index of no recipes.
func emptyIndex() *Index {
	ix, _ := BuildIndex(nil, nil)
	return ix
}
