package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	_ "github.com/sous-run/sous/internal/clients/all"
	"github.com/sous-run/sous/schemas"
	_ "github.com/sous-run/sous/triggers/all"
)

var examplesDir = filepath.Join("..", "examples")

// compile compiles the embedded recipe schema (see compileSchema).
func compile(t *testing.T) *jsonschema.Schema { return compileSchema(t, schemas.ID, schemas.Recipe) }

// compileSchema compiles a schema, raw, with its $id with a draft 2020-12
// validator, asserting formats.
func compileSchema(t *testing.T, id string, raw []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource(id, doc))
	s, err := c.Compile(id)
	require.NoError(t, err)
	return s
}

// fromYAML decodes YAML into the values a JSON decoder would give: string
// keys, []any, numbers, strings, booleans and nil.
func fromYAML(t *testing.T, src string) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal([]byte(src), &v))
	return jsonValue(t, v)
}

func jsonValue(t *testing.T, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(t, e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonValue(t, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(t, e)
		}
		return out
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case nil, string, bool, int, int64, uint64, float64:
		return x
	}
	t.Fatalf("unexpected YAML value %T", v)
	return nil
}

// exampleRecipes lists the recipe files of examples/ (not tests, not the
// config).
func exampleRecipes(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(examplesDir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".test.yaml") || name == "sous.yaml" {
			continue
		}
		out = append(out, filepath.Join(examplesDir, name))
	}
	require.GreaterOrEqual(t, len(out), 6, "the examples hold at least six recipes")
	return out
}

func TestExamplesValidate(t *testing.T) {
	s := compile(t)
	for _, path := range exampleRecipes(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(src), "# yaml-language-server: $schema=../schemas/recipe.schema.json\n"),
				"the first line points editors at the schema")
			require.NoError(t, s.Validate(fromYAML(t, string(src))))
		})
	}
}

// base is a valid recipe that each rejection case breaks in one place.
const base = `version: 1
name: orders
description: Big orders to Slack
enabled: true
trigger:
  type: webhook.received
  with:
    path: /orders
    secret: "{{ secrets.ORDERS_WEBHOOK }}"
    id: event.body.order.id
filter: event.body.order.total >= 100
vars:
  total: "{{ event.body.order.total }}"
steps:
  - id: notify
    name: Notify
    action: http.request
    connection: slack_hook
    if: vars.total > 0
    with:
      url: https://hooks.slack.test/T/B/X
      method: POST
      headers: {X-Source: sous, X-Retry: 3}
      json: {text: "Order {{ event.body.order.id }}"}
      timeout: 10s
    retry: {max_attempts: 5, backoff: linear, initial_interval: 1s, max_interval: 30s}
    timeout: 20s
    continue_on_error: true
on_error:
  - id: alert
    action: http.request
    with: {url: "{{ secrets.OPS_URL }}", body: "failed: {{ error.message }}"}
`

func TestRecipesAccepted(t *testing.T) {
	s := compile(t)
	tests := []struct {
		name       string
		old, new   string // a replacement in base; empty: base as is
		extraCheck func(t *testing.T, v any)
	}{
		{name: "the base recipe"},
		{name: "a cron trigger",
			old: "  type: webhook.received\n  with:\n    path: /orders\n    secret: \"{{ secrets.ORDERS_WEBHOOK }}\"\n    id: event.body.order.id\n",
			new: "  type: schedule.cron\n  with: {cron: \"0 9 * * 1-5\", timezone: Europe/Paris}\n"},
		{name: "a template in an enum field", old: "method: POST", new: `method: "{{ vars.method }}"`},
		{name: "a template in a duration field", old: "timeout: 10s", new: `timeout: "{{ vars.timeout }}"`},
		{name: "a boolean filter", old: "filter: event.body.order.total >= 100", new: "filter: true"},
		{name: "no optional fields", old: "description: Big orders to Slack\nenabled: true\n", new: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base
			if tt.old != "" {
				require.Contains(t, src, tt.old)
				src = strings.Replace(src, tt.old, tt.new, 1)
			}
			require.NoError(t, s.Validate(fromYAML(t, src)))
		})
	}
}

func TestRecipesRejected(t *testing.T) {
	s := compile(t)
	stepsBlock := base[strings.Index(base, "\nsteps:\n")+1 : strings.Index(base, "\non_error:")+1]
	tests := []struct {
		name     string
		old, new string // a replacement in base
		want     string // in the validation error: where and what
	}{
		{name: "unknown top-level field", old: "vars:", new: "variables:",
			want: "at '': additional properties 'variables' not allowed"},
		{name: "unknown trigger field", old: "  type: webhook.received\n", new: "  type: webhook.received\n  filter: x\n",
			want: "at '/trigger': additional properties 'filter' not allowed"},
		{name: "unknown step field", old: "    timeout: 20s\n", new: "    retries: 3\n",
			want: "at '/steps/0': additional properties 'retries' not allowed"},
		{name: "unknown with field of http.request", old: "      method: POST\n", new: "      methd: POST\n",
			want: "at '/steps/0/with': additional properties 'methd' not allowed"},
		{name: "unknown with field of webhook.received", old: "    id: event.body.order.id\n", new: "    dedup: event.body.order.id\n",
			want: "at '/trigger/with': additional properties 'dedup' not allowed"},
		{name: "missing required with field: webhook path", old: "    path: /orders\n", new: "",
			want: "at '/trigger/with': missing property 'path'"},
		{name: "missing with of webhook.received", old: "  with:\n    path: /orders\n    secret: \"{{ secrets.ORDERS_WEBHOOK }}\"\n    id: event.body.order.id\n", new: "",
			want: "at '/trigger': missing property 'with'"},
		{name: "missing required with field: http url", old: "      url: https://hooks.slack.test/T/B/X\n", new: "",
			want: "at '/steps/0/with': missing property 'url'"},
		{name: "wrong method", old: "method: POST", new: "method: FETCH",
			want: "at '/steps/0/with/method': 'FETCH' does not match pattern '^([Gg][Ee][Tt]|"},
		{name: "wrong enum: backoff", old: "backoff: linear", new: "backoff: fibonacci",
			want: "at '/steps/0/retry/backoff': value must be one of 'exponential', 'constant', 'linear'"},
		{name: "unknown trigger type", old: "type: webhook.received", new: "type: webhook.recieved",
			want: "at '/trigger/type': value must be one of"},
		{name: "unknown action", old: "action: http.request\n    connection", new: "action: http.get\n    connection",
			want: "at '/steps/0/action': value must be"},
		{name: "a plain-text secret", old: `secret: "{{ secrets.ORDERS_WEBHOOK }}"`, new: "secret: hunter2",
			want: "at '/trigger/with/secret': 'hunter2' does not match pattern"},
		{name: "a path without a slash", old: "path: /orders", new: "path: orders",
			want: "at '/trigger/with/path': 'orders' does not match pattern '^/"},
		{name: "a bad duration", old: "timeout: 20s", new: "timeout: 20 seconds",
			want: "at '/steps/0/timeout': '20 seconds' does not match pattern"},
		{name: "max_attempts out of range", old: "max_attempts: 5", new: "max_attempts: 0",
			want: "at '/steps/0/retry/max_attempts': minimum"},
		{name: "a bad step id", old: "- id: notify", new: "- id: Notify",
			want: "at '/steps/0/id': 'Notify' does not match pattern"},
		{name: "a bad recipe name", old: "name: orders", new: "name: Big Orders",
			want: "at '/name': 'Big Orders' does not match pattern"},
		{name: "version 2", old: "version: 1", new: "version: 2",
			want: "at '/version': value must be 1"},
		{name: "no steps", old: stepsBlock, new: "steps: []\n",
			want: "at '/steps': minItems: got 0, want 1"},
		{name: "missing name", old: "name: orders\n", new: "",
			want: "at '': missing property 'name'"},
		{name: "a step without action", old: "    action: http.request\n    connection", new: "    connection",
			want: "at '/steps/0': missing property 'action'"},
		{name: "a bad var name", old: "  total:", new: "  total-amount:",
			want: "invalid propertyName 'total-amount'"},
		{name: "headers must be a map of scalars", old: "headers: {X-Source: sous, X-Retry: 3}", new: "headers: {X-Source: [a, b]}",
			want: "at '/steps/0/with/headers/X-Source': got array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, base, tt.old, "the case must change something")
			src := strings.Replace(base, tt.old, tt.new, 1)
			err := s.Validate(fromYAML(t, src))
			require.Error(t, err, "schema accepted:\n%s", src)
			var ve *jsonschema.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestSchemaIsFresh fails when the committed schema differs from what the
// connector specs generate (run `make generate`).
func TestSchemaIsFresh(t *testing.T) {
	checkFresh(t, schemas.Generate, schemas.Recipe, "recipe.schema.json")

	// every registered connector is in the schema
	var s struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(schemas.Recipe, &s))
	ids := connector.Default.IDs("")
	require.Contains(t, ids, "webhook.received")
	require.Contains(t, ids, "schedule.cron")
	require.Contains(t, ids, "http.request")
	for _, id := range ids {
		require.Contains(t, s.Defs, "with."+id)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := schemas.Generate(connector.Default)
	require.NoError(t, err)
	for range 5 {
		b, err := schemas.Generate(connector.Default)
		require.NoError(t, err)
		require.Equal(t, string(a), string(b))
	}
}

// TestFieldSchema checks the schema of single fields: typed fields also
// take a template, secrets only a template.
func TestFieldSchema(t *testing.T) {
	tests := []struct {
		name   string
		field  connector.Field
		accept []any
		reject []any
	}{
		{name: "plain string", field: connector.Field{Name: "s", Type: connector.String},
			accept: []any{"x", "{{ a }}"}, reject: []any{1, true}},
		{name: "enum", field: connector.Field{Name: "e", Type: connector.String, Enum: []string{"A", "B"}},
			accept: []any{"A", "{{ vars.e }}"}, reject: []any{"C", 1}},
		{name: "int", field: connector.Field{Name: "i", Type: connector.Int},
			accept: []any{3, "{{ 1 + 2 }}"}, reject: []any{1.5, "3", true}},
		{name: "bool", field: connector.Field{Name: "b", Type: connector.Bool},
			accept: []any{true, "{{ x }}"}, reject: []any{"yes", 1}},
		{name: "duration", field: connector.Field{Name: "d", Type: connector.Duration},
			accept: []any{"1h30m", "250ms", "{{ vars.d }}"}, reject: []any{"soon", 30}},
		{name: "secret", field: connector.Field{Name: "k", Type: connector.String, Secret: true},
			accept: []any{"{{ secrets.K }}"}, reject: []any{"hunter2", 1}},
		{name: "list", field: connector.Field{Name: "l", Type: connector.List},
			accept: []any{[]any{"a"}, "{{ vars.l }}"}, reject: []any{"a", map[string]any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := schemas.FieldSchema(tt.field)
			fs["$defs"] = map[string]any{
				"template": map[string]any{"type": "string", "pattern": `\{\{.*\}\}`},
				"duration": map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`},
			}
			checkField(t, fs, tt.accept, tt.reject)
		})
	}
}

// checkFresh checks that a committed schema, embedded and on disk, is
// what generate makes of the connector specs.
func checkFresh(t *testing.T, generate func(*connector.Registry) ([]byte, error), embedded []byte, file string) {
	t.Helper()
	got, err := generate(connector.Default)
	require.NoError(t, err)
	require.Equal(t, string(got), string(embedded), "schemas/%s is stale: run `make generate`", file)
	onDisk, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, string(embedded), string(onDisk))
}

// checkField compiles a field's schema (with the $defs it refers to) and
// checks that it accepts every value of accept and refuses every one of
// reject.
func checkField(t *testing.T, fs map[string]any, accept, reject []any) {
	t.Helper()
	raw, err := json.Marshal(fs)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	require.NoError(t, c.AddResource("field.json", doc))
	s, err := c.Compile("field.json")
	require.NoError(t, err)
	for _, v := range accept {
		require.NoError(t, s.Validate(v), "%#v", v)
	}
	for _, v := range reject {
		require.Error(t, s.Validate(v), "%#v", v)
	}
}
