package benchrecipes_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/internal/benchrecipes"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

// The benchmark recipes load without a diagnostic and say what they should.
func TestRecipesLoad(t *testing.T) {
	const sink = "http://127.0.0.1:9/sink"
	for name, src := range map[string]string{
		"order": benchrecipes.Order("bench", "/bench", 100, sink),
		"other": benchrecipes.Other(7, sink),
	} {
		t.Run(name, func(t *testing.T) {
			rec, diags := (&recipes.Loader{}).Parse(name+".yaml", []byte(src))
			require.False(t, diags.HasErrors(), "%v", diags)
			require.Len(t, rec.Steps, 1)
			require.Equal(t, "http.request", rec.Steps[0].Action)
			require.NotNil(t, rec.Filter)
		})
	}
}
