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

// TestMaxRetryAfter: a Retry-After within Runner.MaxRetryAfter (zero: the
// 24h default) is waited for as before; one beyond it fails the step at
// once with the error's reason and an error that names the limit, without
// waiting or pausing.
func TestMaxRetryAfter(t *testing.T) {
	const day = 24 * time.Hour
	clock := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name           string
		maxRetryAfter  time.Duration // the Runner's field
		maxInlineDelay time.Duration // the Runner's field: durable retries
		retryAfter     time.Duration // what the service asks on attempt 1
		// what happened
		status   runner.Status
		attempts int
		waits    []time.Duration
		retryAt  time.Time // of a pending run
		message  string    // in the step's and the run's error, when failed
	}{
		{
			name:       "within the default is waited for",
			retryAfter: 23 * time.Hour,
			status:     runner.StatusSucceeded, attempts: 2, waits: []time.Duration{23 * time.Hour},
		},
		{
			name:       "exactly the default is waited for",
			retryAfter: day,
			status:     runner.StatusSucceeded, attempts: 2, waits: []time.Duration{day},
		},
		{
			name:       "beyond the default fails at once",
			retryAfter: 2 * day,
			status:     runner.StatusFailed, attempts: 1,
			message: "boom (retryable, rate_limited): the service asked to retry after 48h0m0s, beyond pipeline.max_retry_after (24h0m0s)",
		},
		{
			name:       "a second beyond the default fails",
			retryAfter: day + time.Second,
			status:     runner.StatusFailed, attempts: 1,
			message: "the service asked to retry after 24h0m1s, beyond pipeline.max_retry_after (24h0m0s)",
		},
		{
			name:       "an HTTP date's wait is shown to the second",
			retryAfter: 2*day + 300*time.Millisecond,
			status:     runner.StatusFailed, attempts: 1,
			message: "retry after 48h0m0s, beyond",
		},
		{
			name:          "a negative field is the default",
			maxRetryAfter: -time.Hour, retryAfter: 2 * time.Hour,
			status: runner.StatusSucceeded, attempts: 2, waits: []time.Duration{2 * time.Hour},
		},
		{
			name:          "within a set limit",
			maxRetryAfter: time.Hour, retryAfter: time.Hour,
			status: runner.StatusSucceeded, attempts: 2, waits: []time.Duration{time.Hour},
		},
		{
			name:          "beyond a set limit",
			maxRetryAfter: time.Hour, retryAfter: 90 * time.Minute,
			status: runner.StatusFailed, attempts: 1,
			message: "the service asked to retry after 1h30m0s, beyond pipeline.max_retry_after (1h0m0s)",
		},
		{
			name:          "a set limit above the default",
			maxRetryAfter: 3 * day, retryAfter: 2 * day,
			status: runner.StatusSucceeded, attempts: 2, waits: []time.Duration{2 * day},
		},
		{
			name:           "within the limit a long wait is still a durable retry",
			maxInlineDelay: 2 * time.Second, retryAfter: 20 * time.Hour,
			status: runner.StatusPending, attempts: 1, retryAt: clock.Add(20 * time.Hour),
		},
		{
			name:           "beyond the limit a durable retry fails instead of pausing",
			maxInlineDelay: 2 * time.Second, retryAfter: 30 * time.Hour,
			status: runner.StatusFailed, attempts: 1,
			message: "the service asked to retry after 30h0m0s, beyond pipeline.max_retry_after (24h0m0s)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(func(_ context.Context, _ string, n int, _ *connector.Request) (map[string]any, error) {
				if n == 1 {
					return nil, connector.Retryable(connector.ReasonRateLimited, tc.retryAfter, errors.New("boom"))
				}
				return map[string]any{"text": "ok"}, nil
			})
			s := &sleeper{}
			r := newRunner(f, s)
			r.MaxRetryAfter, r.MaxInlineDelay = tc.maxRetryAfter, tc.maxInlineDelay
			r.Now = func() time.Time { return clock }
			var finished []*runner.StepResult
			r.OnStep = func(sr *runner.StepResult) { finished = append(finished, sr) }

			res := r.Run(t.Context(), load(t, retryRecipe), event(nil), "run-1")
			require.Equal(t, tc.status, res.Status)
			require.Equal(t, tc.attempts, f.count("call"))
			require.Equal(t, tc.waits, s.got())
			switch tc.status {
			case runner.StatusPending:
				require.Equal(t, tc.retryAt, res.RetryAt)
				require.NotNil(t, res.State)
				require.Len(t, res.State.Attempts, 1)
				require.Equal(t, tc.retryAfter, res.State.Attempts[0].Delay)
				require.Empty(t, finished, "a paused step is not finished")
			case runner.StatusFailed:
				require.Len(t, finished, 1)
				sr := res.Step("call")
				require.NotNil(t, sr)
				require.Equal(t, runner.StatusFailed, sr.Status)
				require.Equal(t, "rate_limited", sr.Reason, "the error's own reason")
				require.Equal(t, "rate_limited", res.Error.Reason)
				require.Equal(t, "call", res.Error.Step)
				require.Contains(t, sr.Error, tc.message)
				require.Contains(t, res.Error.Message, tc.message)
				require.Len(t, sr.Attempts, 1)
				a := sr.Attempts[0]
				require.Contains(t, a.Error, tc.message, "the attempt's record says why it was the last")
				require.Equal(t, "rate_limited", a.Reason)
				require.True(t, a.Retryable, "the error was retryable; the wait was too long")
				require.Zero(t, a.Delay, "no wait after the last attempt")
			default:
				sr := res.Step("call")
				require.NotNil(t, sr)
				require.Len(t, sr.Attempts, tc.attempts)
				require.Equal(t, tc.waits[0], sr.Attempts[0].Delay)
				require.NotContains(t, sr.Attempts[0].Error, "max_retry_after")
			}
		})
	}
}

// TestMaxRetryAfterOnLastAttempt: when no retry was left anyway, the
// error is the service's alone: the limit played no part.
func TestMaxRetryAfterOnLastAttempt(t *testing.T) {
	f := newFake(func(context.Context, string, int, *connector.Request) (map[string]any, error) {
		return nil, connector.Retryable(connector.ReasonRateLimited, 48*time.Hour, errors.New("boom"))
	})
	s := &sleeper{}
	rec := load(t, `
version: 1
name: once
trigger: {type: test.event}
steps:
  - id: call
    action: test.echo
    retry: {max_attempts: 1}
`)
	res := newRunner(f, s).Run(t.Context(), rec, event(nil), "run-1")
	require.Equal(t, runner.StatusFailed, res.Status)
	require.Equal(t, 1, f.count("call"))
	require.Empty(t, s.got())
	require.Equal(t, "rate_limited", res.Error.Reason)
	require.Equal(t, "boom (retryable, rate_limited)", res.Error.Message)
}

// TestBackoffBoundedByMaxRetryAfter: the policy's own wait is cut to
// pipeline.max_retry_after (the broker would drop a run that waits
// longer), and the step is retried after it; a shorter wait is kept.
func TestBackoffBoundedByMaxRetryAfter(t *testing.T) {
	tests := []struct {
		name          string
		maxRetryAfter time.Duration
		interval      string
		waits         []time.Duration
	}{
		{"beyond the default", 0, "30h", []time.Duration{runner.DefaultMaxRetryAfter, runner.DefaultMaxRetryAfter}},
		{"beyond a set limit", time.Hour, "90m", []time.Duration{time.Hour, time.Hour}},
		{"within the limit", time.Hour, "59m", []time.Duration{59 * time.Minute, 59 * time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(func(_ context.Context, _ string, n int, _ *connector.Request) (map[string]any, error) {
				if n < 3 {
					return nil, connector.Retryable(connector.ReasonNetwork, 0, errors.New("down"))
				}
				return map[string]any{"text": "ok"}, nil
			})
			s := &sleeper{}
			r := newRunner(f, s)
			r.MaxRetryAfter = tc.maxRetryAfter
			rec := load(t, `
version: 1
name: slow
trigger: {type: test.event}
steps:
  - id: call
    action: test.echo
    retry: {max_attempts: 3, backoff: constant, initial_interval: `+tc.interval+`, max_interval: 100h}
`)
			res := r.Run(t.Context(), rec, event(nil), "run-1")
			require.Equal(t, runner.StatusSucceeded, res.Status)
			require.Equal(t, 3, f.count("call"))
			require.Equal(t, tc.waits, s.got())
			require.Equal(t, tc.waits[0], res.Step("call").Attempts[0].Delay)
		})
	}
}
