package recipes

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestSplitTemplate(t *testing.T) {
	text := func(s string, off int) segment { return segment{text: s, off: off} }
	ex := func(s string, off int) segment { return segment{text: s, isExpr: true, off: off} }
	tests := []struct {
		in   string
		want []segment
		err  string // the error, with the rune offset it points at
	}{
		{in: "plain", want: []segment{text("plain", 0)}},
		{in: "", want: nil},
		{in: "{{ a }}", want: []segment{ex(" a ", 2)}},
		{in: "x {{ a }} y", want: []segment{text("x ", 0), ex(" a ", 4), text(" y", 9)}},
		{in: "{{a}}{{b}}", want: []segment{ex("a", 2), ex("b", 7)}},
		{in: "{{ '}}' }}", want: []segment{ex(" '}}' ", 2)}},
		{in: `{{ "a\"}}" }}`, want: []segment{ex(` "a\"}}" `, 2)}},
		{in: "{{ `}}` }}", want: []segment{ex(" `}}` ", 2)}},
		{in: "{{ `C:\\` }} x", want: []segment{ex(" `C:\\` ", 2), text(" x", 11)}},
		{in: "{{ {'a': {'b': 1}} }}", want: []segment{ex(" {'a': {'b': 1}} ", 2)}},
		{in: "{{ {'a': 1} }}!", want: []segment{ex(" {'a': 1} ", 2), text("!", 14)}},
		{in: "é ✓ {{ a }}", want: []segment{text("é ✓ ", 0), ex(" a ", 6)}},
		{in: "}} and { alone", want: []segment{text("}} and { alone", 0)}},
		{in: "{{}}", want: []segment{ex("", 2)}},
		{in: "{{ a", err: "0:unclosed {{"},
		{in: "x {{ a }} {{ b", err: "10:unclosed {{"},
		{in: "{{ '}} ", err: "0:unclosed {{"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := splitTemplate(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// compileString compiles s as the string value of a `vars` entry against a
// scope where vars n, f, s, m, l, html and t exist.
func compileString(t *testing.T, s string) (Value, Diagnostics) {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("v: "+yamlQuote(s)+"\n"), &doc))
	n := doc.Content[0].Content[1]
	require.Equal(t, s, n.Value)
	f := newFile("t.yaml", []byte("v: "+yamlQuote(s)+"\n"))
	v := f.compileValue(n, &scope{vars: []string{"n", "f", "s", "m", "l", "html", "t"}})
	return v, f.diags
}

func yamlQuote(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(out[:len(out)-1])
}

var templateEnv = map[string]any{"vars": map[string]any{
	"n":    5,
	"f":    2.5,
	"s":    "str",
	"m":    map[string]any{"b": "x", "a": 1},
	"l":    []any{1, "two"},
	"html": "<b>&</b>",
	"t":    time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
}}

func TestTemplateRender(t *testing.T) {
	tests := []struct {
		in     string
		want   any
		static bool
	}{
		// a string that is one template keeps the type of the value
		{in: "{{ vars.n }}", want: 5},
		{in: "{{ vars.n + 1 }}", want: 6},
		{in: "{{vars.f}}", want: 2.5},
		{in: "{{ 3.0 }}", want: 3.0},
		{in: "{{ vars.l }}", want: []any{1, "two"}},
		{in: "{{ vars.m }}", want: map[string]any{"b": "x", "a": 1}},
		{in: "{{ vars.n > 1 }}", want: true},
		{in: "{{ nil }}", want: nil},
		{in: "{{ '}}' }}", want: "}}"},
		{in: "{{ {'a': {'b': 1}} }}", want: map[string]any{"a": map[string]any{"b": 1}}},
		// anything else renders as text
		{in: "n={{ vars.n }}", want: "n=5"},
		{in: " {{ vars.n }}", want: " 5"},
		{in: "{{ vars.n }}{{ vars.n }}", want: "55"},
		{in: "{{ 3.0 }} apples", want: "3 apples"},
		{in: "{{ vars.n * 1.0 }}.", want: "5."},
		{in: "{{ 10 / 4 }}!", want: "2.5!"},
		{in: "{{ -2.0 }}!", want: "-2!"},
		{in: "{{ 1e20 }}!", want: "1e+20!"},
		{in: "{{ 0.1 }}!", want: "0.1!"},
		{in: "{{ vars.m }}!", want: `{"a":1,"b":"x"}!`},
		{in: "{{ vars.l }}!", want: `[1,"two"]!`},
		{in: "{{ split('a,b', ',') }}!", want: `["a","b"]!`},
		{in: "{{ {'h': vars.html} }}!", want: `{"h":"<b>&</b>"}!`},
		{in: "[{{ nil }}]", want: "[]"},
		{in: "{{ true }} and {{ vars.s }}", want: "true and str"},
		{in: "at {{ vars.t }}", want: "at 2024-05-06 07:08:09 +0000 UTC"},
		{in: "say {{ \"}}\" }}", want: "say }}"},
		{in: "line one\n{{ vars.s }}\n", want: "line one\nstr\n"},
		// no template: the value as written
		{in: "no template", want: "no template", static: true},
		{in: "a } and { b", want: "a } and { b", static: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, diags := compileString(t, tt.in)
			require.Empty(t, diags, diags.Error())
			require.NotNil(t, v)
			require.Equal(t, tt.static, v.Static())
			got, err := v.Render(templateEnv)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		in     string
		msg    string
		marker string // where the diagnostic points: the first occurrence in the source
	}{
		{"{{ nope }}", `expression: unknown name nope (did you mean "none"?)`, "nope"},
		{"ab {{ vars.s }} {{ vars.x }}", `expression: unknown field x in vars (did you mean "f"?)`, "x }}"},
		{"{{ }}", "empty expression", "}}"},
		{"ok {{ vars.s", "template: unclosed {{: add }} after the expression", "{{"},
		{"{{ vars.s ) }}", `expression: unexpected token Bracket(")")`, ")"},
		{"{{ error.message }}", "expression: error is only available in on_error steps", "error"},
		{"{{ vars.s }} {{ lenn(vars.s) }}", `expression: unknown name lenn (did you mean "len"?)`, "lenn"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, diags := compileString(t, tt.in)
			require.Nil(t, v)
			require.Len(t, diags, 1)
			require.Equal(t, tt.msg, diags[0].Message)
			line := "v: " + yamlQuote(tt.in)
			k := strings.Index(line, tt.marker)
			require.GreaterOrEqual(t, k, 0)
			require.Equal(t, Pos{File: "t.yaml", Line: 1, Col: utf8.RuneCountInString(line[:k]) + 1}, diags[0].Pos, "%s", diags[0])
		})
	}
}

func TestValueStatic(t *testing.T) {
	var doc yaml.Node
	src := "a: {x: 1, y: [1, two]}\nb: {x: 1, y: [1, \"{{ vars.s }}\"]}\n"
	require.NoError(t, yaml.Unmarshal([]byte(src), &doc))
	f := newFile("t.yaml", []byte(src))
	sc := &scope{vars: []string{"s"}}
	a := f.compileValue(doc.Content[0].Content[1], sc)
	b := f.compileValue(doc.Content[0].Content[3], sc)
	require.Empty(t, f.diags)
	require.True(t, a.Static())
	require.False(t, b.Static())
	require.Equal(t, map[string]any{"x": int64(1), "y": []any{int64(1), "two"}}, staticData(a))
	got, err := b.Render(map[string]any{"vars": map[string]any{"s": "ok"}})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"x": int64(1), "y": []any{int64(1), "ok"}}, got)
}

func TestText(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"s", "s"},
		{3.0, "3"},
		{math.Copysign(0, -1), "0"},
		{2.5, "2.5"},
		{float32(4), "4"},
		{1e15, "1e+15"},
		{math.Inf(1), "+Inf"},
		{7, "7"},
		{int64(-8), "-8"},
		{true, "true"},
		{[]byte("raw"), "raw"},
		{time.Second, "1s"},
		{map[string]any{"z": 1.0, "a": []any{"<"}}, `{"a":["<"],"z":1}`},
		{map[string]string{"k": "v"}, `{"k":"v"}`},
		{[]string{"a", "b"}, `["a","b"]`},
		{[]int{1, 2}, `[1,2]`},
		{[]any{}, `[]`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Text(tt.in), "%#v", tt.in)
	}
}

// suggest and levenshtein give the did-you-mean of every diagnostic.

func TestLevenshtein(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "", 1},
		{"", "abc", 3},
		{"abc", "abc", 0},
		{"kitten", "sitting", 3},
		{"lenn", "len", 1},
		{"ab", "ba", 1},                              // a swap of neighbours counts one
		{"recieved", "received", 1},                  // likewise
		{"ca", "abc", 3},                             // optimal string alignment, not full Damerau
		{"héllo", "hello", 1},                        // runes, not bytes
		{"✓✓", "✓", 1},                               // likewise
		{"steps.lokup", "steps.lookup", 1},           // insertion
		{"exponentail", "exponential", 1},            // swap
		{"webhook.received", "schedule.cron", 14},    // far apart
		{"http.reqest", "http.request", 1},           // deletion
		{"max_attempt", "max_attempts", 1},           // insertion at the end
		{"ABC", "abc", 3},                            // case counts here; suggest lowers both
		{"description", "descripton", 1},             // deletion inside
		{"abcdef", "badcfe", 3},                      // three swaps
		{"a", "b", 1},                                // substitution
		{"flaw", "lawn", 2},                          // delete and insert
		{"intention", "execution", 5},                // the textbook case
		{"connection", "conection", 1},               // a doubled letter
		{"on_error", "onerror", 1},                   // punctuation
		{"scheduled", "scheduled_at", 3},             // a suffix
		{"Europe/Pariss", "Europe/Paris", 1},         // time zones
		{"continue_on_eror", "continue_on_error", 1}, // likewise
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, levenshtein(tt.a, tt.b), "%q %q", tt.a, tt.b)
		require.Equal(t, tt.want, levenshtein(tt.b, tt.a), "symmetric: %q %q", tt.b, tt.a)
	}
}

func TestSuggest(t *testing.T) {
	ids := []string{"http.request", "schedule.cron", "webhook.received"}
	tests := []struct {
		name  string
		got   string
		cands []string
		want  string
	}{
		{"close", "lenn", []string{"upper", "len", "lower"}, "len"},
		{"closest wins", "stat", []string{"status", "start"}, "start"},
		{"first of equals", "ab", []string{"ac", "ad"}, "ac"},
		{"case insensitive", "Body", []string{"headers", "body"}, "body"},
		{"nothing close", "zzz", []string{"body", "headers"}, ""},
		{"no candidates", "x", nil, ""},
		{"exact match is not suggested", "body", []string{"body"}, ""},
		{"swap", "webhook.recieved", ids, "webhook.received"},
		{"dotted ids allow one more", "htp.reqest", ids, "http.request"},
		{"too far for a plain name", "reqest_x", []string{"request"}, ""},
		{"short names allow one", "id", []string{"if"}, "if"},
		{"suffix", "scheduled", []string{"scheduled_at", "fired_at"}, "scheduled_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := suggest(tt.got, tt.cands)
			if tt.want == "" {
				require.Empty(t, got)
				return
			}
			require.Equal(t, ` (did you mean "`+tt.want+`"?)`, got)
			require.Equal(t, got, Suggest(tt.got, tt.cands))
		})
	}
}
