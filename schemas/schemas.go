// Package schemas generates the JSON Schemas of recipe files and of the
// config file from the connector specs, and embeds the committed copies,
// recipe.schema.json and config.schema.json. `make generate` rewrites
// them; a test fails when a committed copy is stale.
package schemas

import (
	_ "embed"
	"encoding/json"
	"sort"

	"github.com/sous-run/sous/engine/connector"
)

// Recipe is the committed recipe JSON Schema.
//
//go:embed recipe.schema.json
var Recipe []byte

// ID is the schema's $id.
const ID = "https://sous.dev/schemas/recipe.schema.json"

type obj = map[string]any

// templateRE matches a string holding a {{ }} template.
const templateRE = `\{\{.*\}\}`

// durationRE matches a Go duration such as 30s or 1h30m.
const durationRE = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

var template = obj{"type": "string", "pattern": templateRE, "description": "A {{ expression }} template"}

// Generate builds the recipe JSON Schema (draft 2020-12) from a registry.
func Generate(reg *connector.Registry) ([]byte, error) {
	defs := obj{
		"template":   template,
		"expression": obj{"type": "string", "description": "An expr-lang expression (https://expr-lang.org)"},
		"duration":   obj{"type": "string", "pattern": durationRE, "description": "A duration such as 30s, 5m or 1h30m"},
	}
	triggers := reg.Specs(connector.KindTrigger)
	actions := reg.Specs(connector.KindAction)
	for _, s := range append(append([]*connector.Spec{}, triggers...), actions...) {
		defs["with."+s.ID] = withSchema(s)
	}
	defs["trigger"] = obj{
		"type":                 "object",
		"description":          "What starts the recipe: exactly one trigger",
		"additionalProperties": false,
		"required":             []string{"type"},
		"properties": obj{
			"type":       obj{"enum": ids(triggers), "description": "The trigger, <connector>.<event>"},
			"connection": obj{"type": "string", "description": "A connection name from the config file"},
			"with":       obj{"type": "object", "description": "Trigger options"},
		},
		"allOf": dispatch("type", triggers),
	}
	defs["retry"] = obj{
		"type":                 "object",
		"additionalProperties": false,
		"properties": obj{
			"max_attempts":     obj{"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
			"backoff":          obj{"enum": []string{"exponential", "constant", "linear"}, "default": "exponential"},
			"initial_interval": obj{"$ref": "#/$defs/duration", "default": "1s"},
			"max_interval":     obj{"$ref": "#/$defs/duration", "default": "1m"},
		},
	}
	defs["step"] = obj{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"id", "action"},
		"properties": obj{
			"id":                obj{"type": "string", "pattern": `^[a-z][a-z0-9_]*$`, "description": "Unique in the recipe; later steps read steps.<id>.output"},
			"name":              obj{"type": "string", "description": "A display name"},
			"action":            obj{"enum": ids(actions), "description": "The action, <connector>.<operation>"},
			"connection":        obj{"type": "string", "description": "A connection name from the config file"},
			"if":                obj{"anyOf": []any{obj{"$ref": "#/$defs/expression"}, obj{"type": "boolean"}}, "description": "A boolean expression; false skips the step"},
			"with":              obj{"type": "object", "description": "Action inputs; strings may hold {{ }} templates"},
			"retry":             obj{"$ref": "#/$defs/retry"},
			"timeout":           obj{"$ref": "#/$defs/duration", "description": "How long one attempt may take (default 30s)"},
			"continue_on_error": obj{"type": "boolean", "default": false},
		},
		"allOf": dispatch("action", actions),
	}
	schema := obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  ID,
		"title":                "Sous recipe",
		"description":          "A Sous recipe: a trigger, an optional filter, vars and steps. Generated from the connector specs by `make generate`.",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"version", "name", "trigger", "steps"},
		"properties": obj{
			"version":     obj{"const": 1, "description": "The recipe format version"},
			"name":        obj{"type": "string", "pattern": `^[a-z0-9][a-z0-9_-]{0,62}$`, "description": "Unique in the set of recipes"},
			"description": obj{"type": "string"},
			"enabled":     obj{"type": "boolean", "default": true},
			"trigger":     obj{"$ref": "#/$defs/trigger"},
			"filter":      obj{"anyOf": []any{obj{"$ref": "#/$defs/expression"}, obj{"type": "boolean"}}, "description": "A boolean expression; false ends the run as filtered"},
			"vars": obj{"type": "object", "description": "Values computed once per run, in order; a var may use earlier vars",
				"propertyNames": obj{"pattern": `^[a-zA-Z_][a-zA-Z0-9_]*$`}},
			"steps":    obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/step"}},
			"on_error": obj{"type": "array", "items": obj{"$ref": "#/$defs/step"}, "description": "Steps run once when the run failed; `error` is in scope"},
		},
		"$defs": defs,
	}
	out, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func ids(specs []*connector.Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.ID
	}
	return out
}

// dispatch applies the `with` schema of the component named by key.
func dispatch(key string, specs []*connector.Spec) []any {
	out := make([]any, 0, len(specs))
	for _, s := range specs {
		then := obj{"properties": obj{"with": obj{"$ref": "#/$defs/with." + s.ID}}}
		for _, f := range s.Fields {
			if f.Required {
				then["required"] = []string{"with"}
				break
			}
		}
		out = append(out, obj{
			"if":   obj{"properties": obj{key: obj{"const": s.ID}}, "required": []string{key}},
			"then": then,
		})
	}
	return out
}

func withSchema(s *connector.Spec) obj { return fieldsSchema(s.Fields, s.Summary, FieldSchema) }

// fieldsSchema is the schema of an object holding fields, each described
// by field, and nothing else.
func fieldsSchema(fields []connector.Field, summary string, field func(connector.Field) obj) obj {
	props := obj{}
	var required []string
	for _, f := range fields {
		props[f.Name] = field(f)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	sort.Strings(required)
	out := obj{"type": "object", "additionalProperties": false, "properties": props, "description": summary}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// FieldSchema is the JSON Schema of one field. Every typed field also
// accepts a {{ }} template, which is checked when the recipe runs; secret
// fields accept only a template, so that secrets stay out of recipes.
func FieldSchema(f connector.Field) obj {
	base := typeSchema(f)
	var out obj
	switch {
	case f.Secret:
		out = obj{"$ref": "#/$defs/template"}
	case f.Type == connector.Any || f.Type == connector.Expression || f.Type == connector.String && len(f.Enum) == 0 && f.Pattern == "":
		out = base
	default:
		out = obj{"anyOf": []any{base, obj{"$ref": "#/$defs/template"}}}
	}
	return described(out, f, " (secret: write {{ secrets.NAME }})")
}

// typeSchema is the JSON Schema of a value of a field's type, as JSON
// gives it: the one mapping of connector types to JSON Schema, which
// recipe fields, connection fields and the runtime settings wrap (with
// templates, ${VAR} references and strings the config converts).
func typeSchema(f connector.Field) obj {
	switch f.Type {
	case connector.String:
		out := obj{"type": "string"}
		if len(f.Enum) > 0 {
			out = obj{"enum": f.Enum}
		}
		if f.Pattern != "" {
			out["pattern"] = f.Pattern
		}
		return out
	case connector.Int:
		return obj{"type": "integer"}
	case connector.Number:
		return obj{"type": "number"}
	case connector.Bool:
		return obj{"type": "boolean"}
	case connector.Duration:
		return obj{"$ref": "#/$defs/duration"}
	case connector.Object:
		return obj{"type": "object"}
	case connector.StringMap:
		return obj{"type": "object", "additionalProperties": obj{"type": []string{"string", "number", "boolean"}}}
	case connector.List:
		return obj{"type": "array"}
	case connector.Expression:
		return obj{"$ref": "#/$defs/expression"}
	}
	return obj{} // connector.Any
}

// described adds to a field's schema its description (with secretHint
// after it for a secret field), default and example.
func described(out obj, f connector.Field, secretHint string) obj {
	desc := f.Description
	if f.Secret {
		desc += secretHint
	}
	out["description"] = desc
	if f.Default != nil {
		out["default"] = jsonDefault(f.Default)
	}
	if f.Example != nil {
		out["examples"] = []any{f.Example}
	}
	return out
}

func jsonDefault(v any) any {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return v
}
