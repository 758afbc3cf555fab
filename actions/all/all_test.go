package all_test

import (
	"testing"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/allcheck"
)

// TestAll fails when a package under actions/ is not imported by all.go,
// or a registered connector has no imported package.
func TestAll(t *testing.T) {
	allcheck.Run(t, connector.KindAction, "actions", []string{"http.request"})
}
