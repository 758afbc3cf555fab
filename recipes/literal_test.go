package recipes

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStepLiteral(t *testing.T) {
	l := &Loader{}
	rec, diags := l.Parse("r.yaml", []byte(`version: 1
name: r
trigger: {type: webhook.received, with: {path: /r}}
steps:
  - id: s
    action: http.request
    with: {url: "https://x.test/{{ event.body.id }}", method: PUT}
`))
	require.False(t, diags.HasErrors(), "%v", diags)
	st := rec.Steps[0]
	v, ok := st.Literal("method")
	require.True(t, ok)
	require.Equal(t, "PUT", v)
	_, ok = st.Literal("url")
	require.False(t, ok, "a template")
	_, ok = st.Literal("headers")
	require.False(t, ok, "absent")
}
