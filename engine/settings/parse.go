package settings

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// An Error is one bad value in the runtime sections of a config file, at
// its place: "sous.yaml:12:20: pipeline.gc_percent: 5 is not from 25 to
// 1000".
type Error struct {
	recipes.Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Parse reads the runtime sections of a loaded config. The error joins
// (errors.Join) an *Error for every problem found.
func Parse(cfg *recipes.Config) (Runtime, error) {
	r, errs := parse(cfg)
	if len(errs) == 0 {
		return r, nil
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return r, errors.Join(joined...)
}

// Check reports the problems of the runtime sections of a loaded config
// as diagnostics, for `sous validate`: what Parse would refuse, without
// opening anything.
func Check(cfg *recipes.Config) recipes.Diagnostics {
	_, errs := parse(cfg)
	var ds recipes.Diagnostics
	for _, e := range errs {
		ds = append(ds, recipes.Diagnostic{Pos: e.Pos, Severity: recipes.SevError, Message: e.Msg})
	}
	return ds
}

// parser collects the problems of the runtime sections, each at the YAML
// node it is about.
type parser struct {
	cfg  *recipes.Config
	errs []*Error
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	pos := recipes.Pos{File: p.cfg.File}
	if n != nil {
		pos.Line, pos.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// periodHelp says what a period without bounds must be.
const periodHelp = "a positive duration such as 12h or 7d"

func parse(cfg *recipes.Config) (Runtime, []*Error) {
	r := Default()
	if cfg == nil {
		return r, nil
	}
	p := &parser{cfg: cfg}
	nodes := map[string]*yaml.Node{}
	raw := map[string]string{}   // the text of each duration the file sets
	refused := map[string]bool{} // the settings whose value was refused
	for _, sec := range Sections {
		// where each key's value is decoded: the field itself for a
		// string, the text of a duration, a number or nil
		into := make(map[string]any, len(sec.Settings))
		for _, s := range sec.Settings {
			switch s.Type {
			case connector.String:
				v := field(&r, sec.Name, s.Key).String()
				into[s.Key] = &v
			case connector.Int:
				into[s.Key] = new(*int64)
			default:
				into[s.Key] = new(string)
			}
		}
		n := p.section(sec.Name, sec.Strict, into)
		nodes[sec.Name] = n
		for _, s := range sec.Settings {
			name := sec.Name + "." + s.Key
			f := field(&r, sec.Name, s.Key)
			at := value(n, s.Key)
			switch s.Type {
			case connector.String:
				v := *into[s.Key].(*string)
				f.SetString(v)
				switch {
				case len(s.Enum) > 0 && !slices.Contains(s.Enum, v):
					p.errorf(at, "%s %q is not one of %s", name, v, strings.Join(s.Enum, ", "))
				case s.RequiredIf != nil && v == "" && slices.Contains(s.RequiredIf.Values, field(&r, sec.Name, s.RequiredIf.Key).String()):
					p.errorf(n, "%s is required for %s", name, field(&r, sec.Name, s.RequiredIf.Key).String())
				}
			case connector.Int:
				v := *into[s.Key].(**int64)
				if v == nil {
					continue
				}
				if *v < s.Min || *v > s.Max {
					rng := s.Range
					if rng == "" {
						rng = fmt.Sprintf("from %d to %d", s.Min, s.Max)
					}
					p.errorf(at, "%s: %d is not %s", name, *v, rng)
					refused[name] = true
					continue
				}
				f.SetInt(*v)
			default:
				v := *into[s.Key].(*string)
				if v == "" {
					continue
				}
				raw[name] = v
				if d, ok := s.duration(v); ok {
					f.SetInt(int64(d))
					if s.Days && d < time.Duration(s.Min) {
						p.errorf(at, "%s: %s is less than %s", name, v, FormatDuration(time.Duration(s.Min), false))
					}
					continue
				}
				refused[name] = true
				p.errorf(at, "%s: %q is not %s", name, v, s.help())
			}
		}
	}
	// against a max_retry_after refused above, it would be checked
	// against the default, which the file did not say: one mistake, one
	// error
	if raw["broker.max_age"] != "" && !refused["broker.max_age"] && !refused["pipeline.max_retry_after"] &&
		r.Broker.MaxAge < r.Pipeline.MaxRetryAfter+RetryAgeMargin {
		p.errorf(value(nodes["broker"], "max_age"), "broker.max_age: %s is less than pipeline.max_retry_after (%s) and a day: a durable retry would come after the stream dropped its run",
			raw["broker.max_age"], FormatDuration(r.Pipeline.MaxRetryAfter, true))
	}
	// in the order of the file
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i].Pos, p.errs[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return r, p.errs
}

// duration reads the text of a Duration setting, and says whether it is
// in range (a period's Min is checked apart, with its own error).
func (s Spec) duration(v string) (time.Duration, bool) {
	if !s.Days {
		d, err := time.ParseDuration(v)
		return d, err == nil && d >= time.Duration(s.Min) && d <= time.Duration(s.Max)
	}
	d, err := recipes.ParsePeriod(v)
	return d, err == nil && d > 0 && (s.Max == 0 || d <= time.Duration(s.Max))
}

// help says what a Duration setting must be, after "is not".
func (s Spec) help() string {
	switch {
	case !s.Days:
		return fmt.Sprintf("a duration from %s to %s, such as %s",
			FormatDuration(time.Duration(s.Min), false), FormatDuration(time.Duration(s.Max), false), s.Example)
	case s.Max > 0:
		h := fmt.Sprintf("a positive duration up to %s, such as %s", FormatDuration(time.Duration(s.Max), true), s.Example)
		if s.Why != "" {
			h += " (" + s.Why + ")"
		}
		return h
	}
	return periodHelp
}

// section decodes a runtime section key by key: fields maps each key to
// where its value goes (a *string or **int64). Unknown keys are errors
// when strict, and ignored otherwise. It returns the section's node, nil
// when the config does not have it.
func (p *parser) section(key string, strict bool, fields map[string]any) *yaml.Node {
	n, ok := p.cfg.Extra[key]
	if !ok || n == nil {
		return nil
	}
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return n // `pipeline:` with nothing under it
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping, not %s", key, describe(n))
		return n
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be strings", key)
			continue
		}
		name := key + "." + k.Value
		if k.Value == "<<" && k.Tag == "!!merge" {
			p.errorf(k, "%s: merge keys (<<) are not supported; write the keys out", key)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.errorf(k, "%s: duplicate key (first at line %d)", name, prev.Line)
			continue
		}
		seen[k.Value] = k
		into, ok := fields[k.Value]
		if !ok {
			if strict {
				p.errorf(k, "%s: unknown field %q%s", key, k.Value, suggestOr(k.Value, known))
			}
			continue
		}
		p.decode(v, name, into)
	}
	return n
}

// decode decodes one value as YAML would (null leaves it as it is).
func (p *parser) decode(n *yaml.Node, name string, into any) {
	if _, str := into.(*string); !str {
		// YAML decodes 200.5 into a whole number as 200: a fraction is an
		// error here (a whole number written as 1e6 is fine)
		if d := deref(n); d != nil && d.Kind == yaml.ScalarNode && d.Tag == "!!float" {
			if f, err := strconv.ParseFloat(d.Value, 64); err == nil && f != math.Trunc(f) {
				p.errorf(d, "%s: %s is not a whole number", name, describe(d))
				return
			}
		}
	}
	if err := n.Decode(into); err == nil {
		return
	}
	n = deref(n)
	switch into.(type) {
	case *string:
		p.errorf(n, "%s: %s is not a string", name, describe(n))
	default:
		hint := ""
		if _, err := strconv.Atoi(n.Value); err == nil && n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			hint = " (it is a string: quoted, or read from the environment)"
		}
		p.errorf(n, "%s: %s is not a whole number%s", name, describe(n), hint)
	}
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

func suggestOr(got string, known []string) string {
	if s := recipes.Suggest(got, known); s != "" {
		return s
	}
	return "; known fields: " + strings.Join(known, ", ")
}

// value is the value node of key in a section's mapping, or the section
// itself when it has no such key (nil when there is no section).
func value(section *yaml.Node, key string) *yaml.Node {
	if section == nil || section.Kind != yaml.MappingNode {
		return section
	}
	var found *yaml.Node
	for i := 0; i+1 < len(section.Content); i += 2 {
		if k := deref(section.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key && found == nil {
			found = section.Content[i+1]
		}
	}
	if found == nil {
		return section
	}
	return deref(found)
}
