// Package runner executes one run of a recipe: the filter, vars, steps in
// order with `if`, templates, per-step timeouts and retries by error kind,
// continue_on_error and on_error steps. Every attempt is recorded with its
// rendered input (secrets redacted), output, error, reason and duration.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// Status is the outcome of a run or a step.
type Status string

// Run and step statuses.
const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusFiltered  Status = "filtered"
	StatusDead      Status = "dead"
	StatusSkipped   Status = "skipped" // a step whose `if` was false
	// StatusPending is a run paused until its next retry (a durable
	// retry): Result.State says where to resume and Result.RetryAt when.
	StatusPending Status = "pending"
)

// State is where an unfinished run stands: enough to resume it in another
// process. In memory, Outputs holds the steps' real outputs (later steps
// need them); what is stored is RedactState's copy, with the secrets
// redacted, and a State is never shown.
type State struct {
	Next     int                       `json:"next"` // index in the recipe's steps of the step to run next
	Steps    []*StepResult             `json:"steps,omitempty"`
	Outputs  map[string]map[string]any `json:"outputs,omitempty"`
	Attempts []Attempt                 `json:"attempts,omitempty"` // attempts already made of step Next
	Started  time.Time                 `json:"started"`
	RetryAt  time.Time                 `json:"retry_at,omitempty"`
}

// Event is what a trigger delivered.
type Event struct {
	ID         string
	Type       string
	ReceivedAt time.Time
	Payload    map[string]any
}

// Attempt is one call of an action.
type Attempt struct {
	Number    int            `json:"number"`
	Started   time.Time      `json:"started"`
	Duration  time.Duration  `json:"duration"`
	Output    map[string]any `json:"output,omitempty"`
	Error     string         `json:"error,omitempty"`
	Reason    string         `json:"reason,omitempty"`
	Retryable bool           `json:"retryable,omitempty"`
	// Delay is the wait before the next attempt, when there is one.
	Delay time.Duration `json:"delay,omitempty"`
}

// StepResult is what happened to one step.
type StepResult struct {
	ID      string `json:"id"`
	Action  string `json:"action"`
	OnError bool   `json:"on_error,omitempty"`
	Status  Status `json:"status"`
	// Connection is the step's connection (recipes.Step.Connection), if any.
	Connection string `json:"connection,omitempty"`
	// Input is the rendered `with` as written (not coerced), secrets redacted.
	Input    map[string]any `json:"input,omitempty"`
	Output   map[string]any `json:"output,omitempty"`
	Error    string         `json:"error,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Attempts []Attempt      `json:"attempts,omitempty"`

	real    map[string]any // the unredacted output, for later steps
	retryAt time.Time      // when a pending step is due
}

// RunError says where and why a run failed.
type RunError struct {
	Step    string `json:"step"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

// Result is the record of one run.
type Result struct {
	RunID    string         `json:"run_id"`
	Recipe   string         `json:"recipe"`
	Status   Status         `json:"status"`
	Vars     map[string]any `json:"vars,omitempty"`
	Steps    []*StepResult  `json:"steps"`
	Error    *RunError      `json:"error,omitempty"`
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration"`
	// RetryAt and State are set when Status is pending.
	RetryAt time.Time `json:"retry_at,omitempty"`
	State   *State    `json:"-"`
}

// Step returns the result of a step by id.
func (r *Result) Step(id string) *StepResult {
	for _, s := range r.Steps {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Invoke calls the action of a step. The default calls the connector.
type Invoke func(ctx context.Context, step *recipes.Step, req *connector.Request) (map[string]any, error)

// Runner executes runs. The zero value calls real connectors with no
// connections and no secrets.
type Runner struct {
	// Invoke replaces the connector call (mocks, dry runs).
	Invoke Invoke
	// Connection resolves a connection name.
	Connection func(name string) (*connector.Connection, error)
	// Secrets are exposed as secrets.NAME and redacted from every record.
	Secrets map[string]string
	// Redact lists more values to redact (connection secrets).
	Redact []string
	// Sleep waits between attempts; nil uses a timer.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
	// OnStep, when set, is called after each step finishes.
	OnStep func(*StepResult)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxInlineDelay, when positive, bounds how long the runner sleeps
	// before a retry: a longer wait pauses the run (status pending) so that
	// the caller can store it and resume it on time, surviving restarts.
	MaxInlineDelay time.Duration
	// Checkpoint, when set, is called after each step that leaves more to
	// do, so that a crash resumes after the last finished step.
	Checkpoint func(*State) error
	// MaxRetryAfter bounds the Retry-After the runner honours: a retryable
	// failure whose service asks for a longer wait fails the step at once,
	// with the error's reason, instead of waiting (a retry sooner than asked
	// would only be refused again). Zero or less means DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration

	secretsOnce sync.Once
	secrets     map[string]any
}

// Redacted replaces secret values.
const Redacted = "[redacted]"

// DefaultMaxRetryAfter is the longest Retry-After a runner honours unless
// told otherwise (Runner.MaxRetryAfter, pipeline.max_retry_after in
// sous.yaml): a service asking for more fails the step rather than
// holding the run, and its broker message, for days.
const DefaultMaxRetryAfter = 24 * time.Hour

func (r *Runner) maxRetryAfter() time.Duration {
	if r.MaxRetryAfter > 0 {
		return r.MaxRetryAfter
	}
	return DefaultMaxRetryAfter
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Run executes a recipe for one event.
func (r *Runner) Run(ctx context.Context, rec *recipes.Recipe, ev Event, runID string) *Result {
	return r.Resume(ctx, rec, ev, runID, nil)
}

// Resume continues a run from a State (nil starts it): the filter is not
// evaluated again, vars are, and the steps before st.Next keep their
// recorded results and outputs.
func (r *Runner) Resume(ctx context.Context, rec *recipes.Recipe, ev Event, runID string, st *State) *Result {
	start := r.now()
	if st != nil && !st.Started.IsZero() {
		start = st.Started
	}
	res := &Result{RunID: runID, Recipe: rec.Name, Started: start, Vars: map[string]any{}}
	red := newRedactor(r.Secrets, r.Redact)
	log := slog.New(red.handler(r.logger().Handler())).With("recipe", rec.Name, "run", runID)
	defer func() {
		// every way out, early ones included, records redacted vars
		res.Vars = red.map_(res.Vars)
		res.Duration = r.now().Sub(start)
	}()

	env := r.Env(rec, ev, runID)
	env["vars"] = res.Vars
	stepsEnv := env["steps"].(map[string]any)
	outputs := map[string]map[string]any{}
	if st == nil && rec.Filter != nil {
		ok, err := rec.Filter.Bool(env)
		if err != nil {
			res.Status = StatusFailed
			res.Error = &RunError{Message: red.str("filter: " + err.Error()), Reason: exprReason(err, "filter_error")}
			return res
		}
		if !ok {
			res.Status = StatusFiltered
			return res
		}
	}
	for _, v := range rec.Vars {
		val, err := v.Value.Render(env)
		if err != nil {
			res.Status = StatusFailed
			res.Error = &RunError{Message: red.str(fmt.Sprintf("vars.%s: %v", v.Name, err)), Reason: exprReason(err, "template_error")}
			return res
		}
		res.Vars[v.Name] = val
	}
	first := 0
	var prior []Attempt
	if st != nil {
		first, prior = st.Next, st.Attempts
		res.Steps = append(res.Steps, st.Steps...)
		for _, sr := range st.Steps {
			if step := rec.Step(sr.ID); step != nil {
				sr.real = st.Outputs[sr.ID]
				outputs[sr.ID] = sr.real
				stepsEnv[sr.ID] = stepEnv(step, sr)
			}
		}
	}
	res.Status = StatusSucceeded
	for i := first; i < len(rec.Steps); i++ {
		step := rec.Steps[i]
		sr := r.runStep(ctx, rec, step, env, runID, red, log, prior, true)
		prior = nil
		if sr.Status == StatusPending {
			res.Status = StatusPending
			res.RetryAt = sr.retryAt
			res.State = &State{Next: i, Steps: append([]*StepResult(nil), res.Steps...), Outputs: outputs,
				Attempts: sr.Attempts, Started: start, RetryAt: sr.retryAt}
			return res
		}
		res.Steps = append(res.Steps, sr)
		stepsEnv[step.ID] = stepEnv(step, sr)
		outputs[step.ID] = sr.real
		if sr.Status == StatusFailed && !step.ContinueOnError {
			res.Status = StatusFailed
			res.Error = &RunError{Step: step.ID, Message: sr.Error, Reason: sr.Reason}
			break
		}
		if r.Checkpoint != nil && i+1 < len(rec.Steps) {
			if err := r.Checkpoint(&State{Next: i + 1, Steps: append([]*StepResult(nil), res.Steps...), Outputs: outputs, Started: start}); err != nil {
				log.Warn("checkpoint not stored: a crash now would run this step again", "step", step.ID, "error", err)
			}
		}
	}
	if res.Status == StatusFailed && len(rec.OnError) > 0 {
		env["error"] = map[string]any{"step": res.Error.Step, "message": res.Error.Message}
		octx := ctx
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// the run's time is up (pipeline.run_timeout): what it is
			// there for, telling someone, gets a grace of its own
			var cancel context.CancelFunc
			octx, cancel = context.WithTimeout(context.WithoutCancel(ctx), OnErrorGrace)
			defer cancel()
		}
		for _, step := range rec.OnError {
			sr := r.runStep(octx, rec, step, env, runID, red, log, nil, false)
			sr.OnError = true
			res.Steps = append(res.Steps, sr)
			stepsEnv[step.ID] = stepEnv(step, sr)
		}
	}
	return res
}

// runSoFar is what a step's request carries of the run (Request.Run): the
// environment its templates saw, the steps as they stand now (a copy: the
// run's own map grows with the steps after it).
func runSoFar(env map[string]any) map[string]any {
	steps, _ := env["steps"].(map[string]any)
	return map[string]any{"run": env["run"], "event": env["event"], "trigger": env["trigger"], "vars": env["vars"], "steps": maps.Clone(steps)}
}

// stepEnv is what later steps see of a step: its real (unredacted) output,
// conformed to the action's shape whatever the step's status, so that an
// expression on a skipped or failed step meets typed zero values.
func stepEnv(step *recipes.Step, sr *StepResult) map[string]any {
	return map[string]any{"output": conform(step.Spec.Shape, sr.real), "status": string(sr.Status)}
}

// runStep runs one step; prior are the attempts a paused run already made
// of it. With mayPause, a retry wait longer than MaxInlineDelay returns
// the step as pending instead of sleeping.
func (r *Runner) runStep(ctx context.Context, rec *recipes.Recipe, step *recipes.Step, env map[string]any, runID string, red *redactor, log *slog.Logger, prior []Attempt, mayPause bool) (sr *StepResult) {
	sr = &StepResult{ID: step.ID, Action: step.Action, Connection: step.Connection, Attempts: append([]Attempt(nil), prior...)}
	defer func() {
		if r.OnStep != nil && sr.Status != StatusPending {
			r.OnStep(sr)
		}
	}()
	fail := func(reason string, err error) *StepResult {
		sr.Status, sr.Reason, sr.Error = StatusFailed, reason, red.str(err.Error())
		return sr
	}
	if step.If != nil {
		ok, err := step.If.Bool(env)
		if err != nil {
			return fail(exprReason(err, "if_error"), err)
		}
		if !ok {
			sr.Status = StatusSkipped
			return sr
		}
	}
	raw, err := step.RenderRaw(env)
	if err != nil {
		return fail(exprReason(err, "template_error"), err)
	}
	sr.Input = red.input(step.Spec, raw)
	with, err := step.Render(env)
	if err != nil {
		return fail("invalid_input", err)
	}
	req := &connector.Request{
		Recipe: rec.Name, RunID: runID, Step: step.ID, With: with,
		IdempotencyKey: runID + ":" + step.ID,
		Run:            runSoFar(env),
		Logger:         log.With("step", step.ID),
	}
	if step.Connection != "" {
		if r.Connection == nil {
			return fail("config_error", fmt.Errorf("connection %q: no config loaded", step.Connection))
		}
		conn, err := r.Connection(step.Connection)
		if err != nil {
			return fail("config_error", err)
		}
		req.Connection = conn
	}
	policy := step.Retry
	timeout := step.Timeout
	if timeout <= 0 {
		// a zero timeout would expire every attempt before it starts
		timeout = recipes.DefaultTimeout
	}
	for n := len(prior) + 1; ; n++ {
		att := Attempt{Number: n, Started: r.now()}
		req.Attempt = n
		actx, cancel := context.WithTimeout(ctx, timeout)
		out, err := r.invoke(actx, step, req)
		stepTimedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		att.Duration = r.now().Sub(att.Started)
		att.Output = red.map_(out)
		// later steps see the real output; the record keeps the redacted one
		sr.real = conform(step.Spec.Shape, out)
		if err == nil {
			sr.Attempts = append(sr.Attempts, att)
			sr.Status, sr.Output = StatusSucceeded, nilMap(att.Output)
			return sr
		}
		ce := connector.Classify(err)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			switch {
			case stepTimedOut: // the step's own timeout, not one inside the action
				ce = &connector.Error{Reason: connector.ReasonTimeout, Retryable: true, Err: fmt.Errorf("timed out after %s: %w", timeout, err)}
			case ce.Reason == "unknown":
				ce = &connector.Error{Reason: connector.ReasonTimeout, Retryable: true, Err: err}
			}
		}
		att.Error, att.Reason, att.Retryable = red.str(ce.Error()), string(ce.Reason), ce.Retryable
		last := !ce.Retryable || n >= policy.MaxAttempts || ctx.Err() != nil
		if limit := r.maxRetryAfter(); !last && ce.RetryAfter > limit {
			// a wait of days would outlive the broker's hold on the run
			// (NATS drops a message older than its stream's MaxAge), and a
			// retry sooner than asked would only be refused again: fail now,
			// visibly, with the error's own reason
			last = true
			att.Error += fmt.Sprintf(": the service asked to retry after %s, beyond pipeline.max_retry_after (%s)",
				shownDelay(ce.RetryAfter, limit), limit)
		}
		if !last {
			// the policy's own wait is bounded like a Retry-After (100
			// attempts of doubling outlive any broker), but it is ours to
			// shorten: wait the limit and try again
			att.Delay = min(Backoff(policy, n, ce.RetryAfter), r.maxRetryAfter())
		}
		sr.Attempts = append(sr.Attempts, att)
		log.Warn("step attempt failed", "step", step.ID, "attempt", n, "reason", ce.Reason, "retryable", ce.Retryable, "error", att.Error)
		if last {
			sr.Output = att.Output
			return fail(string(ce.Reason), errors.New(att.Error))
		}
		if mayPause && r.MaxInlineDelay > 0 && att.Delay > r.MaxInlineDelay {
			sr.Status, sr.retryAt = StatusPending, r.now().Add(att.Delay)
			return sr
		}
		if err := r.sleep(ctx, att.Delay); err != nil {
			return fail(string(connector.ReasonTimeout), fmt.Errorf("canceled while waiting to retry: %w", err))
		}
	}
}

// shownDelay is a Retry-After d beyond limit as shown in an error: to the
// second (an HTTP date leaves nanoseconds), unless that would hide that it
// is beyond limit.
func shownDelay(d, limit time.Duration) time.Duration {
	if r := d.Round(time.Second); r > limit {
		return r
	}
	return d
}

func (r *Runner) invoke(ctx context.Context, step *recipes.Step, req *connector.Request) (out map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = connector.Permanent("panic", fmt.Errorf("action %s panicked: %v", step.Action, p))
		}
	}()
	// the connection's metrics count its calls per action
	ctx = connector.WithCaller(ctx, step.Action)
	if r.Invoke != nil {
		return r.Invoke(ctx, step, req)
	}
	return step.Spec.Action.Run(ctx, req)
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	return SleepContext(ctx, d)
}

// SleepContext waits for d, or until ctx ends (then it returns ctx's
// error).
func SleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff is the wait after failed attempt n (1-based): exponential with
// equal jitter, constant or linear, capped at the policy's max interval,
// and never shorter than the service's Retry-After.
func Backoff(p recipes.Retry, n int, retryAfter time.Duration) time.Duration {
	base := p.InitialInterval
	switch p.Backoff {
	case recipes.BackoffConstant:
	case recipes.BackoffLinear:
		base = p.InitialInterval * time.Duration(max(n, 1))
	default:
		// double n-1 times, saturating rather than overflowing
		for i := 1; i < n && base > 0 && (p.MaxInterval <= 0 || base < p.MaxInterval); i++ {
			if base > math.MaxInt64/2 {
				base = math.MaxInt64
				break
			}
			base *= 2
		}
	}
	if p.MaxInterval > 0 && base > p.MaxInterval {
		base = p.MaxInterval
	}
	d := base
	if p.Backoff == recipes.BackoffExponential || p.Backoff == "" {
		half := base / 2
		d = half + rand.N(half+1)
	}
	if retryAfter > d {
		d = retryAfter
	}
	return d
}

func nilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func secretsEnv(s map[string]string) map[string]any {
	m := make(map[string]any, len(s))
	for k, v := range s {
		m[k] = v
	}
	return m
}

// conform fills the keys a shape declares, so that type-checked expressions
// see typed zero values rather than nil.
func conform(shape *connector.Shape, m map[string]any) map[string]any {
	filled, _ := shape.Fill(nilMap(m)).(map[string]any)
	return nilMap(filled)
}

// OnErrorGrace is the time on_error steps get, together, when the run
// failed because its own time ran out (a context past its deadline): its
// steps' own timeouts still bound each. A run cut short otherwise (its
// context canceled: shutdown) runs no on_error step.
const OnErrorGrace = 30 * time.Second

// ReasonExprBudget is the reason of a run that failed because one of its
// expressions went over its budget of memory or work (recipes.ErrBudget):
// a failure of the recipe on this event, never retried.
const ReasonExprBudget = "expression_budget"

// exprReason is the reason of a failed evaluation: ReasonExprBudget for
// one over budget, else reason.
func exprReason(err error, reason string) string {
	if errors.Is(err, recipes.ErrBudget) {
		return ReasonExprBudget
	}
	return reason
}
