// Package pipeline is the runtime's data flow on Watermill: accepted
// events on the "events" topic, a matcher that finds the recipes an event
// starts (an index by trigger type and key, so its cost does not grow with
// recipes that do not match) and evaluates their filters, one message per
// matched recipe on the "runs" topic, and a runner that executes them,
// records every attempt and retries durably.
package pipeline

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// Index finds recipes by trigger type and key. Keys are the webhook path
// for webhook.received, the recipe for schedule.cron, the connection for
// service webhooks, and "" for the rest. An Index is immutable: a reload builds a new one.
type Index struct {
	byName map[string]*recipes.Recipe
	// byKey holds the recipes of every trigger type but webhooks, whose
	// hooks hold them: one map entry less per webhook recipe
	byKey map[string]map[string][]*recipes.Recipe // type -> key -> recipes
	hooks map[string]*Hook                        // webhook path -> hook
}

// webhookType is the trigger type of webhooks, indexed by their hooks.
const webhookType = "webhook.received"

// Hook is what intake needs to know about one webhook path, shared by all
// recipes on it.
type Hook struct {
	Path            string
	Secret          string // empty: unsigned
	SignatureHeader string
	Token           string // empty: no token asked for
	TokenHeader     string
	ID              *recipes.Expr // dedup key expression, may be nil
	Methods         []string
	Recipes         []string
	recipes         []*recipes.Recipe // as Recipes
}

// Key is the index key of a recipe's trigger.
func Key(r *recipes.Recipe, opts connector.Values) string {
	switch {
	case r.Trigger.Type == webhookType:
		return opts.String("path")
	case r.Trigger.Type == "schedule.cron":
		return r.Name // each tick is an event for one recipe
	case r.Trigger.Connection != "":
		return r.Trigger.Connection
	}
	return ""
}

// BuildIndex indexes the enabled recipes. Recipes sharing a webhook path
// must agree on its secret, signature header, id expression and methods;
// a conflict is returned as an error naming both recipes, and the later
// recipe is left out.
func BuildIndex(rs []*recipes.Recipe, secrets map[string]string) (*Index, []error) {
	ix := &Index{byName: make(map[string]*recipes.Recipe, len(rs)), byKey: map[string]map[string][]*recipes.Recipe{}, hooks: map[string]*Hook{}}
	var errs []error
	// the lists of methods, shared by the hooks that accept the same
	methods := map[string][]string{}
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
		key := Key(r, opts)
		if r.Trigger.Type == webhookType {
			h := &Hook{Path: key, Secret: opts.String("secret"), SignatureHeader: opts.String("signature_header"),
				Token: opts.String("token"), TokenHeader: opts.String("token_header"),
				ID: r.Trigger.Exprs["id"], Recipes: []string{r.Name}, recipes: []*recipes.Recipe{r}}
			for _, m := range asList(opts["methods"]) {
				h.Methods = append(h.Methods, strings.ToUpper(m))
			}
			joined := strings.Join(h.Methods, ",")
			if shared, ok := methods[joined]; ok {
				h.Methods = shared
			} else {
				h.Methods = slices.Clip(h.Methods)
				methods[joined] = h.Methods
			}
			if prev, ok := ix.hooks[key]; ok {
				if err := prev.compatible(h); err != nil {
					errs = append(errs, fmt.Errorf("recipe %s: webhook path %s is shared with recipe %s, but %w", r.Name, key, prev.Recipes[0], err))
					continue
				}
				prev.Recipes = append(prev.Recipes, r.Name)
				prev.recipes = append(prev.recipes, r)
			} else {
				ix.hooks[key] = h
			}
		}
		ix.byName[r.Name] = r
		if r.Trigger.Type == webhookType {
			continue // its hook holds it
		}
		m, ok := ix.byKey[r.Trigger.Type]
		if !ok {
			m = map[string][]*recipes.Recipe{}
			ix.byKey[r.Trigger.Type] = m
		}
		m[key] = append(m[key], r)
	}
	return ix, errs
}

func asList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

func (h *Hook) compatible(o *Hook) error {
	switch {
	case h.Secret != o.Secret:
		return fmt.Errorf("their secrets differ")
	case h.SignatureHeader != o.SignatureHeader:
		return fmt.Errorf("their signature headers differ")
	case h.Token != o.Token || h.TokenHeader != o.TokenHeader:
		return fmt.Errorf("their tokens differ")
	case exprSource(h.ID) != exprSource(o.ID):
		return fmt.Errorf("their id expressions differ")
	case strings.Join(h.Methods, ",") != strings.Join(o.Methods, ","):
		return fmt.Errorf("their methods differ")
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
	if typ == webhookType {
		if h := ix.hooks[key]; h != nil {
			return h.recipes
		}
		return nil
	}
	return ix.byKey[typ][key]
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
	if typ == webhookType {
		for _, h := range ix.hooks {
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
