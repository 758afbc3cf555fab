package main

import (
	"fmt"
	"sort"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// sharedKeys reports the recipes that `sous serve` would not load because
// they share a key of a trigger keyed by a field (a webhook path) with an
// earlier recipe (by name, as the runtime indexes them) but disagree on
// the options the shared receiver uses. The options are compared as
// written, so that two recipes naming different secrets differ before any
// secret is known.
func sharedKeys(rs []*recipes.Recipe) recipes.Diagnostics {
	sorted := append([]*recipes.Recipe(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	type first struct {
		rec  *recipes.Recipe
		opts connector.Values
	}
	byKey := map[string]*first{}
	var diags recipes.Diagnostics
	for _, r := range sorted {
		spec := r.Trigger.Spec
		if !r.Enabled || spec == nil || spec.Trigger == nil || spec.Trigger.Key != connector.KeyField {
			continue
		}
		opts := connector.Values{}
		for k, v := range r.Trigger.Written() {
			opts[k] = v
		}
		for _, f := range spec.Fields {
			if _, ok := opts[f.Name]; !ok && f.Default != nil {
				opts[f.Name] = f.Default
			}
		}
		key, ok := opts[spec.Trigger.KeyField].(string)
		if !ok || key == "" {
			continue // a template, or absent: reported elsewhere
		}
		key = spec.ID + " " + key
		prev, ok := byKey[key]
		if !ok {
			byKey[key] = &first{r, opts}
			continue
		}
		check := spec.Trigger.Compatible
		if check == nil {
			check = connector.DefaultCompatible(spec)
		}
		if err := check(prev.opts, opts); err != nil {
			diags = append(diags, recipes.Diagnostic{Pos: r.Trigger.Pos, Severity: recipes.SevError,
				Message: fmt.Sprintf("%s %q is shared with recipe %s, but %v: `sous serve` would not load this recipe (give it its own %s, or the same options)",
					spec.Trigger.KeyField, opts[spec.Trigger.KeyField], prev.rec.Name, err, spec.Trigger.KeyField)})
		}
	}
	return diags
}
