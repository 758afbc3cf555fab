package webhook_test

import (
	"testing"

	"github.com/expr-lang/expr/types"
	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
	"github.com/sous-run/sous/triggers/webhook"
)

func checkField(t *testing.T, name string, v any) (any, error) {
	t.Helper()
	f, ok := webhook.Received.Field(name)
	require.Truef(t, ok, "webhook.received has no field %q", name)
	return f.CheckValue(v)
}

func TestPathPattern(t *testing.T) {
	tests := []struct {
		path    string
		wantErr string
	}{
		{path: "/orders"},
		{path: "/"},
		{path: "/a/b-c_d.e~f/9"},
		{path: "orders", wantErr: `"orders" must start with / and hold only letters, digits and . _ ~ / -`},
		{path: "", wantErr: "must start with /"},
		{path: "/with space", wantErr: "must start with /"},
		{path: "/q?x=1", wantErr: "must start with /"},
		{path: "/frag#x", wantErr: "must start with /"},
		{path: "/ünïcode", wantErr: "must start with /"},
		{path: "/%2e%2e", wantErr: "must start with /"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := checkField(t, webhook.FieldPath, tc.path)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.path, got)
		})
	}
}

func TestMethodsCheck(t *testing.T) {
	tests := []struct {
		name    string
		methods any
		wantErr string
	}{
		{name: "post", methods: []any{"POST"}},
		{name: "several", methods: []any{"GET", "POST", "PUT", "PATCH", "DELETE"}},
		{name: "lower case", methods: []any{"put"}},
		{name: "unsupported", methods: []any{"POST", "TRACE"}, wantErr: "TRACE is not one of GET, POST, PUT, PATCH, DELETE"},
		{name: "head", methods: []any{"HEAD"}, wantErr: "HEAD is not one of"},
		{name: "not a string", methods: []any{42}, wantErr: "42 is not one of"},
		{name: "not a list", methods: "POST", wantErr: "want a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkField(t, webhook.FieldMethods, tc.methods)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestSpec(t *testing.T) {
	spec, ok := connector.Default.Lookup("webhook.received")
	require.True(t, ok, "webhook.received is registered")
	require.Same(t, webhook.Received, spec)
	require.Equal(t, connector.KindTrigger, spec.Kind)
	require.Equal(t, []string{webhook.FieldSecret, webhook.FieldToken}, spec.SecretFields())

	f, _ := spec.Field(webhook.FieldSignatureHeader)
	require.Equal(t, webhook.DefaultSignatureHeader, f.Default)
	f, _ = spec.Field(webhook.FieldMethods)
	require.Equal(t, []any{"POST"}, f.Default)
	f, _ = spec.Field(webhook.FieldPath)
	require.True(t, f.Required)

	// expressions are checked against the event shape
	m, ok := spec.Shape.ExprType().(types.Map)
	require.True(t, ok)
	for _, k := range []string{"body", "headers", "query", "method", "path"} {
		require.Contains(t, m, k)
	}
	require.NotContains(t, m, types.Extra, "the event is a closed object: a typo is an error")

	// body_schema and body_sample declare event.body, which the shape has
	for _, name := range []string{webhook.FieldBodySchema, webhook.FieldBodySample} {
		f, ok := spec.Field(name)
		require.True(t, ok, name)
		require.NotNil(t, f.Declares, name)
		require.Equal(t, "body", f.Declares.Key)
		require.Equal(t, name == webhook.FieldBodySample, f.Declares.Sample)
	}
	require.Equal(t, types.Any, m["body"], "an undeclared body is untyped")
}

func TestRecipeWithWebhook(t *testing.T) {
	tests := []struct {
		name    string
		with    string
		filter  string
		wantErr string
	}{
		{name: "minimal", with: `{path: /orders}`},
		{name: "all fields", with: `{path: /orders, secret: "{{ secrets.HOOK }}", signature_header: X-Hub-Signature-256, id: event.body.id, methods: [POST, PUT]}`},
		{name: "filter on the event", with: `{path: /orders}`, filter: `event.method == "POST" && event.headers["X-Kind"] == "order"`},
		{name: "no path", with: `{secret: "{{ secrets.HOOK }}"}`, wantErr: `missing required field "path"`},
		{name: "path without slash", with: `{path: orders}`, wantErr: "must start with /"},
		{name: "literal secret", with: `{path: /o, secret: hunter2}`, wantErr: "is a secret"},
		{name: "bad method", with: `{path: /o, methods: [TRACE]}`, wantErr: "TRACE is not one of"},
		{name: "bad id expression", with: `{path: /o, id: "event.bodyy.id"}`, wantErr: "bodyy"},
		{name: "typo in the filter", with: `{path: /o}`, filter: `event.metod == "POST"`, wantErr: "metod"},
		{name: "undeclared body is untyped", with: `{path: /orders}`, filter: `event.body.anything == 1`},
		{name: "declared body", with: `{path: /orders, body_sample: {order: {total: 1}}}`, filter: `event.body.order.total >= 1`},
		{name: "typo in a declared body", with: `{path: /orders, body_schema: {properties: {order: {properties: {total: {type: number}}}}}}`,
			filter: `event.body.order.totl >= 1`, wantErr: `unknown field totl in event.body.order (did you mean "total"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "version: 1\nname: hook\ntrigger:\n  type: webhook.received\n  with: " + tc.with + "\n"
			if tc.filter != "" {
				src += "filter: '" + tc.filter + "'\n"
			}
			src += "steps:\n  - id: a\n    action: http.request\n    with: {url: \"https://example.test/{{ event.path }}\"}\n"
			rec, diags := (&recipes.Loader{}).Parse("hook.yaml", []byte(src))
			if tc.wantErr != "" {
				require.True(t, diags.HasErrors(), "want an error containing %q", tc.wantErr)
				require.Contains(t, diags.Error(), tc.wantErr)
				return
			}
			require.Falsef(t, diags.HasErrors(), "%s", diags.Error())
			opts, err := rec.Trigger.Options(map[string]string{"HOOK": "s3cret"})
			require.NoError(t, err)
			require.Equal(t, "/orders", opts.String(webhook.FieldPath))
			if tc.name == "all fields" {
				require.Equal(t, "s3cret", opts.String(webhook.FieldSecret), "the secret renders from secrets")
				require.Equal(t, "X-Hub-Signature-256", opts.String(webhook.FieldSignatureHeader))
				require.Equal(t, []any{"POST", "PUT"}, opts[webhook.FieldMethods])
				require.Contains(t, rec.Trigger.Exprs, webhook.FieldID, "id is compiled as an expression")
			} else {
				require.Equal(t, webhook.DefaultSignatureHeader, opts.String(webhook.FieldSignatureHeader), "the default applies")
				require.Equal(t, []any{"POST"}, opts[webhook.FieldMethods], "the default applies")
			}
		})
	}
}
