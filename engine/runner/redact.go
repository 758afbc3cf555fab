package runner

import (
	"sort"
	"strings"

	"github.com/sous-run/sous/engine/connector"
)

// redactor replaces secret values in everything the runner records.
type redactor struct {
	values []string // longest first, so that a secret containing another is replaced whole
	repl   *strings.Replacer
}

// minSecretLen keeps very short values (which would mangle ordinary text)
// from being treated as secrets.
const minSecretLen = 4

func newRedactor(secrets map[string]string, more []string) *redactor {
	var vals []string
	for _, v := range secrets {
		vals = append(vals, v)
	}
	vals = append(vals, more...)
	seen := map[string]bool{}
	var keep []string
	for _, v := range vals {
		if len(v) >= minSecretLen && !seen[v] {
			seen[v] = true
			keep = append(keep, v)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return len(keep[i]) > len(keep[j]) })
	r := &redactor{values: keep}
	if len(keep) > 0 {
		args := make([]string, 0, 2*len(keep))
		for _, v := range keep {
			args = append(args, v, Redacted)
		}
		r.repl = strings.NewReplacer(args...)
	}
	return r
}

func (r *redactor) str(s string) string {
	if r.repl == nil {
		return s
	}
	return r.repl.Replace(s)
}

// value returns a copy of v with every secret value replaced.
func (r *redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.str(x)
	case map[string]any:
		return r.map_(x)
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.str(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	default:
		return v
	}
}

func (r *redactor) map_(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = r.value(v)
	}
	return out
}

// input redacts a step's rendered input: the spec's secret fields whole,
// and secret values anywhere.
func (r *redactor) input(spec *connector.Spec, in map[string]any) map[string]any {
	out := r.map_(in)
	for _, name := range spec.SecretFields() {
		if _, ok := out[name]; ok {
			out[name] = Redacted
		}
	}
	return out
}
