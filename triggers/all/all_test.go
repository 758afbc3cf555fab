package all_test

import (
	"testing"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/allcheck"
	_ "github.com/sous-run/sous/triggers/all"
)

// TestAll fails when a package under triggers/ is not imported by all.go,
// or a registered connector has no imported package.
func TestAll(t *testing.T) {
	allcheck.Run(t, connector.KindTrigger, "triggers", []string{"webhook.received", "schedule.cron"})
}
