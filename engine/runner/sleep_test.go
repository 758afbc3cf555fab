package runner_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/runner"
)

func TestSleepContext(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		require.NoError(t, runner.SleepContext(context.Background(), time.Millisecond))
	})
	t.Run("ends with its context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// an hour would fail the test by its timeout: it must return now
		require.ErrorIs(t, runner.SleepContext(ctx, time.Hour), context.Canceled)
	})
}
