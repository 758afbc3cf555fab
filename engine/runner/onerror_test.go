package runner_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
)

// A run whose time ran out (its context past its deadline, as
// pipeline.run_timeout leaves it) still runs its on_error steps, with a
// context of their own; one cut short by shutdown (canceled) does not get
// one.
func TestOnErrorAfterTheRunsDeadline(t *testing.T) {
	rec := load(t, `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
on_error:
  - id: alert
    action: test.echo
    with: {text: "{{ error.step }} failed"}
`)
	for _, c := range []struct {
		name  string
		ctx   func() (context.Context, context.CancelFunc)
		alert runner.Status
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, runner.StatusSucceeded},
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, runner.StatusFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(func(ctx context.Context, step string, _ int, req *connector.Request) (map[string]any, error) {
				if err := ctx.Err(); err != nil {
					return nil, connector.Retryable(connector.ReasonTimeout, 0, errors.New("the call was cut short"))
				}
				return echo(ctx, req)
			})
			ctx, cancel := c.ctx()
			defer cancel()
			res := newRunner(f, &sleeper{}).Run(ctx, rec, event(nil), "run-1")
			require.Equal(t, runner.StatusFailed, res.Status)
			var alert *runner.StepResult
			for _, sr := range res.Steps {
				if sr.ID == "alert" {
					alert = sr
				}
			}
			require.NotNil(t, alert)
			require.Equal(t, c.alert, alert.Status, "%+v", alert)
		})
	}
}
