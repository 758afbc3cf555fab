package runner_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
)

const retryRecipe = `
version: 1
name: retry
trigger: {type: test.event}
steps:
  - id: call
    action: test.echo
    with: {text: hi}
    retry: {max_attempts: 4, backoff: constant, initial_interval: 2s, max_interval: 2s}
`

func TestRetry(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		answer     func(n int) (map[string]any, error)
		status     runner.Status
		attempts   int
		waits      []time.Duration
		reason     string
		minDelayed time.Duration // every wait is at least this
	}{
		{
			name: "retry until success",
			answer: func(n int) (map[string]any, error) {
				if n < 3 {
					return nil, connector.Retryable(connector.ReasonServerError, 0, boom)
				}
				return map[string]any{"text": "ok"}, nil
			},
			status: runner.StatusSucceeded, attempts: 3, waits: []time.Duration{2 * time.Second, 2 * time.Second},
		},
		{
			name: "permanent error stops at once",
			answer: func(int) (map[string]any, error) {
				return nil, connector.Permanent(connector.ReasonClientError, boom)
			},
			status: runner.StatusFailed, attempts: 1, reason: "client_error",
		},
		{
			name: "max_attempts honoured",
			answer: func(int) (map[string]any, error) {
				return nil, connector.Retryable(connector.ReasonServerError, 0, boom)
			},
			status: runner.StatusFailed, attempts: 4, reason: "server_error",
			waits: []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second},
		},
		{
			name: "an unclassified error is retried",
			answer: func(n int) (map[string]any, error) {
				if n == 1 {
					return nil, boom
				}
				return map[string]any{}, nil
			},
			status: runner.StatusSucceeded, attempts: 2, waits: []time.Duration{2 * time.Second},
		},
		{
			name: "retry-after is respected",
			answer: func(n int) (map[string]any, error) {
				if n < 3 {
					return nil, connector.Retryable(connector.ReasonRateLimited, 45*time.Second, boom)
				}
				return map[string]any{}, nil
			},
			status: runner.StatusSucceeded, attempts: 3, waits: []time.Duration{45 * time.Second, 45 * time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(func(_ context.Context, _ string, n int, _ *connector.Request) (map[string]any, error) {
				return tc.answer(n)
			})
			s := &sleeper{}
			res := newRunner(f, s).Run(t.Context(), load(t, retryRecipe), event(nil), "run-1")
			require.Equal(t, tc.status, res.Status)
			require.Equal(t, tc.attempts, f.count("call"))
			require.Equal(t, tc.waits, s.got())
			sr := res.Step("call")
			require.NotNil(t, sr)
			require.Len(t, sr.Attempts, tc.attempts)
			for i, a := range sr.Attempts {
				require.Equal(t, i+1, a.Number)
				if i < len(tc.waits) {
					require.Equal(t, tc.waits[i], a.Delay, "the record keeps the wait")
				} else {
					require.Zero(t, a.Delay, "no wait after the last attempt")
				}
			}
			if tc.status == runner.StatusFailed {
				require.Equal(t, tc.reason, sr.Reason)
				require.Equal(t, tc.reason, res.Error.Reason)
				require.Equal(t, "call", res.Error.Step)
				require.Contains(t, res.Error.Message, "boom")
			}
		})
	}
}

func TestIdempotencyKeyStableAcrossAttempts(t *testing.T) {
	rec := load(t, `
version: 1
name: idem
trigger: {type: test.event}
steps:
  - id: one
    action: test.echo
    retry: {max_attempts: 3}
  - id: two
    action: test.echo
`)
	f := newFake(func(ctx context.Context, step string, n int, req *connector.Request) (map[string]any, error) {
		if step == "one" && n < 3 {
			return nil, connector.Retryable(connector.ReasonNetwork, 0, errors.New("reset"))
		}
		return echo(ctx, req)
	})
	res := newRunner(f, &sleeper{}).Run(t.Context(), rec, event(nil), "run-42")
	require.Equal(t, runner.StatusSucceeded, res.Status)
	one := f.callsOf("one")
	require.Len(t, one, 3)
	require.NotEmpty(t, one[0].Key)
	for i, c := range one {
		require.Equal(t, one[0].Key, c.Key)
		require.Equal(t, i+1, c.Attempt, "each attempt knows its number")
	}
	two := f.callsOf("two")
	require.Len(t, two, 1)
	require.NotEqual(t, one[0].Key, two[0].Key, "each step has its own key")

	// each request carries the run so far: the event, and the earlier
	// steps' outputs
	run := two[0].Run
	require.Equal(t, "run-42", run["run"].(map[string]any)["id"])
	require.Equal(t, "idem", run["run"].(map[string]any)["recipe"])
	require.NotNil(t, run["event"])
	require.Equal(t, "succeeded", run["steps"].(map[string]any)["one"].(map[string]any)["status"])
	require.Empty(t, one[0].Run["steps"], "the first step has no earlier step")

	// the same run and step give the same key when run again (a replay)
	f2 := newFake(nil)
	newRunner(f2, &sleeper{}).Run(t.Context(), rec, event(nil), "run-42")
	require.Equal(t, one[0].Key, f2.callsOf("one")[0].Key)
}

func TestBackoff(t *testing.T) {
	exp := recipes.Retry{MaxAttempts: 10, Backoff: recipes.BackoffExponential, InitialInterval: time.Second, MaxInterval: 10 * time.Second}
	tests := []struct {
		name       string
		policy     recipes.Retry
		n          int
		retryAfter time.Duration
		min, max   time.Duration
	}{
		{"exponential 1", exp, 1, 0, 500 * time.Millisecond, time.Second},
		{"exponential 2", exp, 2, 0, time.Second, 2 * time.Second},
		{"exponential 3", exp, 3, 0, 2 * time.Second, 4 * time.Second},
		{"exponential 4", exp, 4, 0, 4 * time.Second, 8 * time.Second},
		{"exponential capped", exp, 5, 0, 5 * time.Second, 10 * time.Second},
		{"exponential far capped", exp, 80, 0, 5 * time.Second, 10 * time.Second},
		{"empty backoff is exponential", recipes.Retry{InitialInterval: time.Second, MaxInterval: time.Minute}, 3, 0, 2 * time.Second, 4 * time.Second},
		{"exponential without a cap saturates", recipes.Retry{Backoff: recipes.BackoffExponential, InitialInterval: 3 * time.Second}, 40, 0,
			math.MaxInt64 / 2, math.MaxInt64},
		{"exponential with a long initial does not overflow", recipes.Retry{Backoff: recipes.BackoffExponential, InitialInterval: time.Hour, MaxInterval: 2 * time.Hour}, 100, 0,
			time.Hour, 2 * time.Hour},
		{"constant", recipes.Retry{Backoff: recipes.BackoffConstant, InitialInterval: 3 * time.Second, MaxInterval: time.Minute}, 7, 0, 3 * time.Second, 3 * time.Second},
		{"linear 1", recipes.Retry{Backoff: recipes.BackoffLinear, InitialInterval: 2 * time.Second, MaxInterval: time.Minute}, 1, 0, 2 * time.Second, 2 * time.Second},
		{"linear 4", recipes.Retry{Backoff: recipes.BackoffLinear, InitialInterval: 2 * time.Second, MaxInterval: time.Minute}, 4, 0, 8 * time.Second, 8 * time.Second},
		{"linear capped", recipes.Retry{Backoff: recipes.BackoffLinear, InitialInterval: 2 * time.Second, MaxInterval: 5 * time.Second}, 4, 0, 5 * time.Second, 5 * time.Second},
		{"retry-after beyond the backoff", exp, 1, 30 * time.Second, 30 * time.Second, 30 * time.Second},
		{"retry-after beyond the cap", recipes.Retry{Backoff: recipes.BackoffConstant, InitialInterval: time.Second, MaxInterval: time.Second}, 1, time.Minute, time.Minute, time.Minute},
		{"retry-after shorter than the backoff", recipes.Retry{Backoff: recipes.BackoffConstant, InitialInterval: 5 * time.Second, MaxInterval: time.Minute}, 1, time.Second, 5 * time.Second, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := runner.Backoff(tc.policy, tc.n, tc.retryAfter)
				require.GreaterOrEqual(t, d, tc.min)
				require.LessOrEqual(t, d, tc.max)
				require.GreaterOrEqual(t, d, tc.retryAfter)
				seen[d] = true
			}
			if tc.min != tc.max && tc.retryAfter == 0 {
				require.Greater(t, len(seen), 1, "exponential backoff has jitter")
			}
		})
	}
}

func TestStepTimeout(t *testing.T) {
	rec := load(t, `
version: 1
name: slow
trigger: {type: test.event}
steps:
  - id: slow
    action: test.echo
    timeout: 30ms
    retry: {max_attempts: 2, backoff: constant, initial_interval: 1s, max_interval: 1s}
`)
	f := newFake(func(ctx context.Context, _ string, _ int, _ *connector.Request) (map[string]any, error) {
		<-ctx.Done() // blocks until the step's deadline
		return nil, ctx.Err()
	})
	s := &sleeper{}
	res := newRunner(f, s).Run(t.Context(), rec, event(nil), "run-1")
	require.Equal(t, runner.StatusFailed, res.Status)
	sr := res.Step("slow")
	require.Equal(t, "timeout", sr.Reason)
	require.Contains(t, sr.Error, "timed out after 30ms")
	require.Len(t, sr.Attempts, 2, "a timeout is retryable")
	require.True(t, sr.Attempts[0].Retryable)
	require.Equal(t, "timeout", res.Error.Reason)
}

func TestActionOwnTimeoutKeepsItsMessage(t *testing.T) {
	rec := load(t, `
version: 1
name: own
trigger: {type: test.event}
steps:
  - id: call
    action: test.echo
    retry: {max_attempts: 1}
`)
	f := newFake(func(context.Context, string, int, *connector.Request) (map[string]any, error) {
		// an action whose own, shorter deadline expired
		return nil, fmt.Errorf("inner call: %w", context.DeadlineExceeded)
	})
	res := newRunner(f, &sleeper{}).Run(t.Context(), rec, event(nil), "run-1")
	sr := res.Step("call")
	require.Equal(t, "timeout", sr.Reason)
	require.Contains(t, sr.Error, "inner call")
	require.NotContains(t, sr.Error, "timed out after", "the step's own timeout did not expire")
}

// A step built without a timeout (not through the loader) must still run.
func TestZeroTimeoutUsesDefault(t *testing.T) {
	rec := &recipes.Recipe{Name: "manual", Trigger: recipes.Trigger{Type: "test.event", Spec: testEvent},
		Steps: []*recipes.Step{{ID: "a", Action: "test.echo", Spec: testEcho, Retry: recipes.Retry{MaxAttempts: 1}}}}
	f := newFake(func(ctx context.Context, _ string, _ int, req *connector.Request) (map[string]any, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return echo(ctx, req)
	})
	res := newRunner(f, &sleeper{}).Run(t.Context(), rec, event(nil), "run-1")
	require.Equal(t, runner.StatusSucceeded, res.Status, "%+v", res.Error)
}

func TestCanceledWhileWaiting(t *testing.T) {
	f := newFake(func(context.Context, string, int, *connector.Request) (map[string]any, error) {
		return nil, connector.Retryable(connector.ReasonServerError, 0, errors.New("down"))
	})
	s := &sleeper{result: context.Canceled}
	res := newRunner(f, s).Run(t.Context(), load(t, retryRecipe), event(nil), "run-1")
	require.Equal(t, runner.StatusFailed, res.Status)
	require.Equal(t, 1, f.count("call"))
	require.Equal(t, "timeout", res.Step("call").Reason)
	require.Contains(t, res.Step("call").Error, "canceled while waiting to retry")
}

func TestStepFlow(t *testing.T) {
	fail := func(step string) func(context.Context, string, int, *connector.Request) (map[string]any, error) {
		return func(ctx context.Context, s string, _ int, req *connector.Request) (map[string]any, error) {
			if s == step {
				return map[string]any{"text": "partial"}, connector.Permanent(connector.ReasonClientError, errors.New("bad request from "+s))
			}
			return echo(ctx, req)
		}
	}
	tests := []struct {
		name    string
		src     string
		payload map[string]any
		answer  func(context.Context, string, int, *connector.Request) (map[string]any, error)
		status  runner.Status
		steps   map[string]runner.Status // expected status of each step present
		absent  []string                 // steps that must not have run
		inputs  map[string]string        // expected rendered text per step
		reason  string                   // the run's error reason
		vars    map[string]any
		// ctx, when set, is the run's context (else the test's)
		ctx func(t *testing.T) context.Context
	}{
		{
			name: "if false skips",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    if: event.go == true
  - id: b
    action: test.echo
    with: {text: "{{ steps.a.status }}"}
`,
			payload: map[string]any{"go": false},
			status:  runner.StatusSucceeded,
			steps:   map[string]runner.Status{"a": runner.StatusSkipped, "b": runner.StatusSucceeded},
			inputs:  map[string]string{"b": "skipped"},
		},
		{
			name: "if true runs",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    if: event.go == true
`,
			payload: map[string]any{"go": true},
			status:  runner.StatusSucceeded,
			steps:   map[string]runner.Status{"a": runner.StatusSucceeded},
		},
		{
			name: "a skipped step's output has typed zero values",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    if: "false"
  - id: b
    action: test.echo
    with: {text: "{{ steps.a.output.n + 1 }}/{{ steps.a.output.text }}."}
`,
			status: runner.StatusSucceeded,
			steps:  map[string]runner.Status{"a": runner.StatusSkipped, "b": runner.StatusSucceeded},
			inputs: map[string]string{"b": "1/."},
		},
		{
			name: "continue_on_error keeps the run succeeded",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    continue_on_error: true
  - id: b
    action: test.echo
    if: steps.a.status == "failed"
    with: {text: "after {{ steps.a.output.text }}"}
`,
			answer: fail("a"),
			status: runner.StatusSucceeded,
			steps:  map[string]runner.Status{"a": runner.StatusFailed, "b": runner.StatusSucceeded},
			inputs: map[string]string{"b": "after partial"},
		},
		{
			name: "a failure stops the run",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
  - id: b
    action: test.echo
`,
			answer: fail("a"),
			status: runner.StatusFailed,
			steps:  map[string]runner.Status{"a": runner.StatusFailed},
			absent: []string{"b"},
			reason: "client_error",
		},
		{
			name: "on_error runs when the run failed, with error in scope",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
  - id: b
    action: test.echo
on_error:
  - id: alert
    action: test.echo
    with: {text: "{{ run.recipe }} failed at {{ error.step }}: {{ error.message }}"}
`,
			answer: fail("b"),
			status: runner.StatusFailed,
			steps:  map[string]runner.Status{"a": runner.StatusSucceeded, "b": runner.StatusFailed, "alert": runner.StatusSucceeded},
			inputs: map[string]string{"alert": "flow failed at b: bad request from b (permanent, client_error)"},
			reason: "client_error",
		},
		{
			name: "on_error does not run when the run succeeded",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
on_error:
  - id: alert
    action: test.echo
    with: {text: "{{ error.message }}"}
`,
			status: runner.StatusSucceeded,
			steps:  map[string]runner.Status{"a": runner.StatusSucceeded},
			absent: []string{"alert"},
		},
		{
			name: "on_error does not run after a continued failure",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    continue_on_error: true
on_error:
  - id: alert
    action: test.echo
`,
			answer: fail("a"),
			status: runner.StatusSucceeded,
			steps:  map[string]runner.Status{"a": runner.StatusFailed},
			absent: []string{"alert"},
		},
		{
			name: "filter false ends the run as filtered",
			src: `
version: 1
name: flow
trigger: {type: test.event}
filter: event.n > 5
steps:
  - id: a
    action: test.echo
`,
			payload: map[string]any{"n": 3},
			status:  runner.StatusFiltered,
			absent:  []string{"a"},
		},
		{
			name: "filter true runs",
			src: `
version: 1
name: flow
trigger: {type: test.event}
filter: event.n > 5
steps:
  - id: a
    action: test.echo
`,
			payload: map[string]any{"n": 7},
			status:  runner.StatusSucceeded,
			steps:   map[string]runner.Status{"a": runner.StatusSucceeded},
		},
		{
			name: "filter error fails the run",
			src: `
version: 1
name: flow
trigger: {type: test.event}
filter: event.n > 5
steps:
  - id: a
    action: test.echo
`,
			payload: map[string]any{"n": "not a number"},
			status:  runner.StatusFailed,
			absent:  []string{"a"},
			reason:  "filter_error",
		},
		{
			name: "vars are evaluated in order",
			src: `
version: 1
name: flow
trigger: {type: test.event}
vars:
  first: "{{ event.name }}"
  second: "{{ vars.first }}-2"
  third: "{{ vars.second }}-3"
  count: "{{ len(vars.third) }}"
steps:
  - id: a
    action: test.echo
    with: {text: "{{ vars.third }}", n: "{{ vars.count }}"}
`,
			payload: map[string]any{"name": "x"},
			status:  runner.StatusSucceeded,
			steps:   map[string]runner.Status{"a": runner.StatusSucceeded},
			inputs:  map[string]string{"a": "x-2-3"},
			vars:    map[string]any{"first": "x", "second": "x-2", "third": "x-2-3", "count": 5},
		},
		{
			name: "a failing var fails the run",
			src: `
version: 1
name: flow
trigger: {type: test.event}
vars:
  n: "{{ int(event.s) }}"
steps:
  - id: a
    action: test.echo
`,
			payload: map[string]any{"s": "abc"},
			status:  runner.StatusFailed,
			absent:  []string{"a"},
			reason:  "template_error",
		},
		{
			name: "outputs are visible to later steps",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    with: {text: hello, n: 2}
  - id: b
    action: test.echo
    with: {text: "{{ steps.a.output.text }} world", n: "{{ steps.a.output.n * 10 }}"}
`,
			status: runner.StatusSucceeded,
			steps:  map[string]runner.Status{"a": runner.StatusSucceeded, "b": runner.StatusSucceeded},
			inputs: map[string]string{"a": "hello", "b": "hello world"},
		},
		{
			name: "trigger and run are in scope",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    with: {text: "{{ trigger.id }} {{ trigger.type }} {{ trigger.received_at }} {{ run.id }} {{ run.recipe }}"}
`,
			status: runner.StatusSucceeded,
			steps:  map[string]runner.Status{"a": runner.StatusSucceeded},
			inputs: map[string]string{"a": "ev-1 test.event 2026-01-02T03:04:05Z run-1 flow"},
		},
		{
			// the run's time is up (pipeline.run_timeout leaves its
			// context past its deadline): on_error gets a context of its own
			name: "on_error runs after the run's deadline",
			src: `
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
`,
			answer: failWhenDone,
			ctx:    pastDeadline,
			status: runner.StatusFailed,
			steps:  map[string]runner.Status{"a": runner.StatusFailed, "alert": runner.StatusSucceeded},
			inputs: map[string]string{"alert": "a failed"},
			reason: "timeout",
		},
		{
			name: "on_error gets no time of its own after shutdown (a canceled context)",
			src: `
version: 1
name: flow
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
on_error:
  - id: alert
    action: test.echo
`,
			answer: failWhenDone,
			ctx:    canceled,
			status: runner.StatusFailed,
			steps:  map[string]runner.Status{"a": runner.StatusFailed, "alert": runner.StatusFailed},
			reason: "timeout",
		},
		{
			name: "a var over the expression budget fails the run with its reason",
			src: `
version: 1
name: flow
trigger: {type: test.event}
vars:
  big: "{{ len(repeat(repeat('a', 999999), int(event.n))) }}"
steps:
  - id: a
    action: test.echo
`,
			payload: map[string]any{"n": 999999},
			status:  runner.StatusFailed,
			absent:  []string{"a"},
			reason:  runner.ReasonExprBudget,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.answer)
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			res := newRunner(f, &sleeper{}).Run(ctx, load(t, tc.src), event(tc.payload), "run-1")
			require.Equal(t, tc.status, res.Status, "run error: %+v", res.Error)
			require.Len(t, res.Steps, len(tc.steps))
			for id, want := range tc.steps {
				sr := res.Step(id)
				require.NotNil(t, sr, "step %s", id)
				require.Equal(t, want, sr.Status, "step %s", id)
			}
			for _, id := range tc.absent {
				require.Nil(t, res.Step(id), "step %s ran", id)
				require.Zero(t, f.count(id), "step %s was invoked", id)
			}
			for id, want := range tc.inputs {
				calls := f.callsOf(id)
				require.NotEmpty(t, calls, "step %s was not invoked", id)
				require.Equal(t, want, calls[0].With.String("text"), "step %s", id)
				require.Equal(t, want, res.Step(id).Input["text"], "step %s records its input", id)
			}
			if tc.reason != "" {
				require.NotNil(t, res.Error)
				require.Equal(t, tc.reason, res.Error.Reason)
				require.NotEmpty(t, res.Error.Message)
			} else if tc.status != runner.StatusFailed {
				require.Nil(t, res.Error)
			}
			if tc.vars != nil {
				require.Equal(t, tc.vars, res.Vars)
			}
		})
	}
}

func TestOnErrorStepFlag(t *testing.T) {
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
`)
	f := newFake(func(ctx context.Context, step string, _ int, req *connector.Request) (map[string]any, error) {
		if step == "a" {
			return nil, connector.Permanent(connector.ReasonAuth, errors.New("denied"))
		}
		return echo(ctx, req)
	})
	var seen []string
	r := newRunner(f, &sleeper{})
	r.OnStep = func(sr *runner.StepResult) { seen = append(seen, sr.ID+":"+string(sr.Status)) }
	res := r.Run(t.Context(), rec, event(nil), "run-1")
	require.False(t, res.Step("a").OnError)
	require.True(t, res.Step("alert").OnError)
	require.Equal(t, "a", res.Error.Step, "the run's error stays the failed step's")
	require.Equal(t, []string{"a:failed", "alert:succeeded"}, seen)
}

func TestPanickingActionIsPermanentFailure(t *testing.T) {
	rec := load(t, `
version: 1
name: panics
trigger: {type: test.event}
steps:
  - id: boom
    action: test.echo
    retry: {max_attempts: 5}
  - id: after
    action: test.echo
`)
	f := newFake(func(_ context.Context, step string, _ int, _ *connector.Request) (map[string]any, error) {
		panic(fmt.Sprintf("action for %s exploded", step))
	})
	s := &sleeper{}
	var res *runner.Result
	require.NotPanics(t, func() { res = newRunner(f, s).Run(t.Context(), rec, event(nil), "run-1") })
	require.Equal(t, runner.StatusFailed, res.Status)
	sr := res.Step("boom")
	require.Equal(t, runner.StatusFailed, sr.Status)
	require.Equal(t, "panic", sr.Reason)
	require.Contains(t, sr.Error, "panicked")
	require.Len(t, sr.Attempts, 1, "a panic is not retried")
	require.False(t, sr.Attempts[0].Retryable)
	require.Empty(t, s.got())
	require.Nil(t, res.Step("after"))
}

func TestConnectionResolution(t *testing.T) {
	rec := load(t, `
version: 1
name: conn
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    connection: main
`)
	t.Run("resolved and passed to the action", func(t *testing.T) {
		var got *connector.Connection
		f := newFake(func(ctx context.Context, _ string, _ int, req *connector.Request) (map[string]any, error) {
			got = req.Connection
			return echo(ctx, req)
		})
		res := newRunner(f, &sleeper{}).Run(t.Context(), rec, event(nil), "run-1")
		require.Equal(t, runner.StatusSucceeded, res.Status)
		require.NotNil(t, got)
		require.Equal(t, "main", got.Name)
	})
	t.Run("unknown connection fails the step", func(t *testing.T) {
		f := newFake(nil)
		r := newRunner(f, &sleeper{})
		r.Connection = func(name string) (*connector.Connection, error) { return nil, fmt.Errorf("no connection %q", name) }
		res := r.Run(t.Context(), rec, event(nil), "run-1")
		require.Equal(t, runner.StatusFailed, res.Status)
		require.Equal(t, "config_error", res.Step("a").Reason)
		require.Zero(t, f.count("a"))
	})
	t.Run("no resolver fails the step", func(t *testing.T) {
		f := newFake(nil)
		r := newRunner(f, &sleeper{})
		r.Connection = nil
		res := r.Run(t.Context(), rec, event(nil), "run-1")
		require.Equal(t, "config_error", res.Step("a").Reason)
	})
}

// Without Invoke the runner calls the spec's action.
func TestRunCallsTheAction(t *testing.T) {
	rec := load(t, `
version: 1
name: real
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    with: {text: "{{ event.t }}", n: 3}
`)
	r := &runner.Runner{}
	res := r.Run(t.Context(), rec, event(map[string]any{"t": "hey"}), "run-1")
	require.Equal(t, runner.StatusSucceeded, res.Status)
	require.Equal(t, map[string]any{"text": "hey", "n": int64(3)}, res.Step("a").Output)
}

// failWhenDone answers a call as test.echo does, but fails one whose
// context is done, as a real call cut short would.
func failWhenDone(ctx context.Context, _ string, _ int, req *connector.Request) (map[string]any, error) {
	if ctx.Err() != nil {
		return nil, connector.Retryable(connector.ReasonTimeout, 0, errors.New("the call was cut short"))
	}
	return echo(ctx, req)
}

func pastDeadline(t *testing.T) context.Context {
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	t.Cleanup(cancel)
	return ctx
}

func canceled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
