package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/metrics"
	"github.com/sous-run/sous/engine/pipeline/sqlqueue"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// Config assembles an engine.
type Config struct {
	Store   *store.Store
	Broker  Broker
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// NewRunner returns a runner carrying secrets and connections.
	NewRunner func() *runner.Runner
	// RunTimeout bounds one delivery of a run message.
	RunTimeout time.Duration
	// Owner names this process in run claims.
	Owner string
}

// Engine runs the pipeline.
type Engine struct {
	cfg    Config
	index  atomic.Pointer[Index]
	router *message.Router
	log    *slog.Logger
	// running holds the runs executing in this process, so that a
	// duplicate message of a run in flight waits rather than runs twice.
	running sync.Map
	// Delivered counts finished runs (for benchmarks and tests).
	Delivered atomic.Int64
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
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	e := &Engine{cfg: cfg, log: cfg.Logger}
	e.index.Store(&Index{byName: map[string]*recipes.Recipe{}, byKey: map[string]map[string][]*recipes.Recipe{}, hooks: map[string]*Hook{}})
	wlog := watermill.NewSlogLogger(cfg.Logger.With("component", "watermill"))
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wlog)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	poison, err := middleware.PoisonQueue(cfg.Broker.Publisher(), TopicDeadLetters)
	if err != nil {
		return nil, fmt.Errorf("poison queue: %w", err)
	}
	router.AddMiddleware(
		middleware.Recoverer,
		middleware.CorrelationID,
		poison,
		middleware.Retry{MaxRetries: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, Logger: wlog,
			ShouldRetry: func(p middleware.RetryParams) bool { return !errors.Is(p.Err, errPermanent) }}.Middleware,
		middleware.Timeout(cfg.RunTimeout),
	)
	router.AddHandler("match", TopicEvents, cfg.Broker.Subscriber(), TopicRuns, cfg.Broker.Publisher(), e.match)
	router.AddConsumerHandler("run", TopicRuns, cfg.Broker.Subscriber(), e.run)
	router.AddConsumerHandler("dead_letters", TopicDeadLetters, cfg.Broker.Subscriber(), e.dead)
	e.router = router
	return e, nil
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
func (e *Engine) Close() error { return e.router.Close() }

// errPermanent marks a message that can never be handled: it goes to the
// dead letters at once.
var errPermanent = errors.New("permanent")

func (e *Engine) match(msg *message.Message) ([]*message.Message, error) {
	var ev EventMsg
	if err := json.Unmarshal(msg.Payload, &ev); err != nil {
		return nil, fmt.Errorf("%w: decode event: %v", errPermanent, err)
	}
	ix := e.index.Load()
	matched := ix.Match(ev.Type, ev.Source)
	if len(matched) == 0 {
		return nil, nil
	}
	payload, err := decodePayload(ev.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: decode payload: %v", errPermanent, err)
	}
	r := e.cfg.NewRunner()
	rev := runner.Event{ID: ev.ID, Type: ev.Type, ReceivedAt: ev.ReceivedAt, Payload: payload}
	var out []*message.Message
	var filtered []*store.Run
	for _, rec := range matched {
		runID := RunID(ev.ID, rec.Name)
		ok, err := r.Filter(rec, rev, runID)
		if err == nil && !ok {
			now := time.Now()
			filtered = append(filtered, &store.Run{ID: runID, Recipe: rec.Name, EventID: ev.ID, Status: string(runner.StatusFiltered),
				StartedAt: now, FinishedAt: now, Attempt: 1})
			continue
		}
		// a filter that fails to evaluate is recorded by the runner as a failed run
		m, err := newMessage(RunMsg{RunID: runID, Recipe: rec.Name, Event: ev})
		if err != nil {
			return nil, err
		}
		m.Metadata.Set("recipe", rec.Name)
		out = append(out, m)
	}
	if len(filtered) > 0 {
		err := e.cfg.Broker.Write(msg.Context(), func(ctx context.Context, tx sqlqueue.Tx) error {
			for _, run := range filtered {
				if err := e.cfg.Store.SaveRunTx(ctx, tx, run); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("record filtered runs: %w", err)
		}
		for _, run := range filtered {
			e.cfg.Metrics.Runs.WithLabelValues(run.Recipe, run.Status).Inc()
			e.Delivered.Add(1)
		}
	}
	return out, nil
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
	var rm RunMsg
	if err := json.Unmarshal(msg.Payload, &rm); err != nil {
		return fmt.Errorf("%w: decode run: %v", errPermanent, err)
	}
	ctx := msg.Context()
	rec := e.index.Load().Recipe(rm.Recipe)
	if rec == nil {
		e.log.Warn("run of a recipe that is no longer loaded", "recipe", rm.Recipe, "run", rm.RunID)
		return e.save(ctx, &store.Run{ID: rm.RunID, Recipe: rm.Recipe, EventID: rm.Event.ID, Status: string(runner.StatusDead),
			StartedAt: time.Now(), FinishedAt: time.Now(), Reason: "recipe_removed", Error: "the recipe is no longer loaded", Attempt: 1}, nil)
	}
	if !rm.Replay {
		done, err := e.cfg.Store.RunDone(ctx, rm.RunID)
		if err != nil {
			return err
		}
		if done {
			return nil // a redelivery of a run that finished: nothing to do
		}
	}
	if _, busy := e.running.LoadOrStore(rm.RunID, true); busy {
		// the same run is executing here: let this copy come back later
		retryAt(msg, time.Now().Add(time.Second))
		msg.Nack()
		return nil
	}
	defer e.running.Delete(rm.RunID)
	payload, err := decodePayload(rm.Event.Payload)
	if err != nil {
		return fmt.Errorf("%w: decode payload: %v", errPermanent, err)
	}
	r := e.cfg.NewRunner()
	r.Logger = e.log
	res := r.Run(ctx, rec, runner.Event{ID: rm.Event.ID, Type: rm.Event.Type, ReceivedAt: rm.Event.ReceivedAt, Payload: payload}, rm.RunID)
	run := RecordOf(rm, res)
	run.Replace = rm.Replay
	return e.save(ctx, run, res)
}

// RecordOf turns a runner result into a stored run.
func RecordOf(rm RunMsg, res *runner.Result) *store.Run {
	rec, _ := json.Marshal(res)
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

func (e *Engine) save(ctx context.Context, run *store.Run, res *runner.Result) error {
	err := e.cfg.Broker.Write(context.WithoutCancel(ctx), func(ctx context.Context, tx sqlqueue.Tx) error {
		return e.cfg.Store.SaveRunTx(ctx, tx, run)
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
	if topic != TopicRuns {
		return nil
	}
	var rm RunMsg
	if err := json.Unmarshal(msg.Payload, &rm); err != nil {
		return nil // nothing to record: it was unreadable
	}
	now := time.Now()
	return e.save(msg.Context(), &store.Run{ID: rm.RunID, Recipe: rm.Recipe, EventID: rm.Event.ID, Status: string(runner.StatusDead),
		StartedAt: now, FinishedAt: now, Reason: "pipeline_error", Error: reason, Attempt: 1, Replace: true}, nil)
}
