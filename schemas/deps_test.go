package schemas_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDepsLeaveOutTheRuntime checks that the schema generator does not
// build the runtime: `go list -deps` of package schemas names no broker
// client (NATS, Watermill, pgx), nor the service that assembles them.
// The settings it describes come from engine/settings, which imports
// none of them.
func TestDepsLeaveOutTheRuntime(t *testing.T) {
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "go list needs the go command")
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	require.NoError(t, err, "go list -deps")
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/sous-run/sous/engine/settings", "the list is of package schemas")
	for _, banned := range []string{
		"github.com/nats-io/",
		"github.com/ThreeDotsLabs/",
		"github.com/jackc/",
		"github.com/sous-run/sous/engine/service",
		"github.com/sous-run/sous/engine/pipeline",
		"github.com/sous-run/sous/engine/store",
	} {
		t.Run(banned, func(t *testing.T) {
			for _, d := range deps {
				require.False(t, strings.HasPrefix(d, banned), "package schemas depends on %s", d)
			}
		})
	}
}
