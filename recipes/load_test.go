package recipes_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/recipes"
)

const webhookHead = `version: 1
name: positions
trigger:
  type: webhook.received
  with:
    path: /positions
`

// markerPos is where marker is written in src: the line holding it and the
// column of its first rune, counted in runes as the loader does.
func markerPos(t *testing.T, src, marker string) (int, int) {
	t.Helper()
	require.Equal(t, 1, strings.Count(src, marker), "the marker %q must occur once", marker)
	for i, line := range yamlBreak.Split(src, -1) {
		if k := strings.Index(line, marker); k >= 0 {
			return i + 1, utf8.RuneCountInString(line[:k]) + 1
		}
	}
	t.Fatal("unreachable")
	return 0, 0
}

// TestPositions checks that an error inside an expression or a template
// points at the culprit whatever the YAML style of the scalar holding it.
func TestPositions(t *testing.T) {
	step := "steps:\n  - id: notify\n    action: http.request\n    with:\n      url: https://example.test/\n"
	tests := []struct {
		name   string
		src    string
		marker string // the culprit, written once in src
		msg    string
	}{
		{"plain filter", webhookHead + "filter: event.method == \"POST\" && event.bdy.x == 1\n" + step,
			"bdy", `unknown field bdy in event (did you mean "body"?)`},
		{"double quoted with escapes", webhookHead + `filter: "event.method == \"PO\tST\" && event.bdy.x == 1"` + "\n" + step,
			"bdy", "unknown field bdy"},
		{"double quoted with unicode escape", webhookHead + `filter: "event.method == \"\u00e9\" && event.bdy.x == 1"` + "\n" + step,
			"bdy", "unknown field bdy"},
		{"single quoted with doubled quotes", webhookHead + "filter: 'event.method == ''POST'' && event.bdy.x == 1'\n" + step,
			"bdy", "unknown field bdy"},
		{"folded filter", webhookHead + "filter: >-\n  event.method == \"POST\" &&\n  event.bdy.x == 1\n" + step,
			"bdy", "unknown field bdy"},
		{"plain filter on two lines", webhookHead + "filter: event.method == \"POST\"\n  && event.bdy.x == 1\n" + step,
			"bdy", "unknown field bdy"},
		{"double quoted filter on two lines", webhookHead + "filter: \"event.method == 'POST'\n  && event.bdy.x == 1\"\n" + step,
			"bdy", "unknown field bdy"},
		{"literal template, more indented line", webhookHead + step + "      body: |\n        first\n            second {{ event.bdy }}\n        third\n",
			"bdy", "unknown field bdy"},
		{"literal template with a comment on the header", webhookHead + step + "      body: | # the message\n        Hi {{ event.bdy }}\n",
			"bdy", "unknown field bdy"},
		{"folded template", webhookHead + step + "      body: >\n        a long line\n        and {{ event.bdy }} here\n",
			"bdy", "unknown field bdy"},
		{"unicode before the template", webhookHead + step + "      body: \"héllo ✓ {{ event.bdy }}\"\n",
			"bdy", "unknown field bdy"},
		{"template in a flow mapping", webhookHead + step + "      json: {text: \"{{ event.bdy }}\", n: 1}\n",
			"bdy", "unknown field bdy"},
		{"second template of a string", webhookHead + step + "      body: \"{{ event.method }} and {{ event.bdy }}\"\n",
			"bdy", "unknown field bdy"},
		{"unclosed template", webhookHead + step + "      body: \"ok {{ event.method\"\n",
			"{{ event.method", "unclosed {{"},
		{"syntax error in a template", webhookHead + step + "      body: \"{{ event.method ) }}\"\n",
			") }}", "unexpected token"},
		{"CRLF line ends", strings.ReplaceAll(webhookHead+"filter: event.method == \"POST\" && event.bdy.x == 1\n"+step, "\n", "\r\n"),
			"bdy", "unknown field bdy"},
		{"CR line ends", strings.ReplaceAll(webhookHead+step+"      body: |\n        a\n        b {{ event.bdy }}\n", "\n", "\r"),
			"bdy", "unknown field bdy"},
		{"step if", webhookHead + step + "    if: event.method == 'x' && evnt.body != nil\n",
			"evnt", `unknown name evnt (did you mean "event"?)`},
		{"webhook id expression", strings.Replace(webhookHead, "    path: /positions\n", "    path: /positions\n    id: event.hedaers.id\n", 1) + step,
			"hedaers", `unknown field hedaers in event (did you mean "headers"?)`},
		{"var used before it is defined", webhookHead + "vars:\n  a: \"{{ vars.b }}\"\n  b: 1\n" + step,
			"b }}", "var b is defined later"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, diags := (&recipes.Loader{}).Parse("p.yaml", []byte(tt.src))
			require.Nil(t, r)
			require.Len(t, diags, 1, "diagnostics:\n%s", diags.Error())
			line, col := markerPos(t, tt.src, tt.marker)
			d := diags[0]
			require.Equal(t, recipes.SevError, d.Severity)
			require.Contains(t, d.Message, tt.msg)
			require.Equal(t, [2]int{line, col}, [2]int{d.Line, d.Col}, "%s", d)
		})
	}
}

// TestExprPos checks the position recorded on compiled expressions, which
// runtime errors quote.
func TestExprPos(t *testing.T) {
	src := webhookHead + "filter: >\n  event.method == \"POST\"\nsteps:\n  - id: a\n    action: http.request\n    if: \"true\"\n    with:\n      url: https://x.test\n      body: |\n        x\n          {{ event.path }}\n"
	r, diags := (&recipes.Loader{}).Parse("p.yaml", []byte(src))
	require.Empty(t, diags, diags.Error())
	require.NotNil(t, r.Filter)
	line, col := markerPos(t, src, "event.method")
	require.Equal(t, recipes.Pos{File: "p.yaml", Line: line, Col: col}, r.Filter.Pos)
	line, col = markerPos(t, src, "true")
	require.Equal(t, recipes.Pos{File: "p.yaml", Line: line, Col: col}, r.Steps[0].If.Pos)
}

func TestParseRecipe(t *testing.T) {
	src := `version: 1
name: shape
description: every field
enabled: false
trigger:
  type: schedule.cron
  with: {cron: "@hourly", timezone: Europe/Paris}
filter: event.fired_at != ""
vars:
  first: 1
  second: "{{ vars.first + 1 }}"
steps:
  - id: one
    name: The first
    action: http.request
    with: {url: "https://x.test/{{ vars.second }}", method: GET}
    retry: {max_attempts: 7, backoff: linear, initial_interval: 2s, max_interval: 9s}
    timeout: 45s
    continue_on_error: true
  - id: two
    action: http.request
    with: {url: https://x.test/2}
on_error:
  - id: alert
    action: http.request
    with: {url: "https://x.test/{{ error.step }}"}
`
	r, diags := (&recipes.Loader{}).Parse("shape.yaml", []byte(src))
	require.Empty(t, diags, diags.Error())
	require.Equal(t, "shape", r.Name)
	require.Equal(t, recipes.Pos{File: "shape.yaml", Line: 2, Col: 7}, r.Pos)
	require.Equal(t, "every field", r.Description)
	require.False(t, r.Enabled)
	require.Equal(t, "schedule.cron", r.Trigger.Type)
	opts, err := r.Trigger.Options(nil)
	require.NoError(t, err)
	require.Equal(t, "Europe/Paris", opts.String("timezone"))
	require.Equal(t, "@hourly", opts.String("cron"))
	require.NotNil(t, r.Filter)
	require.Len(t, r.Vars, 2)
	require.Equal(t, "first", r.Vars[0].Name)
	require.Equal(t, "second", r.Vars[1].Name)
	require.Len(t, r.Steps, 2)
	one := r.Steps[0]
	require.Equal(t, "one", one.ID)
	require.Equal(t, "The first", one.Name)
	require.Equal(t, recipes.Retry{MaxAttempts: 7, Backoff: recipes.BackoffLinear, InitialInterval: 2 * time.Second, MaxInterval: 9 * time.Second}, one.Retry)
	require.Equal(t, 45*time.Second, one.Timeout)
	require.True(t, one.ContinueOnError)
	two := r.Steps[1]
	require.Equal(t, recipes.DefaultRetry, two.Retry)
	require.Equal(t, recipes.DefaultTimeout, two.Timeout)
	require.False(t, two.ContinueOnError)
	require.Len(t, r.OnError, 1)
	require.Same(t, r.OnError[0], r.Step("alert"))
	require.Same(t, one, r.Step("one"))
	require.Nil(t, r.Step("nope"))

	with, err := one.Render(map[string]any{"vars": map[string]any{"first": 1, "second": 2}})
	require.NoError(t, err)
	require.Equal(t, "https://x.test/2", with.String("url"))
	require.Equal(t, "GET", with.String("method"))
	require.Equal(t, 30*time.Second, with.Duration("timeout"), "the default of the field applies")
}

// TestDuplicateRecipeName checks that the second recipe of a name is
// reported at its own name, quoting the position of the first, and that
// the set keeps the first.
func TestDuplicateRecipeName(t *testing.T) {
	dir := t.TempDir()
	recipe := func(path string) string {
		return "version: 1\n\nname: same\ntrigger:\n  type: webhook.received\n  with: {path: " + path + "}\nsteps:\n  - id: a\n    action: http.request\n    with: {url: https://x.test}\n"
	}
	first := filepath.Join(dir, "a.yaml")
	second := filepath.Join(dir, "b", "c.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(second), 0o755))
	require.NoError(t, os.WriteFile(first, []byte(recipe("/one")), 0o644))
	require.NoError(t, os.WriteFile(second, []byte("# the same name again\n"+recipe("/two")), 0o644))

	set, diags := (&recipes.Loader{}).LoadPaths([]string{dir})
	require.Len(t, diags, 1, diags.Error())
	d := diags[0]
	require.Equal(t, recipes.Pos{File: second, Line: 4, Col: 7}, d.Pos)
	require.Equal(t, recipes.SevError, d.Severity)
	require.Equal(t, `recipe name "same" is already used by `+first+":3:7", d.Message)
	require.Len(t, set.Recipes, 1)
	require.Equal(t, first, set.Recipes[0].File)
	require.Equal(t, 2, set.Files)
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{
		"a.yaml", "b.yml", "c.test.yaml", "notes.txt", "sous.yaml", "sous.yml",
		"sub/d.yaml", ".hidden/e.yaml", "fixtures/f.yaml", "testdata/g.yaml", "node_modules/h.yaml", "sub/fixtures/i.yaml",
	} {
		full := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte("x: 1\n"), 0o644))
	}
	files, err := recipes.Files([]string{dir})
	require.NoError(t, err)
	var rel []string
	for _, f := range files {
		r, err := filepath.Rel(dir, f)
		require.NoError(t, err)
		rel = append(rel, filepath.ToSlash(r))
	}
	require.ElementsMatch(t, []string{"a.yaml", "b.yml", "c.test.yaml", "sub/d.yaml"}, rel)

	// a file named on the command line is read whatever its name
	files, err = recipes.Files([]string{filepath.Join(dir, "notes.txt")})
	require.NoError(t, err)
	require.Len(t, files, 1)

	// a directory given explicitly is walked even when named testdata
	files, err = recipes.Files([]string{filepath.Join(dir, "testdata")})
	require.NoError(t, err)
	require.Len(t, files, 1)

	_, err = recipes.Files([]string{filepath.Join(dir, "missing")})
	require.ErrorContains(t, err, "missing")

	require.True(t, recipes.IsTestFile("x/a.test.yaml"))
	require.True(t, recipes.IsTestFile("a.test.yml"))
	require.False(t, recipes.IsTestFile("a.yaml"))
}

func TestLoadPathsErrors(t *testing.T) {
	dir := t.TempDir()
	_, diags := (&recipes.Loader{}).LoadPaths([]string{filepath.Join(dir, "nope")})
	require.Len(t, diags, 1)
	require.Contains(t, diags[0].Message, "nope")

	big := filepath.Join(dir, "big.yaml")
	require.NoError(t, os.WriteFile(big, make([]byte, recipes.MaxFileSize+1), 0o644))
	_, diags = (&recipes.Loader{}).LoadPaths([]string{big})
	require.Len(t, diags, 1)
	require.Equal(t, big, diags[0].File)
	require.Contains(t, diags[0].Message, "more than the limit")
}

// TestLoaderConfig checks connection names and types against a config.
func TestLoaderConfig(t *testing.T) {
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte("connections:\n  api: {type: http, base_url: https://api.test/}\n"), noEnv, nil)
	require.Empty(t, diags, diags.Error())
	recipe := func(conn string) []byte {
		return []byte(webhookHead + "steps:\n  - id: a\n    action: http.request\n    connection: " + conn + "\n    with: {url: /x}\n")
	}
	r, diags := (&recipes.Loader{Config: cfg}).Parse("r.yaml", recipe("api"))
	require.Empty(t, diags, diags.Error())
	require.Equal(t, "api", r.Steps[0].Connection)

	_, diags = (&recipes.Loader{Config: cfg}).Parse("r.yaml", recipe("apii"))
	require.Len(t, diags, 1)
	require.Equal(t, `step a.connection: no connection "apii" in sous.yaml (did you mean "api"?)`, diags[0].Message)
	require.Equal(t, [2]int{10, 17}, [2]int{diags[0].Line, diags[0].Col})

	// without a config, names are not checked
	_, diags = (&recipes.Loader{}).Parse("r.yaml", recipe("apii"))
	require.Empty(t, diags)
}

// TestAliasBomb checks that a file of nested aliases is refused quickly
// rather than expanded.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(webhookHead + "vars:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("  a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("steps:\n  - id: a\n    action: http.request\n    with: {url: https://x.test}\n")
	start := time.Now()
	_, diags := (&recipes.Loader{}).Parse("bomb.yaml", []byte(b.String()))
	require.Less(t, time.Since(start), 5*time.Second)
	require.True(t, diags.HasErrors())
	for _, d := range diags {
		require.NotContains(t, d.Message, "internal error")
	}
}

func noEnv(string) (string, bool) { return "", false }

// TestScopeGrowth checks what each place of a recipe sees as the recipe
// goes on: the same expression is an error before the step it names and
// fine after it, and on_error sees every step and the error.
func TestScopeGrowth(t *testing.T) {
	src := webhookHead + `filter: event.method == "POST"
vars:
  a: 1
  b: "{{ vars.a + 1 }}"
steps:
  - id: first
    action: http.request
    if: vars.b > 1
    with:
      url: "https://x.test/{{ run.id }}"
      body: "{{ steps.second.output.body }}"
  - id: second
    action: http.request
    with:
      url: "https://x.test/{{ run.id }}/{{ steps.first.output.status }}"
  - id: third
    action: http.request
    if: steps.first.output.status == 200
    with:
      url: "https://x.test/{{ run.id }}"
      body: "{{ steps.second.output.body }}"
      json: "{{ steps.third.output.json }}"
on_error:
  - id: alert
    action: http.request
    with:
      url: "https://x.test/{{ error.step }}/{{ steps.third.output.status }}"
      body: "{{ vars.b }} {{ steps.second.output.body }} {{ steps.alert2.output.body }}"
  - id: alert2
    action: http.request
    with:
      url: "https://x.test/{{ steps.alert.output.status }}"
      body: "{{ steps.second.output.bdy }}"
`
	_, diags := (&recipes.Loader{}).Parse("grow.yaml", []byte(src))
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%d: %s", d.Line, d.Message))
	}
	require.Equal(t, []string{
		"17: expression: step second is defined later; only earlier steps can be used here",
		"28: expression: step third is defined later; only earlier steps can be used here",
		"34: expression: step alert2 is defined later; only earlier steps can be used here",
		`39: expression: unknown field bdy in steps.second.output (did you mean "body"?)`,
	}, got)
}

// TestParseConcurrent parses with one Loader from several goroutines: the
// loader shares its expression configuration tables between parses (run
// with -race).
func TestParseConcurrent(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.y*ml")
	require.NoError(t, err)
	var srcs [][]byte
	for _, f := range files {
		if recipes.IsTestFile(f) || filepath.Base(f) == "sous.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		srcs = append(srcs, b)
	}
	require.NotEmpty(t, srcs)
	l := &recipes.Loader{}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 10; i++ {
				for _, src := range srcs {
					if r, diags := l.Parse("c.yaml", src); r == nil || len(diags) > 0 {
						errs <- fmt.Errorf("%s", diags.Error())
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		require.NoError(t, <-errs)
	}
}

// TestRetryIntervals: max_interval defaults to 1m, or to initial_interval
// when that is longer (`initial_interval: 5m` alone waits 5m, not 1m).
func TestRetryIntervals(t *testing.T) {
	tests := []struct {
		name  string
		retry string
		want  recipes.Retry
	}{
		{"defaults", "{max_attempts: 2}",
			recipes.Retry{MaxAttempts: 2, Backoff: recipes.BackoffExponential, InitialInterval: time.Second, MaxInterval: time.Minute}},
		{"initial below the default max", "{initial_interval: 10s}",
			recipes.Retry{MaxAttempts: 3, Backoff: recipes.BackoffExponential, InitialInterval: 10 * time.Second, MaxInterval: time.Minute}},
		{"initial above the default max", "{backoff: constant, initial_interval: 5m}",
			recipes.Retry{MaxAttempts: 3, Backoff: recipes.BackoffConstant, InitialInterval: 5 * time.Minute, MaxInterval: 5 * time.Minute}},
		{"both set", "{initial_interval: 5m, max_interval: 1h}",
			recipes.Retry{MaxAttempts: 3, Backoff: recipes.BackoffExponential, InitialInterval: 5 * time.Minute, MaxInterval: time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "version: 1\nname: r\ntrigger: {type: webhook.received, with: {path: /r}}\nsteps:\n  - id: one\n    action: http.request\n    with: {url: https://x.test/}\n    retry: " + tc.retry + "\n"
			r, diags := (&recipes.Loader{}).Parse("r.yaml", []byte(src))
			require.Empty(t, diags, diags.Error())
			require.Equal(t, tc.want, r.Steps[0].Retry)
		})
	}
}
