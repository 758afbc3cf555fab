package schemas

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/settings"
	"github.com/sous-run/sous/recipes"
)

// Config is the committed JSON Schema of the config file, sous.yaml.
//
//go:embed config.schema.json
var Config []byte

// ConfigID is the config schema's $id.
const ConfigID = "https://sous.dev/schemas/config.schema.json"

// The rules of sous.yaml, as their owner (recipes) writes them; the
// runtime sections come from package settings.
const (
	connectionNameRE = recipes.IDPattern
	minAPIKey        = recipes.MinAPIKey
)

var logLevels = recipes.LogLevels

// envRE matches a ${VAR} or ${VAR:-default} reference anywhere in a string
// (recipes.envRE without its $$ escape).
const envRE = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// durationUnits are the units of time.ParseDuration, largest first.
var durationUnits = []struct {
	names []string
	size  time.Duration
}{
	{[]string{"h"}, time.Hour},
	{[]string{"m"}, time.Minute},
	{[]string{"s"}, time.Second},
	{[]string{"ms"}, time.Millisecond},
	{[]string{"us", "µs", "μs"}, time.Microsecond},
	{[]string{"ns"}, time.Nanosecond},
}

// unitRE matches the unit of a duration component.
func unitRE() string {
	var names []string
	for _, u := range durationUnits {
		names = append(names, u.names...)
	}
	return "(" + strings.Join(names, "|") + ")"
}

// goDurationRE matches what time.ParseDuration reads without a minus sign:
// "0", or components such as 1h, 1.5m, .5s. The value may be zero.
func goDurationRE() string {
	return `\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)` + unitRE() + `)+)`
}

// nonZeroRE holds on a duration without a minus sign that is not zero.
const nonZeroRE = `[1-9]`

// GenerateConfig builds the JSON Schema (draft 2020-12) of the config file,
// sous.yaml, from the connection types of a registry and the runtime's
// settings. The output is deterministic.
func GenerateConfig(reg *connector.Registry) ([]byte, error) {
	if reg == nil {
		return nil, errors.New("generate config schema: no registry")
	}
	// the defaults ParseConfig gives a config that sets nothing
	base, diags := recipes.ParseConfig("sous.yaml", []byte("{}\n"), func(string) (string, bool) { return "", false }, reg)
	if diags.HasErrors() {
		return nil, fmt.Errorf("generate config schema: parse an empty config: %w", diags.Err())
	}
	defs := obj{
		"env": obj{"type": "string", "pattern": envRE,
			"description": "A string holding ${VAR} or ${VAR:-default}, read from the environment when the config loads (the value is then a string)"},
		"scalar": obj{"type": []string{"string", "number", "boolean"},
			"description": "A value read as text (a number or boolean is taken as written)"},
		"duration": obj{"type": "string", "pattern": `^\s*` + goDurationRE() + `\s*$`,
			"description": "A duration such as 30s, 5m or 1h30m"},
		"period": obj{"type": "string", "allOf": []any{
			obj{"pattern": `^(` + goDurationRE() + `|[1-9][0-9]*d)$`},
			obj{"pattern": nonZeroRE},
		}, "description": "A positive duration such as 30s, 12h or 7d (whole days)"},
	}
	conns := reg.Connections()
	types := make([]string, len(conns))
	byType := make([]any, 0, len(conns))
	for i, c := range conns {
		types[i] = c.Type
		defs["connection."+c.Type] = connectionSchema(c)
		byType = append(byType, obj{
			"if":   obj{"properties": obj{"type": obj{"const": c.Type}}, "required": []string{"type"}},
			"then": obj{"$ref": "#/$defs/connection." + c.Type},
		})
	}
	defs["connection"] = obj{
		"type":        "object",
		"description": "A named connection: its type and that type's fields",
		"required":    []string{"type"},
		"properties": obj{
			"type": obj{"enum": types, "description": "The connection type"},
		},
		"allOf": byType,
	}
	props := obj{
		"listen": obj{"$ref": "#/$defs/scalar", "default": base.Listen,
			"description": "The address `sous serve` listens on, host:port (--listen wins)"},
		"data_dir": obj{"$ref": "#/$defs/scalar", "default": base.DataDir,
			"description": "The data folder of the embedded store (--data wins)"},
		"recipes": obj{"$ref": "#/$defs/scalar",
			"description": "The recipes folder (--recipes wins)"},
		"log_level": obj{"anyOf": []any{obj{"enum": logLevels}, obj{"$ref": "#/$defs/env"}}, "default": base.LogLevel,
			"description": "The log level"},
		"api_keys": obj{"type": []string{"array", "null"},
			"description": "Keys for the REST API (/api/v1); write ${VAR} to read one from the environment",
			"items": obj{"anyOf": []any{
				// not blank, no white space at an end (HTTP drops it from a header)
				obj{"type": "string", "minLength": recipes.MinSecretLen, "pattern": `^\S(.*\S)?$`},
				obj{"$ref": "#/$defs/env"},
			}, "description": fmt.Sprintf("An API key, not starting or ending with white space: at least %d characters (fewer is a warning, fewer than %d an error)", minAPIKey, recipes.MinSecretLen)}},
		"connections": obj{"type": []string{"object", "null"},
			"description":          "Named connections that recipe steps use: credentials and base settings of a service",
			"propertyNames":        obj{"pattern": connectionNameRE},
			"additionalProperties": obj{"$ref": "#/$defs/connection"}},
	}
	for _, sec := range settings.Sections {
		s, err := sectionSchema(sec)
		if err != nil {
			return nil, fmt.Errorf("generate config schema: %w", err)
		}
		defs[sec.Name] = s
		props[sec.Name] = obj{"$ref": "#/$defs/" + sec.Name}
	}

	schema := obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  ConfigID,
		"title":                "Sous config",
		"description":          "The Sous config file, sous.yaml: where to listen, the data and recipes folders, API keys, connections and the runtime settings. Any value may read the environment with ${VAR} or ${VAR:-default}. Generated from the connector specs by `make generate`.",
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
		"$defs":                defs,
	}
	out, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("generate config schema: %w", err)
	}
	return append(out, '\n'), nil
}

// connectionSchema is the schema of one type of connection: its type and
// its fields, nothing else.
func connectionSchema(c *connector.ConnectionSpec) obj {
	out := fieldsSchema(c.Fields, c.Summary, ConfigFieldSchema)
	out["properties"].(obj)["type"] = obj{"const": c.Type}
	// the fields checked together (connector.ConnectionSpec.Check)
	if len(c.OneOf) > 0 {
		alts := make([]any, len(c.OneOf))
		for i, set := range c.OneOf {
			alts[i] = obj{"required": set}
		}
		out["anyOf"] = alts
	}
	if len(c.Requires) > 0 {
		dep := obj{}
		for name, needs := range c.Requires {
			dep[name] = needs
		}
		out["dependentRequired"] = dep
	}
	return out
}

// ConfigFieldSchema is the JSON Schema of one field of a connection in the
// config file. It follows connector.Field.CheckValue: a string converts to
// a number, a boolean or a duration, and a scalar to a string. Typed fields
// also take a ${VAR} reference, as the environment gives a string. A
// secret is a plain value too (the parser only warns about a secret in
// plain text), and its description says to read it from the environment.
func ConfigFieldSchema(f connector.Field) obj {
	var out obj
	switch {
	case f.Type == connector.Object && len(f.Fields) > 0:
		out = fieldsSchema(f.Fields, f.Description, ConfigFieldSchema) // its keys, each a field
	case f.Type == connector.String && len(f.Enum) == 0 && f.Pattern == "":
		out = obj{"type": []string{"string", "number", "boolean"}} // a scalar, read as text
	case f.Type == connector.Expression:
		out = obj{"type": "string"} // the config evaluates nothing
	case f.Type == connector.String || f.Type == connector.Duration || textForms[f.Type] != nil:
		alts := []any{typeSchema(f)}
		if text, ok := textForms[f.Type]; ok {
			alts = append(alts, maps.Clone(text))
		}
		out = obj{"anyOf": append(alts, obj{"$ref": "#/$defs/env"})}
	default: // objects, lists and anything: as YAML gives them
		out = typeSchema(f)
	}
	return described(out, f, " (secret: write ${VAR} to read it from the environment)")
}

// textForms are the strings the config file converts to a value of a
// type (connector.Coerce), beside the type's own JSON values.
var textForms = map[connector.Type]obj{
	connector.Int: {"type": "string", "pattern": `^\s*[+-]?[0-9]+\s*$`},
	connector.Number: {"type": "string",
		"pattern": `^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$`},
	connector.Bool: {"enum": []string{"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}},
}

// section is the schema of a runtime section: a mapping, or nothing
// (`pipeline:` with every key commented out). Each of its fields also
// takes null (`gc_percent:` with no value), which the runtime reads as
// unset, as it does the section.
func section(desc string, strict bool, props obj) obj {
	for k, p := range props {
		props[k] = nullable(p.(obj))
	}
	out := obj{"type": []string{"object", "null"}, "description": desc, "properties": props}
	if strict {
		out["additionalProperties"] = false
	}
	return out
}

// null is the schema of an unset runtime field.
var null = obj{"type": "null"}

// unsetDuration is the schema of a duration field left empty: "" (often
// from ${VAR:-}) is unset, as null is, and the field takes its default.
var unsetDuration = obj{"const": ""}

// nullable adds null to the values a runtime field's schema takes, keeping
// its description and default where editors look for them, and its
// bounds beside its type (TestConfigBounds reads them there).
func nullable(s obj) obj {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []string{t, "null"}
		return s
	case []string:
		s["type"] = append(t, "null")
		return s
	}
	if alts, ok := s["anyOf"].([]any); ok {
		s["anyOf"] = append(alts, null)
		return s
	}
	inner := obj{}
	for k, v := range s {
		if k != "description" && k != "default" {
			inner[k] = v
			delete(s, k)
		}
	}
	s["anyOf"] = []any{inner, null}
	return s
}

// orEnv is a schema that also takes a ${VAR} reference.
func orEnv(s obj, desc string, def any) obj {
	out := obj{"anyOf": []any{s, obj{"$ref": "#/$defs/env"}}, "description": desc}
	if def != nil {
		out["default"] = def
	}
	return out
}

// sectionSchema is the schema of a runtime section, from its description.
func sectionSchema(sec settings.Section) (obj, error) {
	props := obj{}
	for _, st := range sec.Settings {
		p, err := settingSchema(st)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", sec.Name, st.Key, err)
		}
		props[st.Key] = p
	}
	out := section(sec.Description, sec.Strict, props)
	for _, st := range sec.Settings {
		if c := st.RequiredIf; c != nil {
			out["if"] = obj{"properties": obj{c.Key: obj{"enum": c.Values}}, "required": []string{c.Key}}
			out["then"] = obj{"required": []string{st.Key}, "properties": obj{st.Key: obj{"minLength": 1, "not": null}}}
		}
	}
	return out, nil
}

// settingSchema is the schema of one runtime setting. A number is a
// number (the parser does not read one from a string); a string and a
// duration also take a ${VAR} reference.
func settingSchema(st settings.Spec) (obj, error) {
	desc := st.SchemaDescription()
	switch {
	case st.Type == connector.String && len(st.Enum) > 0:
		return orEnv(typeSchema(connector.Field{Type: st.Type, Enum: st.Enum}), desc, st.Default), nil
	case st.Type == connector.String && st.Default == nil:
		return obj{"$ref": "#/$defs/scalar", "description": desc}, nil
	case st.Type == connector.Int:
		out := typeSchema(connector.Field{Type: st.Type})
		out["minimum"], out["maximum"], out["description"] = st.Min, st.Max, desc
		if st.Default != nil {
			out["default"] = st.Default
		}
		return out, nil
	}
	def, ok := st.Default.(time.Duration)
	switch {
	case st.Type != connector.Duration || !ok:
	case st.Days && st.Max == 0:
		return orEnv(obj{"anyOf": []any{obj{"$ref": "#/$defs/period"}, unsetDuration}}, desc, settings.FormatDuration(def, true)), nil
	case st.Days:
		limit := time.Duration(st.Max)
		return orEnv(obj{"anyOf": []any{
			obj{"type": "string", "pattern": `^` + daysUpToRE(limit) + `$`},
			obj{"type": "string", "allOf": []any{
				obj{"pattern": `^` + durationUpToRE(limit) + `$`},
				obj{"pattern": nonZeroRE},
			}},
			unsetDuration,
		}}, desc, settings.FormatDuration(def, true)), nil
	case st.Min == 0 && st.Max > 0:
		return orEnv(obj{"anyOf": []any{
			obj{"type": "string", "pattern": `^` + durationUpToRE(time.Duration(st.Max)) + `$`},
			obj{"const": 0},
			unsetDuration,
		}}, desc, settings.FormatDuration(def, false)), nil
	}
	return nil, fmt.Errorf("no schema for a setting of type %s (days %t, from %d to %d, default %v)", st.Type, st.Days, st.Min, st.Max, st.Default)
}

// daysUpToRE matches a whole number of days from 1 to limit, written as
// recipes.ParsePeriod reads it: no sign, no leading zero.
func daysUpToRE(limit time.Duration) string {
	return "(" + strings.Join(intAlts(uint64(limit / (24 * time.Hour)))[1:], "|") + ")d"
}

// durationUpToRE matches a duration time.ParseDuration reads, without a
// minus sign, each of whose components is at most limit: for 1s it takes
// 1000ms and 0m but not 2s, 1001ms or 1m. It does not add the components
// up (1s1ms passes), and a fraction of a unit that limit is not a whole
// number of (0.5m for 1s) is not checked.
func durationUpToRE(limit time.Duration) string {
	var comps []string
	for _, u := range durationUnits {
		n := uint64(limit / u.size)
		exact := limit%u.size == 0
		frac := `(\.[0-9]*)?`
		if exact {
			// limit itself, and a fraction that adds less than the 1ns
			// that ParseDuration truncates: its first k digits are 0,
			// where 10^k is at least the unit in ns
			k := 0
			for p := time.Duration(1); p < u.size; p *= 10 {
				k++
			}
			if k > 0 {
				frac = fmt.Sprintf(`(\.(0{%d}[0-9]*|0*))?`, k)
			}
		}
		var num string
		if n == 0 {
			zeros := `\.0+`
			if !exact {
				zeros = `\.[0-9]+`
			}
			num = `(0+` + frac + `|` + zeros + `)`
		} else {
			num = `(0*` + intUpToRE(n-1) + `(\.[0-9]*)?|\.[0-9]+|0*` + strconv.FormatUint(n, 10) + frac + `)`
		}
		comps = append(comps, num+`(`+strings.Join(u.names, "|")+`)`)
	}
	return `\+?(0|(` + strings.Join(comps, "|") + `)+)`
}

// intUpToRE matches the decimal integers from 0 to limit written without
// leading zeros.
func intUpToRE(limit uint64) string {
	return "(" + strings.Join(intAlts(limit), "|") + ")"
}

// intAlts are the alternatives of intUpToRE: "0" first, then the positive
// integers up to limit.
func intAlts(limit uint64) []string {
	s := strconv.FormatUint(limit, 10)
	k := len(s)
	alts := []string{"0"}
	switch {
	case k == 2:
		alts = append(alts, "[1-9]")
	case k > 2:
		alts = append(alts, fmt.Sprintf("[1-9][0-9]{0,%d}", k-2))
	}
	// numbers of k digits: the same first i digits as limit, a smaller digit
	// at i, then any digits
	for i := 0; i < k; i++ {
		lo := byte('0')
		if i == 0 {
			lo = '1'
		}
		if s[i] <= lo {
			continue
		}
		hi := s[i] - 1
		class := string(lo)
		if hi > lo {
			class = "[" + string(lo) + "-" + string(hi) + "]"
		}
		rest := ""
		switch r := k - i - 1; {
		case r == 1:
			rest = "[0-9]"
		case r > 1:
			rest = fmt.Sprintf("[0-9]{%d}", r)
		}
		alts = append(alts, s[:i]+class+rest)
	}
	if limit > 0 {
		alts = append(alts, s)
	}
	return alts
}
