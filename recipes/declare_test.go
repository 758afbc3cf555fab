package recipes_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

const orderSchema = `{
  "type": "object",
  "properties": {
    "order": {
      "type": "object",
      "properties": {
        "id": {"type": "string"},
        "total": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": "object"}
      }
    }
  }
}
`

// declaredRecipe is a webhook recipe whose trigger options hold decl
// (indented under with:) and whose filter is filter.
func declaredRecipe(decl, filter string) string {
	return `version: 1
name: orders
trigger:
  type: webhook.received
  with:
    path: /orders
` + decl + `filter: ` + filter + `
steps:
  - id: notify
    action: http.request
    with:
      url: https://hooks.example.test/notify
`
}

// TestDeclaredBody loads recipes that declare their webhook body, from a
// file beside them or inline, and checks what their expressions may read.
func TestDeclaredBody(t *testing.T) {
	files := map[string]string{
		"schemas/order.json":  orderSchema,
		"fixtures/order.json": `{"order": {"id": "A-1", "total": 120, "tags": ["vip"]}}`,
		"schemas/broken.json": "{\"type\": \"object\",\n \"properties\": []}",
		"notes.txt":           "not json",
	}
	tests := []struct {
		name, decl, filter string
		want               string // "" for no diagnostic; else line:col: message
	}{
		{name: "schema file", decl: "    body_schema: schemas/order.json\n",
			filter: `event.body.order.total >= 100 && "vip" in event.body.order.tags`},
		{name: "schema file typo", decl: "    body_schema: schemas/order.json\n",
			filter: "event.body.order.totl >= 100",
			want:   `8:26: error: expression: unknown field totl in event.body.order (did you mean "total"?)`},
		{name: "an object without properties is open", decl: "    body_schema: schemas/order.json\n",
			filter: `event.body.order.meta.anything == "x"`},
		{name: "a typed field of the wrong type", decl: "    body_schema: schemas/order.json\n",
			filter: `event.body.order.id > 3`,
			want:   `8:29: error: expression: invalid operation: > (mismatched types string and int)`},
		{name: "sample file", decl: "    body_sample: fixtures/order.json\n",
			filter: `event.body.order.total >= 100`},
		{name: "sample file typo", decl: "    body_sample: fixtures/order.json\n",
			filter: `event.body.ordr.total >= 100`,
			want:   `8:20: error: expression: unknown field ordr in event.body (did you mean "order"?)`},
		{name: "inline sample", decl: "    body_sample: {name: Ada}\n",
			filter: `event.body.nam != ""`,
			want:   `8:20: error: expression: unknown field nam in event.body (did you mean "name"?)`},
		{name: "inline schema, open", decl: "    body_schema: {properties: {name: {type: string}}, additionalProperties: true}\n",
			filter: `event.body.other != ""`},
		{name: "undeclared body is untyped", decl: "",
			filter: `event.body.anything.at.all == 1`},
		{name: "the rest of the event stays typed", decl: "    body_sample: {name: Ada}\n",
			filter: `event.headrs["X"] == ""`,
			want:   `8:15: error: expression: unknown field headrs in event (did you mean "headers"?)`},
		{name: "the id option sees the declared body", decl: "    body_sample: {name: Ada}\n    id: event.body.idd\n",
			filter: `true`,
			want:   `8:20: error: expression: unknown field idd in event.body`},
		{name: "absolute path", decl: "    body_schema: /etc/passwd\n", filter: "true",
			want: `7:18: error: trigger.with.body_schema: "/etc/passwd" must be a path relative to the recipe's folder, inside it (no absolute path, no ..)`},
		{name: "path above the folder", decl: "    body_schema: schemas/../../order.json\n", filter: "true",
			want: `7:18: error: trigger.with.body_schema: "schemas/../../order.json" must be a path relative`},
		{name: "not JSON", decl: "    body_sample: notes.txt\n", filter: "true",
			want: `7:18: error: trigger.with.body_sample: notes.txt:1:2 is not valid JSON: invalid character 'o' in literal null (expecting 'u')`},
		{name: "a schema file with an error", decl: "    body_schema: schemas/broken.json\n", filter: "true",
			want: `7:18: error: trigger.with.body_schema: schemas/broken.json: properties must be an object, got a list`},
		{name: "a folder", decl: "    body_schema: schemas\n", filter: "true",
			want: `7:18: error: trigger.with.body_schema: read schemas:`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range files {
				writeTestFile(t, dir, name, content)
			}
			path := writeTestFile(t, dir, "orders.yaml", declaredRecipe(tc.decl, tc.filter))
			set, diags := (&recipes.Loader{}).LoadPaths([]string{dir})
			if tc.want == "" {
				require.Empty(t, diags, diags.Error())
				require.Len(t, set.Recipes, 1)
				return
			}
			require.Len(t, diags, 1, diags.Error())
			require.Contains(t, diags[0].String(), path+":"+tc.want)
		})
	}
}

// TestDeclaredBodySymlink: a link beside the recipe may not lead out of
// its folder.
func TestDeclaredBodySymlink(t *testing.T) {
	outside := t.TempDir()
	writeTestFile(t, outside, "order.json", orderSchema)
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "order.json"), filepath.Join(dir, "order.json")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	writeTestFile(t, dir, "orders.yaml", declaredRecipe("    body_schema: order.json\n", "true"))
	_, diags := (&recipes.Loader{}).LoadPaths([]string{dir})
	require.Len(t, diags, 1, diags.Error())
	require.Contains(t, diags[0].Message, "trigger.with.body_schema: read order.json:")
}

// TestDeclaredBodyRuns: an event is conformed to the declared body, so
// that a JSON number compares with the integer the schema declares, and
// a field the event lacks reads as its zero value.
func TestDeclaredBodyRuns(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir, "schemas/order.json", orderSchema)
	src := declaredRecipe("    body_schema: schemas/order.json\n", `event.body.order.total == 120 && event.body.order.id == ""`)
	path := writeTestFile(t, dir, "orders.yaml", src)
	r, diags := (&recipes.Loader{}).Parse(path, []byte(src))
	require.Empty(t, diags, diags.Error())
	shape := r.Trigger.EventShape()
	require.NotSame(t, r.Trigger.Spec.Shape, shape)
	event := map[string]any{"body": map[string]any{"order": map[string]any{"total": 120.0}}, "method": "POST"}
	ok, err := r.Filter.Bool(map[string]any{"event": shape.Fill(event)})
	require.NoError(t, err)
	require.True(t, ok)

	// without a declaration, the spec's own shape
	plain, diags := (&recipes.Loader{}).Parse(path, []byte(declaredRecipe("", "true")))
	require.Empty(t, diags, diags.Error())
	require.Same(t, plain.Trigger.Spec.Shape, plain.Trigger.EventShape())
}

// TestSuggestIDPrefix: an ID written as its service alone suggests the
// components of that service.
func TestSuggestIDPrefix(t *testing.T) {
	reg := connector.NewRegistry()
	for _, id := range []string{"shop.order_paid", "shop.order_refunded", "mail.received"} {
		require.NoError(t, reg.Add(&connector.Spec{ID: id, Kind: connector.KindTrigger, Summary: "test"}))
	}
	require.NoError(t, reg.Add(&connector.Spec{ID: "http.request", Kind: connector.KindAction, Summary: "test",
		Action: connector.ActionFunc(nil)}))
	tests := []struct{ typ, want string }{
		{"mail", `unknown trigger "mail" (did you mean "mail.received"?)`},
		{"shop", `unknown trigger "shop" (did you mean one of "shop.order_paid", "shop.order_refunded"?)`},
		{"shop.order", `unknown trigger "shop.order" (did you mean one of "shop.order_paid", "shop.order_refunded"?)`},
		{"mail.recieved", `unknown trigger "mail.recieved" (did you mean "mail.received"?)`},
		{"nothing", `unknown trigger "nothing"`},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			src := "version: 1\nname: x\ntrigger: {type: " + tc.typ + "}\nsteps: [{id: a, action: http.request}]\n"
			_, diags := (&recipes.Loader{Registry: reg}).Parse("x.yaml", []byte(src))
			require.Len(t, diags, 1, diags.Error())
			require.Equal(t, "trigger.type: "+tc.want, diags[0].Message)
		})
	}
}

func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// TestDeclaredBodyLinkInside: a link that stays in the recipe's folder is
// followed, written absolute or not, as a test's event_file's is.
func TestDeclaredBodyLinkInside(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir, "schemas/order.json", orderSchema)
	if err := os.Symlink(filepath.Join(dir, "schemas", "order.json"), filepath.Join(dir, "abs.json")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	require.NoError(t, os.Symlink(filepath.Join("schemas", "order.json"), filepath.Join(dir, "rel.json")))
	for _, name := range []string{"abs.json", "rel.json"} {
		writeTestFile(t, dir, "orders.yaml", declaredRecipe("    body_schema: "+name+"\n", "event.body.order.total > 1"))
		_, diags := (&recipes.Loader{}).LoadPaths([]string{dir})
		require.Empty(t, diags, "%s: %s", name, diags.Error())
	}
}

// TestEventFileLinkedFolder: a test in a folder reached through a link
// whose event_file is missing is told so, not that it is outside.
func TestEventFileLinkedFolder(t *testing.T) {
	real := t.TempDir()
	writeTestFile(t, real, "orders.yaml", declaredRecipe("", "true"))
	writeTestFile(t, real, "orders.test.yaml", "recipe: orders\ncases:\n  - name: c\n    event_file: missing.json\n    expect: {filter: true}\n")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	_, diags := (&recipes.Loader{}).LoadPaths([]string{link + string(filepath.Separator)})
	require.Len(t, diags, 1, diags.Error())
	require.NotContains(t, diags[0].Message, "outside")
	require.Contains(t, diags[0].Message, "no such file")
}

// TestLoadLinkedFolder: a folder given as a link to it is walked, not
// taken for an empty one.
func TestLoadLinkedFolder(t *testing.T) {
	real := t.TempDir()
	writeTestFile(t, real, "orders.yaml", declaredRecipe("", "true"))
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	set, diags := (&recipes.Loader{}).LoadPaths([]string{link})
	require.Empty(t, diags, diags.Error())
	require.Equal(t, 1, set.Files)
	require.Len(t, set.Recipes, 1)
	got, err := recipes.Files([]string{link})
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(link, "orders.yaml")}, got)
}
