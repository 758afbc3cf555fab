package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// examplesDir is the repository's examples, relative to this package.
var examplesDir = filepath.Join("..", "..", "examples")

// exampleCounts counts the recipes, tests and test cases of examples/
// (sous.yaml, the config, is not a recipe).
type exampleCounts struct{ recipes, tests, cases int }

func countExamples(t *testing.T) exampleCounts {
	t.Helper()
	var c exampleCounts
	err := filepath.WalkDir(examplesDir, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := e.Name()
		switch {
		case e.IsDir() && name == "fixtures":
			return filepath.SkipDir
		case e.IsDir() || name == "sous.yaml" || !strings.HasSuffix(name, ".yaml"):
		case strings.HasSuffix(name, ".test.yaml"):
			c.tests++
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			c.cases += strings.Count(string(src), "\n  - name: ")
		default:
			c.recipes++
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, c.recipes, 6)
	require.Equal(t, c.recipes, c.tests, "every example has a test")
	return c
}

// result is what one in-process CLI call printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// sous runs the CLI in-process.
func sous(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(args, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// writeFile writes a file under dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// brokenRecipe has two errors: a typo in an expression (line 6, column
// 15) and an unknown `with` field (line 12, column 7).
const brokenRecipe = `version: 1
name: broken
trigger:
  type: webhook.received
  with: {path: /broken}
filter: event.methd == "POST"
steps:
  - id: call
    action: http.request
    with:
      url: https://example.test
      methd: GET
`

func TestValidate(t *testing.T) {
	ex := countExamples(t)
	dir := t.TempDir()
	broken := writeFile(t, dir, "broken.yaml", brokenRecipe)
	unsetVar := writeFile(t, dir, "unset.yaml", "connections:\n  api: {type: http, bearer_token: \"${SOUS_TEST_SURELY_UNSET_VAR}\"}\n")
	noGitHub := writeFile(t, dir, "nogithub.yaml", "connections:\n  fulfilment: {type: http}\n  shop_api: {type: http}\n  crm: {type: http}\n  postmark: {type: http}\n")

	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings
		stderr   []string // substrings
		noStdout bool
	}{
		{name: "examples are clean", args: []string{"validate", examplesDir}, code: 0,
			stderr: []string{fmt.Sprintf("ok: %d files, %d recipes, %d tests, 0 errors, 0 warnings\n", ex.recipes+ex.tests, ex.recipes, ex.tests)}, noStdout: true},
		{name: "examples with their config", args: []string{"validate", "--strict", "--config", filepath.Join(examplesDir, "sous.yaml"), examplesDir}, code: 0,
			stderr: []string{"ok: ", "0 errors, 0 warnings"}, noStdout: true},
		{name: "a broken recipe", args: []string{"validate", broken}, code: 1,
			stdout: []string{
				broken + `:6:15: error: expression: unknown field methd in event (did you mean "method"?)`,
				broken + `:12:7: error: step call.with: unknown field "methd" for http.request (did you mean "method"?)`,
			},
			stderr: []string{"FAIL: 1 files, 0 recipes, 0 tests, 2 errors, 0 warnings"}},
		{name: "a config naming an unset variable", args: []string{"validate", "--config", unsetVar, examplesDir}, code: 1,
			stdout: []string{unsetVar + ":2:", "SOUS_TEST_SURELY_UNSET_VAR is not set"}},
		{name: "a connection missing from the config", args: []string{"validate", "--config", noGitHub, examplesDir}, code: 1,
			stdout: []string{"github-issues.yaml:", `no connection "github" in ` + noGitHub}},
		{name: "a path that does not exist", args: []string{"validate", filepath.Join(dir, "nope")}, code: 1,
			stdout: []string{"nope"}},
		{name: "bad format", args: []string{"validate", "--format", "xml", examplesDir}, code: 2,
			stderr: []string{`--format "xml": use text, json or github`}, noStdout: true},
		{name: "unknown flag", args: []string{"validate", "--nope", examplesDir}, code: 2,
			stderr: []string{"unknown flag: --nope"}, noStdout: true},
		{name: "unknown command", args: []string{"valdiate"}, code: 2,
			stderr: []string{`unknown command "valdiate"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sous(t, "", tt.args...)
			require.Equal(t, tt.code, r.code, "%s", r)
			for _, s := range tt.stdout {
				require.Contains(t, r.stdout, s, "%s", r)
			}
			for _, s := range tt.stderr {
				require.Contains(t, r.stderr, s, "%s", r)
			}
			if tt.noStdout {
				require.Empty(t, r.stdout)
			}
		})
	}
}

func TestValidateTextPositions(t *testing.T) {
	dir := t.TempDir()
	broken := writeFile(t, dir, "broken.yaml", brokenRecipe)
	r := sous(t, "", "validate", dir)
	require.Equal(t, 1, r.code, "%s", r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, "%s", r)
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(broken) + `:\d+:\d+: error: .+$`)
	for _, l := range lines {
		require.Regexp(t, re, l)
	}
}

func TestValidateJSON(t *testing.T) {
	ex := countExamples(t)
	dir := t.TempDir()
	broken := writeFile(t, dir, "broken.yaml", brokenRecipe)

	type diag struct {
		File     string `json:"file"`
		Line     int    `json:"line"`
		Column   int    `json:"column"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
	}
	type report struct {
		Files       int    `json:"files"`
		Errors      int    `json:"errors"`
		Warnings    int    `json:"warnings"`
		Diagnostics []diag `json:"diagnostics"`
	}
	tests := []struct {
		name   string
		path   string
		code   int
		files  int
		errors int
		first  *diag
	}{
		{name: "examples", path: examplesDir, code: 0, files: ex.recipes + ex.tests},
		{name: "broken", path: broken, code: 1, files: 1, errors: 2,
			first: &diag{File: broken, Line: 6, Column: 15, Severity: "error", Message: `expression: unknown field methd in event (did you mean "method"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sous(t, "", "validate", "--format", "json", tt.path)
			require.Equal(t, tt.code, r.code, "%s", r)
			require.Empty(t, r.stderr, "json output keeps stderr quiet")
			var rep report
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&rep), "%s", r)
			require.Equal(t, tt.files, rep.Files)
			require.Equal(t, tt.errors, rep.Errors)
			require.Equal(t, 0, rep.Warnings)
			require.Len(t, rep.Diagnostics, tt.errors)
			require.NotNil(t, rep.Diagnostics, "diagnostics is a list, never null")
			if tt.first != nil {
				require.Equal(t, *tt.first, rep.Diagnostics[0])
			}
			// the diagnostics list is [] rather than null when clean
			require.Contains(t, r.stdout, `"diagnostics": [`)
		})
	}
}

func TestValidateGitHub(t *testing.T) {
	dir := t.TempDir()
	broken := writeFile(t, dir, "broken.yaml", brokenRecipe)

	r := sous(t, "", "validate", "--format", "github", broken)
	require.Equal(t, 1, r.code, "%s", r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, "%s", r)
	// a file property escapes ':' and ',' (a Windows drive letter would hold one)
	file := strings.NewReplacer("%", "%25", ":", "%3A", ",", "%2C").Replace(broken)
	require.Equal(t, "::error file="+file+",line=6,col=15,title=sous validate::expression: unknown field methd in event (did you mean \"method\"?)", lines[0])
	re := regexp.MustCompile(`^::error file=[^,]+,line=\d+,col=\d+(,title=[^:]*)?::.+$`)
	for _, l := range lines {
		require.Regexp(t, re, l)
	}

	clean := sous(t, "", "validate", "--format", "github", examplesDir)
	require.Equal(t, 0, clean.code, "%s", clean)
	require.Empty(t, clean.stdout)
}

// aRecipe and its test with one right and one wrong expectation.
const (
	greetRecipe = `version: 1
name: greet
trigger:
  type: webhook.received
  with: {path: /greet}
filter: event.body.name != ""
steps:
  - id: hello
    action: http.request
    with:
      url: https://greeter.test/hello
      json: {text: "Hello, {{ event.body.name }}!", n: "{{ len(event.body.name) }}"}
`
	greetTest = `recipe: greet
cases:
  - name: greets
    event: {body: {name: Ada}}
    expect:
      status: succeeded
      steps:
        hello: {with: {json: {text: "Hello, Ada!", n: 3}}}
  - name: wrong on purpose
    event: {body: {name: Ada}}
    expect:
      steps:
        hello: {with: {json: {text: "Hi, Ada!"}}}
`
)

func TestTest(t *testing.T) {
	ex := countExamples(t)
	dir := t.TempDir()
	writeFile(t, dir, "greet.yaml", greetRecipe)
	greetTestPath := writeFile(t, dir, "greet.test.yaml", greetTest)
	okDir := t.TempDir()
	writeFile(t, okDir, "greet.yaml", greetRecipe)
	writeFile(t, okDir, "greet.test.yaml", greetTest[:strings.Index(greetTest, "  - name: wrong")])
	badDir := t.TempDir()
	writeFile(t, badDir, "broken.yaml", brokenRecipe)
	lonely := writeFile(t, t.TempDir(), "greet.yaml", greetRecipe)

	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  []string
		without []string
	}{
		{name: "the examples pass", args: []string{"test", examplesDir}, code: 0,
			stdout: []string{fmt.Sprintf("PASS\nok\t%d cases in %d files", ex.cases, ex.tests)}, without: []string{"FAIL", "=== RUN"}},
		{name: "verbose lists every case", args: []string{"test", "-v", examplesDir}, code: 0,
			stdout: []string{"=== RUN   github-issues/announces a new issue and labels it for triage\n--- PASS: github-issues/announces a new issue and labels it for triage ("}},
		{name: "--run selects cases", args: []string{"test", "-v", "--run", `big-orders/.*small`, examplesDir}, code: 0,
			stdout:  []string{"=== RUN   big-orders/ignores small and unpaid orders\n", "ok\t1 cases"},
			without: []string{"github-issues/", "big-orders/sends"}},
		{name: "a wrong expectation fails", args: []string{"test", dir}, code: 1,
			stdout: []string{
				"--- FAIL: greet/wrong on purpose (",
				"    " + greetTestPath + ":13:", ": step hello.with.json.text\n",
				"        expected: \"Hi, Ada!\"\n",
				"        got:      \"Hello, Ada!\"\n",
				"FAIL\n1 passed, 1 failed\n",
			},
			without: []string{"--- FAIL: greet/greets"}},
		{name: "a passing file alone passes", args: []string{"test", okDir}, code: 0,
			stdout: []string{"PASS\nok\t1 cases in 1 files"}},
		{name: "an invalid recipe fails", args: []string{"test", badDir}, code: 1,
			stdout: []string{"broken.yaml:6:15: error:", "FAIL\n0 passed, 0 failed\n"}},
		{name: "a recipe given alone runs its tests beside it", args: []string{"test", filepath.Join(badDir, "..", filepath.Base(okDir), "greet.yaml")}, code: 0,
			stdout: []string{"PASS\nok\t1 cases in 1 files"}},
		{name: "no test files", args: []string{"test", lonely}, code: 0,
			stdout: []string{"ok\t(no test cases found)"}},
		{name: "bad --run", args: []string{"test", "--run", "(", examplesDir}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sous(t, "", tt.args...)
			require.Equal(t, tt.code, r.code, "%s", r)
			for _, s := range tt.stdout {
				require.Contains(t, r.stdout, s, "%s", r)
			}
			for _, s := range tt.without {
				require.NotContains(t, r.stdout, s, "%s", r)
			}
		})
	}
}

// recorder is an httptest server that records the requests it answers.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path, Auth, ContentType string
	Body                            map[string]any
}

func newRecorder(t *testing.T, status int, reply string) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), m})
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// orderRecipe calls URL twice: once directly, once through an http
// connection named api; the second step's if reads the first's output.
func orderRecipe(url string) string {
	return `version: 1
name: order-sync
trigger:
  type: webhook.received
  with: {path: /orders}
filter: event.body.total >= 100
vars:
  label: "Order {{ event.body.id }}"
steps:
  - id: create
    action: http.request
    with:
      url: ` + url + `/orders/{{ event.body.id }}
      method: PUT
      headers: {Authorization: "Bearer {{ secrets.ORDERS_API_TOKEN }}"}
      json: {label: "{{ vars.label }}", total: "{{ event.body.total }}", token_echo: "{{ secrets.ORDERS_API_TOKEN }}"}
    retry: {max_attempts: 1}
  - id: note
    action: http.request
    if: steps.create.output.status == 201
    with:
      url: ` + url + `/notes
      json: {text: "created {{ steps.create.output.json.id }}"}
    retry: {max_attempts: 1}
`
}

const orderEvent = `{"body": {"id": 42, "total": 250}, "headers": {"Content-Type": "application/json"}}`

func TestRunDryRunCallsNothing(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		t.Errorf("dry run called %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	dir := t.TempDir()
	recipe := writeFile(t, dir, "order-sync.yaml", orderRecipe(srv.URL))
	event := writeFile(t, dir, "order.json", orderEvent)
	t.Setenv("SOUS_SECRET_ORDERS_API_TOKEN", "tok-very-secret-123")

	r := sous(t, "", "run", recipe, "--event", event, "--dry-run")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "▶ create (http.request): would call (dry run)\n  input:\n", "%s", r)
	require.Contains(t, r.stdout, "        label: Order 42\n")
	require.Contains(t, r.stdout, "        total: 250\n")
	require.Contains(t, r.stdout, "    method: PUT\n")
	require.Contains(t, r.stdout, "    url: "+srv.URL+"/orders/42\n")
	require.Contains(t, r.stdout, "Authorization: Bearer [redacted]")
	require.Contains(t, r.stdout, "▶ note (http.request): skipped (if was false)", "a dry run has no output, so the status is 0")
	require.Contains(t, r.stdout, "run order-sync: succeeded in ")
	require.NotContains(t, r.stdout, "succeeded in 0s", "a run of microseconds is not shown as 0s")
	require.NotContains(t, r.stdout, "tok-very-secret-123")
	require.NotContains(t, r.stdout, "output:")
	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, hits)
}

func TestRunCallsTheServer(t *testing.T) {
	srv := newRecorder(t, http.StatusCreated, `{"id": "ord_42", "echo": "tok-very-secret-123"}`)
	dir := t.TempDir()
	recipe := writeFile(t, dir, "order-sync.yaml", orderRecipe(srv.URL))
	event := writeFile(t, dir, "order.json", orderEvent)
	t.Setenv("SOUS_SECRET_ORDERS_API_TOKEN", "tok-very-secret-123")

	r := sous(t, "", "run", recipe, "--event", event)
	require.Equal(t, 0, r.code, "%s", r)
	reqs := srv.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, recorded{Method: "PUT", Path: "/orders/42", Auth: "Bearer tok-very-secret-123", ContentType: "application/json",
		Body: map[string]any{"label": "Order 42", "total": float64(250), "token_echo": "tok-very-secret-123"}}, reqs[0])
	require.Equal(t, "/notes", reqs[1].Path)
	require.Equal(t, map[string]any{"text": "created ord_42"}, reqs[1].Body)

	require.Contains(t, r.stdout, "▶ create (http.request): succeeded\n")
	require.Contains(t, r.stdout, "  output:\n")
	require.Contains(t, r.stdout, "    status: 201\n")
	require.Contains(t, r.stdout, "id: ord_42")
	require.Contains(t, r.stdout, "▶ note (http.request): succeeded\n")
	require.Contains(t, r.stdout, "run order-sync: succeeded in ")
	// the secret the server echoed, and the one in the input, are redacted
	require.NotContains(t, r.stdout+r.stderr, "tok-very-secret-123")
	require.Contains(t, r.stdout, "echo: '[redacted]'")
	require.Contains(t, r.stdout, "token_echo: '[redacted]'")
}

func TestRunJSON(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, `{"id": "ord_42"}`)
	dir := t.TempDir()
	recipe := writeFile(t, dir, "order-sync.yaml", orderRecipe(srv.URL))
	t.Setenv("SOUS_SECRET_ORDERS_API_TOKEN", "tok-very-secret-123")

	// the event from standard input, as YAML
	r := sous(t, "body: {id: 7, total: 100}\n", "run", recipe, "--event", "-", "--json")
	require.Equal(t, 0, r.code, "%s", r)
	require.NotContains(t, r.stdout, "▶", "--json prints only the record")
	var rec struct {
		RunID  string         `json:"run_id"`
		Recipe string         `json:"recipe"`
		Status string         `json:"status"`
		Vars   map[string]any `json:"vars"`
		Steps  []struct {
			ID     string         `json:"id"`
			Status string         `json:"status"`
			Input  map[string]any `json:"input"`
			Output map[string]any `json:"output"`
		} `json:"steps"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec), "%s", r)
	require.Equal(t, "order-sync", rec.Recipe)
	require.Equal(t, "succeeded", rec.Status)
	require.NotEmpty(t, rec.RunID)
	require.Equal(t, map[string]any{"label": "Order 7"}, rec.Vars)
	require.Len(t, rec.Steps, 2)
	require.Equal(t, "create", rec.Steps[0].ID)
	require.Equal(t, "succeeded", rec.Steps[0].Status)
	require.Equal(t, float64(200), rec.Steps[0].Output["status"])
	require.Equal(t, map[string]any{"id": "ord_42"}, rec.Steps[0].Output["json"])
	require.Equal(t, "[redacted]", rec.Steps[0].Input["json"].(map[string]any)["token_echo"])
	require.Equal(t, "note", rec.Steps[1].ID)
	require.Equal(t, "skipped", rec.Steps[1].Status, "status 200, not 201")
	require.NotContains(t, r.stdout, "tok-very-secret-123")
	require.Len(t, srv.requests(), 1)
}

func TestRunWithConnection(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, `{"ok": true, "seen": "Bearer conn-token-abcdef"}`)
	dir := t.TempDir()
	recipe := writeFile(t, dir, "via-conn.yaml", `version: 1
name: via-conn
trigger: {type: schedule.cron, with: {cron: "@daily"}}
steps:
  - id: call
    action: http.request
    connection: api
    with: {url: v1/ping, method: GET}
`)
	cfg := writeFile(t, dir, "sous.yaml", "connections:\n  api: {type: http, base_url: \"${TEST_API_BASE}\", bearer_token: \"${TEST_API_TOKEN}\"}\n")
	event := writeFile(t, dir, "tick.json", `{"scheduled_at": "2026-01-05T00:00:00Z"}`)
	t.Setenv("TEST_API_BASE", srv.URL+"/")
	t.Setenv("TEST_API_TOKEN", "conn-token-abcdef")

	r := sous(t, "", "run", recipe, "--config", cfg, "--event", event)
	require.Equal(t, 0, r.code, "%s", r)
	reqs := srv.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "GET", reqs[0].Method)
	require.Equal(t, "/v1/ping", reqs[0].Path)
	require.Equal(t, "Bearer conn-token-abcdef", reqs[0].Auth)
	require.NotContains(t, r.stdout, "conn-token-abcdef", "connection secrets are redacted")
	require.Contains(t, r.stdout, "seen: Bearer [redacted]")

	// without the config, the connection cannot be resolved
	r = sous(t, "", "run", recipe, "--event", event)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stdout, `connection "api"`)
}

func TestRunFailures(t *testing.T) {
	srv := newRecorder(t, http.StatusUnprocessableEntity, `{"error": "total must be positive"}`)
	dir := t.TempDir()
	recipe := writeFile(t, dir, "order-sync.yaml", orderRecipe(srv.URL))
	event := writeFile(t, dir, "order.json", orderEvent)
	small := writeFile(t, dir, "small.json", `{"body": {"id": 1, "total": 5}}`)
	broken := writeFile(t, dir, "broken.yaml", brokenRecipe)
	notObject := writeFile(t, dir, "list.json", `[1, 2]`)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "a 4xx answer fails the run", args: []string{"run", recipe, "--event", event}, code: 1,
			stdout: []string{"▶ create (http.request): failed\n", "422", "run order-sync: failed in ", "failed at step create"}},
		{name: "a false filter is not a failure", args: []string{"run", recipe, "--event", small}, code: 0,
			stdout: []string{"run order-sync: filtered in "}},
		{name: "an invalid recipe", args: []string{"run", broken, "--event", event}, code: 1,
			stderr: []string{broken + ":12:7: error:"}},
		{name: "no --event", args: []string{"run", recipe}, code: 2,
			stderr: []string{"--event is required"}},
		{name: "an event that is not an object", args: []string{"run", recipe, "--event", notObject}, code: 2,
			stderr: []string{"must be an object"}},
		{name: "a missing recipe file", args: []string{"run", filepath.Join(dir, "nope.yaml"), "--event", event}, code: 2,
			stderr: []string{"nope.yaml"}},
		{name: "two files", args: []string{"run", recipe, recipe, "--event", event}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sous(t, "", tt.args...)
			require.Equal(t, tt.code, r.code, "%s", r)
			for _, s := range tt.stdout {
				require.Contains(t, r.stdout, s, "%s", r)
			}
			for _, s := range tt.stderr {
				require.Contains(t, r.stderr, s, "%s", r)
			}
		})
	}
}

func TestRunExampleDryRun(t *testing.T) {
	// the command the README shows
	r := sous(t, "", "run", filepath.Join(examplesDir, "big-orders.yaml"), "--event", filepath.Join(examplesDir, "fixtures", "order-big.json"), "--dry-run")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "▶ fulfil (http.request): would call (dry run)")
	require.Contains(t, r.stdout, "external_id: A-10482")
	require.Contains(t, r.stdout, "▶ tell_sales (http.request): skipped (if was false)")
}

func TestSchema(t *testing.T) {
	r := sous(t, "", "schema")
	require.Equal(t, 0, r.code, "%s", r)
	var s map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", s["$schema"])
	require.Equal(t, "Sous recipe", s["title"])
	require.Contains(t, s["$defs"], "with.http.request")
	require.Contains(t, s["$defs"], "with.webhook.received")
	require.Contains(t, s["$defs"], "with.schedule.cron")

	r = sous(t, "", "schema", "extra")
	require.Equal(t, 2, r.code, "%s", r)
}

func TestConnectors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "list", args: []string{"connectors"}, code: 0, stdout: []string{
			"ID", "KIND", "SUMMARY",
			"http.request", "action", "Send an HTTP request",
			"webhook.received", "trigger",
			"schedule.cron",
		}},
		{name: "describe an action", args: []string{"connectors", "http.request"}, code: 0, stdout: []string{
			"http.request (action)", "Connection: type http (optional)", "Fields (with):",
			"  url ", "required", "  method ", "default POST", "  headers ", "  json ", "  body ", "  timeout ",
			"Output (steps.<id>.output.*):", "status (integer)",
		}},
		{name: "describe a trigger", args: []string{"connectors", "webhook.received"}, code: 0, stdout: []string{
			"webhook.received (trigger)", "  path ", "  secret ", "signature_header", "Event (event.*):", "body (any)",
		}},
		{name: "a typo suggests", args: []string{"connectors", "http.requst"}, code: 1,
			stderr: []string{`unknown connector "http.requst" (did you mean "http.request"?)`}},
		{name: "nothing close", args: []string{"connectors", "zzz.qqq"}, code: 1,
			stderr: []string{`unknown connector "zzz.qqq"`}},
		{name: "two args", args: []string{"connectors", "a", "b"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sous(t, "", tt.args...)
			require.Equal(t, tt.code, r.code, "%s", r)
			for _, s := range tt.stdout {
				require.Contains(t, r.stdout, s, "%s", r)
			}
			for _, s := range tt.stderr {
				require.Contains(t, r.stderr, s, "%s", r)
			}
			if tt.code != 0 {
				require.Empty(t, r.stdout)
			}
		})
	}
	r := sous(t, "", "connectors", "zzz.qqq")
	require.NotContains(t, r.stderr, "did you mean")
}

func TestVersion(t *testing.T) {
	r := sous(t, "", "version")
	require.Equal(t, 0, r.code, "%s", r)
	require.Regexp(t, `^sous \S+ \(go\S*, recipe format 1\)\n$`, r.stdout)

	r = sous(t, "", "version", "extra")
	require.Equal(t, 2, r.code, "%s", r)
}

func TestHelp(t *testing.T) {
	r := sous(t, "", "--help")
	require.Equal(t, 0, r.code, "%s", r)
	for _, c := range []string{"validate", "test", "run", "schema", "connectors", "version"} {
		require.Contains(t, r.stdout, "  "+c+" ")
	}
}

// TestConnectorsService: `sous connectors slack` describes the service:
// its connection type's fields and its triggers and actions; an unknown
// name is exit 1 with a suggestion.
func TestConnectorsService(t *testing.T) {
	r := sous(t, "", "connectors", "slack")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "Connection type slack:")
	require.Regexp(t, `(?m)^\s+signing_secret\s+string\s+secret`, r.stdout)
	require.Regexp(t, `(?m)^\s+oauth\.client_id\s+string`, r.stdout)
	require.Contains(t, r.stdout, "Set token, or oauth.")
	require.Regexp(t, `(?m)^\s+slack\.post_message\s+action\s`, r.stdout)
	require.Regexp(t, `(?m)^\s+slack\.slash_command\s+trigger\s`, r.stdout)
	r = sous(t, "", "connectors", "imap")
	require.Equal(t, 0, r.code, "a connection type without components: %s", r)
	require.Contains(t, r.stdout, "Connection type imap:")
	r = sous(t, "", "connectors", "slak")
	require.Equal(t, 1, r.code)
}
