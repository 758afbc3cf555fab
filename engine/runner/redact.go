package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// redactor replaces secret values, in every form a record may hold them
// in (see encodings), in everything the runner records.
type redactor struct {
	values []string // every form of every value, longest first, so that a secret containing another is replaced whole
	repl   *strings.Replacer
	// heads looks for all the forms in one pass (nil: there are none)
	heads *headSet
}

// minSecretLen is the length under which a value is not treated as a
// secret: so short a value would mangle ordinary text. Secrets this short
// are refused where they are loaded (recipes.CheckSecrets).
const minSecretLen = recipes.MinSecretLen

// redactors caches redactors by their secret values: the runner makes
// one per run, and a replacer is costly to build.
var redactors struct {
	sync.Mutex
	m map[string]*redactor
}

// maxCachedRedactors bounds the cache (secrets change only with the
// configuration, so a few entries are the norm).
const maxCachedRedactors = 64

// lastRedactor is the redactor made last, with the very map and list it
// was made from: a runner passes the same ones to every run, and sorting
// and joining the values again for each run cost about 2 % of the CPU of
// a run. It holds them, so that their memory cannot be reused by another
// map or list while it does; a map changed in place after a run started
// would already be a data race with the runs reading it.
var lastRedactor struct {
	sync.Mutex
	secrets map[string]string
	more    []string
	red     *redactor
}

func newRedactor(secrets map[string]string, more []string) *redactor {
	lastRedactor.Lock()
	defer lastRedactor.Unlock()
	if r := lastRedactor.red; r != nil && sameStrings(lastRedactor.secrets, secrets) && sameSlice(lastRedactor.more, more) {
		return r
	}
	r := cachedRedactor(secrets, more)
	lastRedactor.secrets, lastRedactor.more, lastRedactor.red = secrets, more, r
	return r
}

// sameStrings reports whether a and b are the same map (nil ones
// included), not equal ones.
func sameStrings(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// sameSlice reports whether a and b are the same list: same backing array
// and length.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// cachedRedactor returns the redactor of a set of values, made once.
func cachedRedactor(secrets map[string]string, more []string) *redactor {
	keep := secretValues(secrets, more)
	// each value with its length before it: joined with a separator, a
	// value holding the separator would make the key of another set
	var kb strings.Builder
	for _, v := range keep {
		kb.WriteString(strconv.Itoa(len(v)))
		kb.WriteByte(':')
		kb.WriteString(v)
	}
	key := kb.String()
	redactors.Lock()
	defer redactors.Unlock()
	if r, ok := redactors.m[key]; ok {
		return r
	}
	r := &redactor{values: allForms(keep)}
	if len(r.values) > 0 {
		args := make([]string, 0, 2*len(r.values))
		for _, v := range r.values {
			args = append(args, v, Redacted)
		}
		r.repl = strings.NewReplacer(args...)
		r.heads = newHeadSet(r.values)
	}
	if redactors.m == nil || len(redactors.m) >= maxCachedRedactors {
		redactors.m = map[string]*redactor{}
	}
	redactors.m[key] = r
	return r
}

// secretValues lists the distinct values to redact, longest first (then
// in order, so that equal sets give equal lists).
func secretValues(secrets map[string]string, more []string) []string {
	vals := make([]string, 0, len(secrets)+len(more))
	for _, v := range secrets {
		vals = append(vals, v)
	}
	return longestFirst(append(vals, more...))
}

// longestFirst lists the distinct values at least minSecretLen long,
// longest first (then in order, so that equal sets give equal lists).
func longestFirst(vals []string) []string {
	seen := map[string]bool{}
	var keep []string
	for _, v := range vals {
		if len(v) >= minSecretLen && !seen[v] {
			seen[v] = true
			keep = append(keep, v)
		}
	}
	sort.Slice(keep, func(i, j int) bool {
		if len(keep[i]) != len(keep[j]) {
			return len(keep[i]) > len(keep[j])
		}
		return keep[i] < keep[j]
	})
	return keep
}

func (r *redactor) str(s string) string {
	if r.repl == nil || !r.has(s) {
		return s // the replacer would copy it
	}
	return r.repl.Replace(s)
}

// has reports whether s holds a secret value in one of its forms.
func (r *redactor) has(s string) bool {
	return r.heads != nil && r.heads.has(s, r.values)
}

// touches reports whether redacting the plain value v could change it: a
// string or a key in it may hold a secret value.
func (r *redactor) touches(v any) bool {
	switch x := v.(type) {
	case string:
		return r.has(x)
	case json.Number:
		return r.has(string(x))
	case int, int64, float64:
		return r.number(x)
	case map[string]any:
		for k, e := range x {
			if r.has(k) || r.touches(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if r.touches(e) {
				return true
			}
		}
	}
	return false
}

// number reports whether the decimal digits of a number, as JSON writes
// it, hold a secret value (one of digits: a remote may echo it as a
// number). A number of fewer digits than the shortest value cannot.
func (r *redactor) number(v any) bool {
	if r.heads == nil {
		return false
	}
	var buf [32]byte
	var b []byte
	switch x := v.(type) {
	case int:
		b = strconv.AppendInt(buf[:0], int64(x), 10)
	case int64:
		b = strconv.AppendInt(buf[:0], x, 10)
	case uint64:
		b = strconv.AppendUint(buf[:0], x, 10)
	case float64:
		b = strconv.AppendFloat(buf[:0], x, 'f', -1, 64)
	}
	return len(b) >= r.heads.min && r.has(string(b))
}

// value returns a copy of v with every secret value replaced, in strings,
// map keys and values, lists, and (through their JSON form) structs: an
// action may echo a secret in an output of any type.
func (r *redactor) value(v any) any {
	switch x := v.(type) {
	case nil, bool:
		return v
	case int, int64, float64:
		if r.number(x) {
			return Redacted // a secret of digits, echoed as a number
		}
		return v
	case string:
		return r.str(x)
	case map[string]any:
		return r.map_(x)
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.str(k)] = r.str(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	case []byte:
		if s := string(x); r.str(s) != s {
			return r.str(s)
		}
		return v
	case error:
		return r.str(x.Error())
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		if s := rv.String(); r.str(s) != s {
			return r.str(s)
		}
		return v
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return r.viaJSON(v)
		}
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[r.str(it.Key().String())] = r.value(it.Value().Interface())
		}
		return out
	case reflect.Slice, reflect.Array:
		if _, ok := v.(json.Marshaler); ok {
			return r.viaJSON(v) // json.RawMessage: its JSON, not its bytes
		}
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			return r.value(rv.Bytes()) // a named []byte: as []byte is
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = r.value(rv.Index(i).Interface())
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return v
		}
		if _, ok := v.(fmt.Stringer); ok {
			return r.viaJSON(v)
		}
		return r.value(rv.Elem().Interface())
	case reflect.Struct:
		return r.viaJSON(v)
	}
	return v
}

// viaJSON redacts a value through its JSON form; one that has none is
// recorded as text.
func (r *redactor) viaJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return r.str(fmt.Sprint(v))
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return r.str(string(b))
	}
	return r.value(out)
}

func (r *redactor) map_(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	if plain(m) && (r.repl == nil || !r.touches(m)) {
		// nothing to redact and nothing to convert: the copy would be
		// equal (outputs and vars are not changed once made)
		return m
	}
	return r.copyMap(m)
}

// plain reports whether v holds only the types that value returns as they
// are when there is nothing to redact (maps and lists of them included).
func plain(v any) bool {
	switch x := v.(type) {
	case nil, bool, int, int64, float64, string, json.Number:
		return true
	case map[string]any:
		for _, e := range x {
			if !plain(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !plain(e) {
				return false
			}
		}
		return true
	}
	return false
}

// copyMap is a redacted copy of m.
func (r *redactor) copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[r.str(k)] = r.value(v)
	}
	return out
}

// input redacts a step's rendered input: the spec's secret fields whole,
// and secret values anywhere.
func (r *redactor) input(spec *connector.Spec, in map[string]any) map[string]any {
	if in == nil {
		return nil
	}
	out := r.map_(in)
	for _, name := range spec.SecretFields() {
		if _, ok := out[name]; ok && sameMap(out, in) {
			out = r.copyMap(in) // in is not for changing
		}
		if _, ok := out[name]; ok {
			out[name] = Redacted
		}
	}
	return out
}

// sameMap reports whether a and b are the same map (not equal ones).
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// handler wraps h so that no secret reaches a log line: the message and
// every attribute (groups, errors and values of any type included) are
// redacted. The runner logs through it and hands it to actions.
// handler wraps h so that every record is redacted. Attributes added with
// WithAttrs are kept aside and redacted and added when a record is
// handled, not when they are added: a run adds its attributes to a logger
// whether or not it logs anything, and most runs log nothing.
func (r *redactor) handler(h slog.Handler) slog.Handler {
	return &redactHandler{h: h, red: r}
}

type redactHandler struct {
	h     slog.Handler
	red   *redactor
	attrs []slog.Attr // added by WithAttrs, not yet redacted
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.red.str(rec.Message), rec.PC)
	for _, a := range h.attrs {
		out.AddAttrs(h.red.attr(a))
	}
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.red.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	all := make([]slog.Attr, 0, len(h.attrs)+len(attrs))
	all = append(append(all, h.attrs...), attrs...)
	return &redactHandler{h: h.h, red: h.red, attrs: all}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	inner := h.h
	if len(h.attrs) > 0 {
		// attributes added before the group stay outside it
		out := make([]slog.Attr, len(h.attrs))
		for i, a := range h.attrs {
			out[i] = h.red.attr(a)
		}
		inner = inner.WithAttrs(out)
	}
	return &redactHandler{h: inner.WithGroup(h.red.str(name)), red: h.red}
}

func (r *redactor) attr(a slog.Attr) slog.Attr {
	key := r.str(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(key, r.str(v.String()))
	case slog.KindGroup:
		group := v.Group()
		out := make([]slog.Attr, len(group))
		for i, g := range group {
			out[i] = r.attr(g)
		}
		return slog.Attr{Key: key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		return slog.Any(key, r.value(v.Any()))
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64:
		if r.number(v.Any()) {
			return slog.String(key, Redacted)
		}
	}
	return slog.Attr{Key: key, Value: v}
}
