package recipes_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/recipes"
)

// The fuzz targets. Run one with
//
//	go test ./recipes -run '^$' -fuzz '^FuzzParseRecipe$' -fuzztime 30s
//
// Crashers are written to testdata/fuzz/<target>/ and replayed by go test.
// The loader recovers from panics and reports them as an "internal error"
// diagnostic, so the targets fail on that message: a recovered panic is
// still a bug.

// seedFiles lists every YAML file of the test corpus.
func seedFiles(tb testing.TB) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "fuzz" {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no seed files under testdata")
	}
	return files
}

func readSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, p := range seedFiles(tb) {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// yamlBreak is what ends a line for the YAML parser, whose line numbers
// the diagnostics carry.
var yamlBreak = regexp.MustCompile("\r\n|\r|\n|\u0085|\u2028|\u2029")

// checkDiags fails on a recovered panic and on diagnostics that point
// outside the file.
func checkDiags(t *testing.T, src []byte, diags recipes.Diagnostics) {
	t.Helper()
	lines := len(yamlBreak.FindAllIndex(src, -1)) + 1
	for _, d := range diags {
		if strings.Contains(d.Message, "internal error") {
			t.Fatalf("the loader panicked: %s\ninput:\n%q", d, src)
		}
		if d.Message == "" {
			t.Fatalf("a diagnostic without a message: %#v", d)
		}
		if d.Severity != recipes.SevError && d.Severity != recipes.SevWarning {
			t.Fatalf("bad severity: %s", d)
		}
		if d.Line < 0 || d.Col < 0 || d.Line > lines+1 {
			t.Fatalf("a diagnostic outside the file (%d lines): %s\ninput:\n%q", lines, d, src)
		}
	}
}

func FuzzParseRecipe(f *testing.F) {
	for _, s := range readSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(""))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("version: 1\nname: x\ntrigger: {type: webhook.received, with: {path: /x}}\nfilter: \"{{\"\nsteps: [{id: a, action: http.request, with: {url: \"{{ event.body[0] }}\"}}]\n"))
	// declared webhook bodies: a schema inline (with a reference, a
	// recursive one) and a sample inline, read by the expressions
	f.Add([]byte("version: 1\nname: x\ntrigger:\n  type: webhook.received\n  with:\n    path: /x\n    id: event.body.a.b\n    body_schema: {properties: {a: {$ref: \"#/$defs/t\"}}, $defs: {t: {properties: {b: {type: [string, \"null\"]}, c: {items: {$ref: \"#/$defs/t\"}}}}}}\nfilter: event.body.a.c[0].b == \"\"\nsteps: [{id: a, action: http.request, with: {url: \"{{ event.body.a.b }}\"}}]\n"))
	f.Add([]byte("version: 1\nname: x\ntrigger: {type: webhook.received, with: {path: /x, body_sample: [{n: 1}, {n: null, m: [true]}]}}\nfilter: event.body[0].m[0]\nsteps: [{id: a, action: http.request, with: {url: https://x.test/}}]\n"))
	f.Add([]byte("version: 1\nname: x\ntrigger: {type: webhook.received, with: {path: /x, body_schema: testdata/none.json}}\nsteps: [{id: a, action: http.request, with: {url: https://x.test/}}]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		r, diags := (&recipes.Loader{}).Parse("fuzz.yaml", src)
		checkDiags(t, src, diags)
		if (r == nil) != diags.HasErrors() {
			t.Fatalf("recipe %v with diagnostics:\n%s", r != nil, diags.Error())
		}
		if r != nil {
			if len(r.Steps) == 0 || r.Name == "" || r.Trigger.Spec == nil {
				t.Fatalf("an incomplete recipe loaded without an error: %+v", r)
			}
			// a loaded recipe renders its trigger options without a panic
			_, _ = r.Trigger.Options(map[string]string{"X": "y"})
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range readSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("connections:\n  api: {type: http, base_url: \"${HOST:-https://x.test}\", bearer_token: ${TOKEN}}\n"))
	f.Add([]byte("listen: $${X}\napi_keys: [\"${TOKEN}${TOKEN}\"]\nconnections:\n  a: {type: http, headers: {K: v}}\n"))
	f.Add([]byte("connections:\n  a: &x {type: http}\n  b: *x\n  c: {<<: *x}\n"))
	env := map[string]string{"TOKEN": "0123456789abcdef", "HOST": "https://h.test", "EMPTY": ""}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := recipes.ParseConfig("sous.yaml", src, envOf(env), nil)
		checkDiags(t, src, diags)
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("config %v with diagnostics:\n%s", cfg != nil, diags.Error())
		}
		if cfg != nil {
			for name, c := range cfg.Connections {
				if c.Spec == nil || c.Name != name {
					t.Fatalf("connection %s is incomplete: %+v", name, c)
				}
			}
			_ = cfg.SecretValues()
		}
		// the checker's partial config: the same problems, and what it
		// holds is whole
		pc, pdiags := recipes.ParseConfigPartial("sous.yaml", src, envOf(env), nil)
		if len(pdiags) != len(diags) {
			t.Fatalf("partial: %d problems, whole: %d", len(pdiags), len(diags))
		}
		if pc == nil && !diags.HasErrors() {
			t.Fatalf("no partial config for a good one")
		}
		if pc != nil {
			for name, c := range pc.Connections {
				if c.Spec == nil || c.Name != name {
					t.Fatalf("partial: connection %s is incomplete: %+v", name, c)
				}
			}
		}
	})
}

// templateSeeds are the strings holding {{ of the test corpus.
func templateSeeds(tb testing.TB) []string {
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "{{") {
			out = append(out, n.Value)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for _, src := range readSeeds(tb) {
		var doc yaml.Node
		if yaml.Unmarshal(src, &doc) == nil {
			walk(&doc)
		}
	}
	return out
}

// templateRecipe is a recipe whose var v is s, written so that the loader
// reads s back exactly.
func templateRecipe(tb testing.TB, s string) []byte {
	doc := map[string]any{
		"version": 1,
		"name":    "fuzz",
		"trigger": map[string]any{"type": "webhook.received", "with": map[string]any{"path": "/fuzz"}},
		"vars":    map[string]any{"v": s},
		"steps": []any{map[string]any{
			"id": "a", "action": "http.request",
			"with": map[string]any{"url": "https://x.test/", "body": s},
		}},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

var fuzzEnv = map[string]any{
	"event":   map[string]any{"body": map[string]any{"a": 1.5, "b": []any{"x", 2}}, "headers": map[string]string{"X": "y"}, "query": map[string]string{}, "method": "POST", "path": "/fuzz"},
	"trigger": map[string]any{"type": "webhook.received", "id": "1", "received_at": "2024-01-01T00:00:00Z"},
	"vars":    map[string]any{},
	"steps":   map[string]any{},
	"run":     map[string]any{"id": "r1", "recipe": "fuzz", "attempt": 1},
	"secrets": map[string]any{"K": "v"},
}

func FuzzTemplate(f *testing.F) {
	for _, s := range templateSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{"", "plain", "{{", "}}", "{{ }}", "{{ '}}' }}", "{{ {'a': {'b': 1}} }}", "a {{ event.body.a }} b {{ event.body.b }}",
		"{{ `x` }}", "{{ \"\\\"}}\" }}", "é{{ event.method }}✓", "{{ event.body.b[5] }}", "{{ 1/0 }}",
		// over budget (issue 19): each fails the render, quickly
		"{{ len(repeat(repeat('a', 999999), 999999)) }}", "{{ reduce(1..100000, #acc + 'xx', '') }}",
		"{{ map(1..100000, event.body.b) }}", "{{ count(1..1000, count(1..1000, true) > 0) }}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("YAML holds text only") // yaml.v3 writes it as !!binary
		}
		src := templateRecipe(t, s)
		var back struct{ Vars struct{ V *string } }
		if err := yaml.Unmarshal(src, &back); err != nil || back.Vars.V == nil || *back.Vars.V != s {
			t.Skip("yaml.v3 does not read its own output back") // not the loader's business
		}
		r, diags := (&recipes.Loader{}).Parse("fuzz.yaml", src)
		checkDiags(t, src, diags)
		if r == nil {
			if !diags.HasErrors() {
				t.Fatalf("no recipe and no error for %q", s)
			}
			return
		}
		if len(r.Vars) != 1 {
			t.Fatalf("vars: %+v", r.Vars)
		}
		got, err := r.Vars[0].Value.Render(fuzzEnv)
		if !strings.Contains(s, "{{") {
			// without a template, the value is the text as written
			if err != nil || got != s || !r.Vars[0].Value.Static() {
				t.Fatalf("%q rendered as %#v, %v", s, got, err)
			}
		}
		if err == nil {
			_ = recipes.Text(got)
		}
		env := map[string]any{}
		for k, v := range fuzzEnv {
			env[k] = v
		}
		env["vars"] = map[string]any{"v": got}
		_, _ = r.Steps[0].Render(env)
		_, _ = r.Steps[0].RenderRaw(env)
	})
}
