package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/metrics"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// Config assembles an engine.
type Config struct {
	Store   *store.Store
	Broker  broker.Broker
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// NewRunner returns a runner carrying secrets and connections.
	NewRunner func() *runner.Runner
	// RunTimeout bounds one delivery of a run message.
	RunTimeout time.Duration
	// MaxInlineDelay: a step retry that waits longer is stored and taken
	// up again at its time (on brokers that can delay a redelivery).
	MaxInlineDelay time.Duration
	// ShutdownTimeout bounds how long Close waits for in-flight runs.
	ShutdownTimeout time.Duration
	// MaxCrashes is how many times a process may die while it holds a
	// message before the message is set aside as poison: its runs are
	// recorded dead with reason poison (DefaultMaxCrashes when zero; see
	// broker.Crashes for what is counted, on the embedded queue
	// (sqlqueue) and on NATS).
	MaxCrashes int
}

// DefaultMaxCrashes is the default Config.MaxCrashes.
const DefaultMaxCrashes = 3

// Engine runs the pipeline.
type Engine struct {
	cfg    Config
	caps   broker.Capabilities // the broker's, asked once
	index  atomic.Pointer[Index]
	router *message.Router
	log    *slog.Logger
	// running holds the runs executing in this process, so that a
	// duplicate message of a run in flight waits rather than runs twice.
	running sync.Map
	// Delivered counts finished runs (for benchmarks and tests).
	Delivered atomic.Int64

	filterOnce sync.Once
	filter     *runner.Runner
	workers    *workers
}

// New builds the engine and its Watermill router.
func New(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.RunTimeout <= 0 {
		cfg.RunTimeout = 15 * time.Minute
	}
	if cfg.MaxInlineDelay <= 0 {
		cfg.MaxInlineDelay = 2 * time.Second
	}
	if cfg.MaxCrashes <= 0 {
		cfg.MaxCrashes = DefaultMaxCrashes
	}
	e := &Engine{cfg: cfg, caps: cfg.Broker.Capabilities(), log: cfg.Logger, workers: newWorkers()}
	e.index.Store(emptyIndex())
	wlog := broker.NewWatermillLogger(cfg.Logger.With("component", "watermill"))
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.ShutdownTimeout}, wlog)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	// the router closes a handler's publisher when the handler stops; the
	// broker is also the subscriber of the other handlers, so it must
	// outlive them: the service closes it after the router
	pub := keepOpen{cfg.Broker.Publisher()}
	// likewise it closes every subscriber as soon as it starts closing,
	// before in-flight handlers finish; their subscriptions end with the
	// router's context instead
	sub := keepOpenSub{cfg.Broker.Subscriber()}
	// a handler cut short by shutdown is not poison: its message comes back
	poison, err := middleware.PoisonQueueWithFilter(pub, broker.TopicDeadLetters, func(err error) bool {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	})
	if err != nil {
		return nil, fmt.Errorf("poison queue: %w", err)
	}
	router.AddMiddleware(
		middleware.Recoverer,
		middleware.CorrelationID,
		poison,
		retryOnError(middleware.Retry{MaxRetries: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, Logger: wlog,
			ShouldRetry: func(p middleware.RetryParams) bool {
				return !errors.Is(p.Err, errPermanent) && !errors.Is(p.Err, context.Canceled)
			}}),
		runDeadline(cfg.RunTimeout),
		e.workers.middleware,
	)
	router.AddHandler("match", broker.TopicEvents, sub, broker.TopicRuns, pub, e.match)
	router.AddConsumerHandler("run", broker.TopicRuns, sub, e.run)
	router.AddConsumerHandler("dead_letters", broker.TopicDeadLetters, sub, e.dead)
	e.router = router
	return e, nil
}

// filterRunner is the runner the matcher evaluates filters with: built
// once, since a filter only reads.
func (e *Engine) filterRunner() *runner.Runner {
	e.filterOnce.Do(func() { e.filter = e.cfg.NewRunner() })
	return e.filter
}

// SetIndex swaps the recipes the engine matches against.
func (e *Engine) SetIndex(ix *Index) { e.index.Store(ix) }

// Index returns the current recipe index.
func (e *Engine) Index() *Index { return e.index.Load() }

// Accept stores an event durably; false means a duplicate.
func (e *Engine) Accept(ctx context.Context, ev *store.Event) (bool, error) {
	return e.cfg.Broker.Accept(ctx, ev)
}

// Run runs the router until ctx ends, then drains in-flight messages.
func (e *Engine) Run(ctx context.Context) error { return e.router.Run(ctx) }

// Running is closed once the router runs.
func (e *Engine) Running() chan struct{} { return e.router.Running() }

// Close stops the router, waiting for in-flight handlers up to its close
// timeout.
func (e *Engine) Close() error {
	err := e.router.Close()
	e.workers.stop()
	return err
}

// errRunTimeout is the cause of a run message's context that ended at
// pipeline.run_timeout (see runDeadline), which a shutdown's does not
// have.
var errRunTimeout = errors.New("the run timeout ended the run")

// runDeadline is Watermill's Timeout middleware with a cause: a handler
// tells the run timeout (timedOut) from any other end of its context.
func runDeadline(d time.Duration) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx, cancel := context.WithTimeoutCause(msg.Context(), d, errRunTimeout)
			defer cancel()
			msg.SetContext(ctx)
			return h(msg)
		}
	}
}

// timedOut reports whether ctx ended at the run timeout.
func timedOut(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errRunTimeout)
}

// timeoutVerdict makes res, a run that failed once its run timeout d
// passed, a failure of reason timeout, at the step it stood at.
func timeoutVerdict(res *runner.Result, d time.Duration) {
	msg := fmt.Sprintf("the run took longer than pipeline.run_timeout (%s)", d)
	step := ""
	if res.Error != nil {
		step = res.Error.Step
		if res.Error.Message != "" {
			msg += ": " + res.Error.Message
		}
	}
	res.Error = &runner.RunError{Step: step, Message: msg, Reason: string(connector.ReasonTimeout)}
}

// accepted drops from matched the recipes whose trigger filters events by
// their options (Trigger.Match) and that the event was not stored for:
// intake and the pollers kept only the recipes whose options it matched
// (Listeners), and the index keys recipes by type and key alone.
func accepted(matched []*recipes.Recipe, names []string) []*recipes.Recipe {
	if len(names) == 0 {
		return matched
	}
	drop := func(r *recipes.Recipe) bool {
		t := r.Trigger.Spec
		return t != nil && t.Trigger != nil && t.Trigger.Match != nil && !slices.Contains(names, r.Name)
	}
	if !slices.ContainsFunc(matched, drop) {
		return matched // the index's own slice: no copy for the common case
	}
	return slices.DeleteFunc(slices.Clone(matched), drop)
}

// errPermanent marks a message that can never be handled: it goes to the
// dead letters at once.
var errPermanent = errors.New("permanent")

func (e *Engine) match(msg *message.Message) ([]*message.Message, error) {
	var ev broker.EventMsg
	local, _ := broker.Local(msg).(*broker.LocalEvent)
	if local != nil {
		ev = local.Msg
	} else if err := json.Unmarshal(msg.Payload, &ev); err != nil {
		return nil, fmt.Errorf("%w: decode event: %v", errPermanent, err)
	}
	ix := e.index.Load()
	matched := accepted(ix.Match(ev.Type, ev.Source), ev.Recipes)
	if n := broker.Crashes(msg); n >= e.cfg.MaxCrashes {
		return nil, e.poisonEvent(msg.Context(), ev, matched, n)
	}
	// a recipe the event was accepted for, removed (or moved to another
	// path) before matching, gets a dead run, as it does when it goes
	// between matching and running
	if gone := removed(ev.Recipes, matched); len(gone) > 0 {
		if err := e.recordRemoved(msg.Context(), ev, gone); err != nil {
			return nil, err
		}
	}
	if len(matched) == 0 {
		if len(ev.Recipes) == 0 {
			e.log.Warn("event matches no loaded recipe: nothing runs", "event", ev.ID, "type", ev.Type, "source", ev.Source)
		}
		return nil, nil
	}
	raw := ev.Payload
	var payload map[string]any
	if local != nil {
		raw, payload = local.Payload, local.Decoded
	}
	if payload == nil {
		var err error
		if payload, err = e.payload(msg.Context(), ev.ID, raw); err != nil {
			return nil, err
		}
	}
	lean := e.caps.LeanMessages
	r := e.filterRunner()
	rev := runner.Event{ID: ev.ID, Type: ev.Type, ReceivedAt: ev.ReceivedAt, Payload: payload}
	var out []*message.Message
	var filtered []*store.Run
	for _, rec := range matched {
		runID := RunID(ev.ID, rec.Name)
		ok, err := r.Filter(rec, rev, runID)
		if err == nil && !ok {
			filtered = append(filtered, filteredRun(runID, rec.Name, ev.ID))
			continue
		}
		// a filter that fails to evaluate is recorded by the runner as a failed run
		rm := RunMsg{RunID: runID, Recipe: rec.Name, Event: ev}
		if lean {
			rm.Event.Payload = nil
		} else {
			rm.Event.Payload = raw
		}
		m, err := broker.NewMessage(rm)
		if err != nil {
			return nil, err
		}
		m.Metadata.Set("recipe", rec.Name)
		// an event delivered for the first time has no runs yet: handed
		// over in memory, or claimed from its row for the first time (a
		// backlog draining)
		lr := &localRun{msg: rm, payload: payload}
		lr.fresh.Store((local != nil && !local.Claimed) || broker.FirstDelivery(msg))
		broker.WithLocal(m, lr)
		// on the embedded queue, the run waits in memory while the
		// event's row stays: a crash brings the event back, and the
		// event brings its runs back
		broker.Derive(m, msg)
		out = append(out, m)
	}
	if len(filtered) > 0 {
		if err := e.saveFinished(msg.Context(), filtered, nil); err != nil {
			return nil, fmt.Errorf("record filtered runs: %w", err)
		}
	}
	return out, nil
}

// poisonError is the error a run set aside as poison is recorded with.
func poisonError(what string, n int) string {
	return fmt.Sprintf("%s was in flight when the process stopped %d times: set aside as poison", what, n)
}

// poisonEvent records a dead run, reason poison, of each recipe the
// event was accepted for or matches, unless it finished already: the
// event was held by a process that died n times (see broker.Crashes),
// and whatever killed it, in the matcher or in one of its runs, must not
// kill the next one.
func (e *Engine) poisonEvent(ctx context.Context, ev broker.EventMsg, matched []*recipes.Recipe, n int) error {
	names := slices.Clone(ev.Recipes)
	for _, rec := range matched {
		if !slices.Contains(names, rec.Name) {
			names = append(names, rec.Name)
		}
	}
	e.log.Error("event set aside as poison: its unfinished runs are recorded dead", "event", ev.ID, "type", ev.Type,
		"source", ev.Source, "deaths", n, "recipes", names)
	now := time.Now()
	var runs []*store.Run
	for _, name := range names {
		id := RunID(ev.ID, name)
		if done, _, err := e.cfg.Store.RunState(ctx, id); err != nil {
			return err
		} else if done {
			continue
		}
		runs = append(runs, &store.Run{ID: id, Recipe: name, EventID: ev.ID, Status: string(runner.StatusDead),
			StartedAt: now, FinishedAt: now, Reason: "poison", Error: poisonError("its event", n), Attempt: 1, Replace: true})
	}
	if err := e.saveFinished(context.WithoutCancel(ctx), runs, nil); err != nil {
		return fmt.Errorf("record runs of a poison event: %w", err)
	}
	return nil
}

// removed lists the names in accepted that are not among matched.
func removed(accepted []string, matched []*recipes.Recipe) []string {
	var gone []string
	for _, name := range accepted {
		if !slices.ContainsFunc(matched, func(r *recipes.Recipe) bool { return r.Name == name }) {
			gone = append(gone, name)
		}
	}
	return gone
}

// recordRemoved records a dead run of each named recipe for ev.
func (e *Engine) recordRemoved(ctx context.Context, ev broker.EventMsg, names []string) error {
	now := time.Now()
	runs := make([]*store.Run, 0, len(names))
	for _, name := range names {
		// a redelivered event may have run the recipe before it went
		if done, _, err := e.cfg.Store.RunState(ctx, RunID(ev.ID, name)); err != nil {
			return err
		} else if done {
			continue
		}
		e.log.Warn("event accepted for a recipe that is no longer loaded on its path: recorded as a dead run",
			"event", ev.ID, "recipe", name, "source", ev.Source)
		runs = append(runs, &store.Run{ID: RunID(ev.ID, name), Recipe: name, EventID: ev.ID, Status: string(runner.StatusDead),
			StartedAt: now, FinishedAt: now, Reason: "recipe_removed", Attempt: 1, Checkpointed: true,
			Error: fmt.Sprintf("recipe %s no longer listens on %s", name, ev.Source)})
	}
	if err := e.saveFinished(context.WithoutCancel(ctx), runs, nil); err != nil {
		return fmt.Errorf("record runs of removed recipes: %w", err)
	}
	return nil
}

// filteredRun is the record of a run whose recipe's filter refused its
// event.
func filteredRun(runID, recipe, eventID string) *store.Run {
	now := time.Now()
	return &store.Run{ID: runID, Recipe: recipe, EventID: eventID, Status: string(runner.StatusFiltered),
		StartedAt: now, FinishedAt: now, Attempt: 1}
}

// saveFinished records runs that end before any step (filtered, or of a
// removed recipe) in one transaction, after first (when not nil), and
// counts them.
func (e *Engine) saveFinished(ctx context.Context, runs []*store.Run, first store.Op) error {
	err := e.cfg.Broker.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		if first != nil {
			if err := first(ctx, tx); err != nil {
				return err
			}
		}
		for _, run := range runs {
			if err := e.cfg.Store.SaveRunTx(ctx, tx, run); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, run := range runs {
		e.cfg.Metrics.Runs.WithLabelValues(run.Recipe, run.Status).Inc()
		e.Delivered.Add(1)
	}
	return nil
}

// payload decodes an event's payload: raw when the message carried it,
// else the event as stored.
func (e *Engine) payload(ctx context.Context, eventID string, raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		ev, err := e.cfg.Store.GetEvent(ctx, eventID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: event %s is no longer stored", errPermanent, eventID)
		}
		if err != nil {
			return nil, err
		}
		raw = ev.Payload
	}
	payload, err := decodePayload(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: decode payload: %v", errPermanent, err)
	}
	return payload, nil
}

func decodePayload(raw json.RawMessage) (map[string]any, error) {
	var payload map[string]any
	if len(raw) == 0 {
		return map[string]any{}, nil
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		return nil, err
	}
	return payload, nil
}

func (e *Engine) run(msg *message.Message) error {
	local, _ := broker.Local(msg).(*localRun)
	var rm RunMsg
	if local != nil {
		rm = local.msg
	} else if err := json.Unmarshal(msg.Payload, &rm); err != nil {
		return fmt.Errorf("%w: decode run: %v", errPermanent, err)
	}
	ctx := msg.Context()
	rec := e.index.Load().Recipe(rm.Recipe)
	if rec == nil {
		e.log.Warn("run of a recipe that is no longer loaded", "recipe", rm.Recipe, "run", rm.RunID)
		// (it may have stored a checkpoint before the recipe went)
		return e.recordUnrun(msg, &store.Run{ID: rm.RunID, Recipe: rm.Recipe, EventID: rm.Event.ID, Status: string(runner.StatusDead),
			StartedAt: time.Now(), FinishedAt: time.Now(), Reason: "recipe_removed", Error: "the recipe is no longer loaded", Attempt: 1,
			Checkpointed: true})
	}
	// claim the run in this process first, then look whether it is done:
	// the other order lets a second copy slip in between a finished run's
	// check and its release
	if _, busy := e.running.LoadOrStore(rm.RunID, true); busy {
		// the same run is executing here: let this copy come back later
		broker.RetryAt(msg, time.Now().Add(time.Second))
		msg.Nack()
		return nil
	}
	defer e.running.Delete(rm.RunID)
	if n := broker.Crashes(msg); n >= e.cfg.MaxCrashes {
		// its process died n times holding it: set aside, unless done
		// (after the claim: not under a copy of the run running here)
		if done, _, err := e.cfg.Store.RunState(ctx, rm.RunID); err != nil || done {
			return err
		}
		e.log.Error("run set aside as poison: recorded dead", "run", rm.RunID, "recipe", rm.Recipe, "deaths", n)
		return e.recordUnrun(msg, &store.Run{ID: rm.RunID, Recipe: rm.Recipe, EventID: rm.Event.ID, Status: string(runner.StatusDead),
			StartedAt: time.Now(), FinishedAt: time.Now(), Reason: "poison", Error: poisonError("the run", n), Attempt: 1, Replace: true})
	}
	var (
		done       bool
		checkpoint []byte
		err        error
	)
	// a run handed over by the matcher of a first delivery cannot have
	// started before; any later delivery or retry looks
	if local == nil || !local.fresh.Swap(false) || rm.Replay {
		if done, checkpoint, err = e.cfg.Store.RunState(ctx, rm.RunID); err != nil {
			return err
		}
		if !rm.Replay {
			if done, checkpoint, err = e.sharedState(ctx, msg, rm.RunID, done, checkpoint); err != nil {
				e.later(msg, rm.RunID, err)
				return nil
			}
		}
	}
	if done && !rm.Replay {
		return nil // a redelivery of a run that finished: nothing to do
	}
	var payload map[string]any
	if local != nil {
		payload = local.payload
	} else if payload, err = e.payload(ctx, rm.Event.ID, rm.Event.Payload); err != nil {
		return err
	}
	r := e.cfg.NewRunner()
	r.Logger = e.log
	ev := runner.Event{ID: rm.Event.ID, Type: rm.Event.Type, ReceivedAt: rm.Event.ReceivedAt, Payload: payload}
	state, err := e.startState(rm, rec, checkpoint)
	if err != nil {
		return err
	}
	if state != nil && !rm.Replay && time.Now().Before(state.RetryAt) {
		// a copy of a run that waits for a durable retry, come early (its
		// event delivered again, say): it goes back until the retry time
		if handled, err := e.putBack(ctx, msg, state.RetryAt, checkpoint); handled {
			return err
		}
	}
	if e.caps.DelayedRedelivery {
		r.MaxInlineDelay = e.cfg.MaxInlineDelay
	}
	// a run that stored a checkpoint, or found one, deletes it when it
	// is recorded; a single-step run stores none
	checkpointed := checkpoint != nil
	if len(rec.Steps) > 1 {
		r.Checkpoint = func(st *runner.State) error {
			checkpointed = true
			return e.checkpoint(ctx, rm.RunID, r.RedactState(st))
		}
	}
	res := r.Resume(ctx, rec, ev, rm.RunID, state)
	switch {
	case timedOut(ctx):
		// past pipeline.run_timeout: a verdict on the run, which would
		// take as long again if it came back (a pause goes on as one)
		if res.Status == runner.StatusFailed {
			timeoutVerdict(res, e.cfg.RunTimeout)
			e.log.Warn("run timed out", "run", rm.RunID, "recipe", rm.Recipe, "run_timeout", e.cfg.RunTimeout)
		}
	case ctx.Err() != nil && res.Status != runner.StatusSucceeded:
		// cut short otherwise (its broker let it go: NATS past its handle
		// timeout, or closing): not a verdict on the run; the message
		// comes back and the run resumes from its checkpoint
		e.log.Warn("run interrupted: it will be taken up again", "run", rm.RunID, "error", ctx.Err())
		msg.Nack()
		return nil
	}
	if res.Status == runner.StatusPending {
		// a durable retry: store where the run stands and take the message
		// back at its retry time, here or in another process
		if rs := e.caps.Rescheduler; rs != nil {
			raw, err := json.Marshal(r.RedactState(res.State))
			if err != nil {
				return fmt.Errorf("encode checkpoint: %w", err)
			}
			return rs.Reschedule(context.WithoutCancel(ctx), msg, res.RetryAt, raw, func(ctx context.Context, tx store.Execer) error {
				return e.cfg.Store.SaveCheckpoint(ctx, tx, rm.RunID, raw, time.Now())
			})
		}
		if err := e.checkpoint(ctx, rm.RunID, r.RedactState(res.State)); err != nil {
			return err
		}
		broker.RetryAt(msg, res.RetryAt)
		msg.Nack()
		return nil
	}
	run := RecordOf(rm, res)
	run.Replace = rm.Replay || state != nil
	run.Checkpointed = checkpointed
	if sh := e.caps.SharedState; sh != nil {
		return e.saveShared(ctx, sh, run, res)
	}
	return e.save(ctx, run, res, nil)
}

// saveShared records a finished run on a broker whose processes share the
// runs' ends: journalled in this process's store first, then marked
// finished for the others, then recorded and its journal entry deleted
// in one transaction. A crash between the mark and the record leaves the
// journal entry, which the broker records when the process starts again
// (see the NATS broker, engine/broker/nats); a crash before the mark leaves the run to be taken up
// again (its last step goes again, with the same idempotency key), here
// or elsewhere, and the entry is dropped. Either way the run is recorded
// once.
func (e *Engine) saveShared(ctx context.Context, sh broker.Sharer, run *store.Run, res *runner.Result) error {
	ctx = context.WithoutCancel(ctx)
	err := e.cfg.Broker.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		return e.cfg.Store.AddFinishing(ctx, tx, run, time.Now())
	})
	if err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	if err := sh.ShareDone(ctx, run.ID); err != nil {
		// recorded here: should its message come again to another
		// process, the run would go again there
		e.log.Warn("the other processes may not learn that the run finished", "run", run.ID, "error", err)
	}
	return e.save(ctx, run, res, func(ctx context.Context, tx store.Execer) error {
		return e.cfg.Store.DeleteFinishing(ctx, tx, run.ID)
	})
}

// recordUnrun records a run the pipeline ends without running it (its dead
// letter, a recipe no longer loaded). On a broker whose processes share
// the runs' ends it goes the way of a finished run (saveShared), unless
// the run finished already in any process: a copy of its message or of
// its dead letter that comes again to another process records nothing
// there, and a late copy of its message does not run it.
func (e *Engine) recordUnrun(msg *message.Message, run *store.Run) error {
	ctx := msg.Context()
	sh := e.caps.SharedState
	if sh == nil {
		return e.save(ctx, run, nil, nil)
	}
	done, _, err := sh.SharedRun(ctx, run.ID)
	if err != nil {
		e.later(msg, run.ID, err)
		return nil
	}
	if done {
		e.log.Info("a run already finished: not recorded again", "run", run.ID, "status", run.Status, "reason", run.Reason)
		return nil
	}
	return e.saveShared(ctx, sh, run, nil)
}

// later has msg come again in a second when what the other processes
// know of its run is out of reach: not a verdict on the run, which a
// handler error would become, through the poison queue, after a few
// tries.
func (e *Engine) later(msg *message.Message, runID string, err error) {
	e.log.Warn("read what the other processes know of the run: it is tried again in a second", "run", runID, "error", err)
	broker.RetryAt(msg, time.Now().Add(time.Second))
	msg.Nack()
}

// sharedState completes what this process's store says of a run (done,
// checkpoint), on a broker whose processes share runs, with what the
// message carries and what the others know.
func (e *Engine) sharedState(ctx context.Context, msg *message.Message, runID string, done bool, checkpoint []byte) (bool, []byte, error) {
	sh := e.caps.SharedState
	if done {
		if sh != nil {
			// finished here: a crash may have come between the record
			// and telling the others
			if err := sh.ShareDone(ctx, runID); err != nil {
				e.log.Warn("the other processes may not learn that the run finished", "run", runID, "error", err)
			}
		}
		return true, nil, nil
	}
	if sh == nil {
		return false, checkpoint, nil
	}
	// a retry paused by another process carries where it stood
	return sh.SharedState(ctx, msg, runID, checkpoint)
}

// putBack arranges for msg to come again at at, on a broker that can
// delay a delivery; false when it cannot (the run then goes ahead now).
// state is the run's checkpoint.
func (e *Engine) putBack(ctx context.Context, msg *message.Message, at time.Time, state []byte) (bool, error) {
	if rs := e.caps.Rescheduler; rs != nil {
		return true, rs.Reschedule(context.WithoutCancel(ctx), msg, at, state, func(context.Context, store.Execer) error { return nil })
	}
	if e.caps.DelayedRedelivery {
		broker.RetryAt(msg, at)
		msg.Nack()
		return true, nil
	}
	return false, nil
}

// startState is where a run starts: a checkpoint left by a crash or a
// durable retry, the kept steps of a --from-failed-step replay, or nil.
func (e *Engine) startState(rm RunMsg, rec *recipes.Recipe, raw []byte) (*runner.State, error) {
	if raw != nil {
		var st runner.State
		if err := json.Unmarshal(raw, &st); err != nil {
			e.log.Warn("unreadable checkpoint: starting the run over", "run", rm.RunID, "error", err)
			return nil, nil
		}
		if st.Next > len(rec.Steps) {
			e.log.Warn("checkpoint does not fit the recipe any more: starting the run over", "run", rm.RunID)
			return nil, nil
		}
		return &st, nil
	}
	if rm.FromStep == "" {
		return nil, nil
	}
	st := &runner.State{Outputs: map[string]map[string]any{}}
	for i, s := range rec.Steps {
		if s.ID == rm.FromStep {
			st.Next = i
			return st, nil
		}
		out := rm.Prior[s.ID]
		st.Outputs[s.ID] = out
		st.Steps = append(st.Steps, &runner.StepResult{ID: s.ID, Action: s.Action, Status: runner.StatusSucceeded, Output: out})
	}
	return nil, fmt.Errorf("%w: step %s is no longer in recipe %s", errPermanent, rm.FromStep, rec.Name)
}

func (e *Engine) checkpoint(ctx context.Context, runID string, st *runner.State) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	ctx = context.WithoutCancel(ctx)
	err = e.cfg.Broker.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		return e.cfg.Store.SaveCheckpoint(ctx, tx, runID, raw, time.Now())
	})
	if err != nil {
		return err
	}
	if sh := e.caps.SharedState; sh != nil {
		if err := sh.ShareCheckpoint(ctx, runID, raw); err != nil {
			// kept here: a process that takes the run up elsewhere
			// resumes from an earlier step
			e.log.Warn("the other processes may not learn where the run stands", "run", runID, "error", err)
		}
	}
	return nil
}

// RecordOf turns a runner result into a stored run.
func RecordOf(rm RunMsg, res *runner.Result) *store.Run {
	rec, _ := encodeRecord(res)
	run := &store.Run{ID: rm.RunID, Recipe: rm.Recipe, EventID: rm.Event.ID, Status: string(res.Status),
		StartedAt: res.Started, FinishedAt: res.Started.Add(res.Duration), Duration: res.Duration, Attempt: 1, Record: rec}
	if res.Error != nil {
		run.ErrorStep, run.Reason, run.Error = res.Error.Step, res.Error.Reason, res.Error.Message
	}
	for _, sr := range res.Steps {
		st := store.RunStep{Step: sr.ID, Action: sr.Action, Status: string(sr.Status), Reason: sr.Reason, Attempts: len(sr.Attempts)}
		for _, a := range sr.Attempts {
			st.Duration += a.Duration
			if a.Reason == string(connector.ReasonRateLimited) {
				st.RateLimited++
			}
		}
		if st.Attempts > 1 {
			run.Retries += st.Attempts - 1
		}
		run.Steps = append(run.Steps, st)
	}
	return run
}

func (e *Engine) save(ctx context.Context, run *store.Run, res *runner.Result, also store.Op) error {
	err := e.cfg.Broker.Write(context.WithoutCancel(ctx), func(ctx context.Context, tx store.Execer) error {
		if err := e.cfg.Store.SaveRunTx(ctx, tx, run); err != nil {
			return err
		}
		if also != nil {
			return also(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	m := e.cfg.Metrics
	m.Runs.WithLabelValues(run.Recipe, run.Status).Inc()
	if res != nil {
		for _, sr := range res.Steps {
			var d time.Duration
			for i, a := range sr.Attempts {
				d += a.Duration
				if i < len(sr.Attempts)-1 {
					m.StepRetries.WithLabelValues(sr.Action, a.Reason).Inc()
				}
			}
			m.StepDuration.WithLabelValues(sr.Action, string(sr.Status)).Observe(d.Seconds())
		}
	}
	e.Delivered.Add(1)
	return nil
}

// dead records a message the pipeline gave up on. A run message becomes a
// run with status dead, which `sous runs replay` can run again.
func (e *Engine) dead(msg *message.Message) error {
	reason := msg.Metadata.Get(middleware.ReasonForPoisonedKey)
	topic := msg.Metadata.Get(middleware.PoisonedTopicKey)
	e.log.Error("message sent to dead letters", "topic", topic, "reason", reason)
	if topic != broker.TopicRuns {
		return nil
	}
	var rm RunMsg
	if err := json.Unmarshal(msg.Payload, &rm); err != nil {
		return nil // nothing to record: it was unreadable
	}
	now := time.Now()
	return e.recordUnrun(msg, &store.Run{ID: rm.RunID, Recipe: rm.Recipe, EventID: rm.Event.ID, Status: string(runner.StatusDead),
		StartedAt: now, FinishedAt: now, Reason: "pipeline_error", Error: reason, Attempt: 1, Replace: true})
}

// keepOpen is a publisher whose Close does nothing.
type keepOpen struct{ message.Publisher }

// Close implements message.Publisher.
func (keepOpen) Close() error { return nil }

// keepOpenSub is a subscriber whose Close does nothing.
type keepOpenSub struct{ message.Subscriber }

// Close implements message.Subscriber.
func (keepOpenSub) Close() error { return nil }
