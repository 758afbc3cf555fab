package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/memory"
	natsbroker "github.com/sous-run/sous/engine/broker/nats"
	"github.com/sous-run/sous/engine/broker/postgres"
	"github.com/sous-run/sous/engine/broker/sqlite"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/metrics"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/zapier"
	"github.com/sous-run/sous/recipes"
)

// Options configure a service.
type Options struct {
	Config     *recipes.Config // nil: no connections, no API keys
	RecipesDir string
	Listen     string // host:port; port 0 picks one
	DataDir    string
	Settings   Settings
	Secrets    map[string]string // secrets.NAME; one set but shorter than recipes.MinSecretLen fails Open
	Logger     *slog.Logger
	Registry   *connector.Registry
}

// Service is a running `sous serve`.
type Service struct {
	opts     Options
	log      *slog.Logger
	Store    *store.Store
	Broker   broker.Broker
	Engine   *pipeline.Engine
	Metrics  *metrics.Metrics
	Zapier   *zapier.Hub // Zapier's REST hooks and actions
	http     *http.Server
	listener net.Listener
	reload   *reloader
	closers  []func() error
	// accept stores a schedule tick: Engine.Accept, or a stand-in in tests.
	accept func(context.Context, *store.Event) (bool, error)
	// retry paces the retries of a tick that could not be stored.
	retry tickRetry
	// tickRetries are the retries in flight; scheduleLoop waits for them.
	tickRetries sync.WaitGroup
	// conns resolves the connections, each with its client, built on
	// first use, and holds the OAuth tokens' vault
	conns *Connections
	// reauth caches the OAuth state of connections, for paused
	reauth sync.Map
	// owner is this process in the refresh leases: the embedded store's
	// instance id, or an id of its own on a shared store (see pollOwner)
	owner string
	// redact is the config's secret values, listed once: every runner gets
	// the same list, and the runner's redactor is found by its identity
	redact []string
}

// Open builds the service: store, broker, engine, recipes, listener.
func Open(ctx context.Context, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = connector.Default
	}
	opts.Settings = opts.Settings.WithDefaults()
	if err := recipes.ShortSecretError("secrets.", recipes.ShortSecrets(opts.Secrets)); err != nil {
		return nil, err
	}
	s := &Service{opts: opts, log: opts.Logger, Metrics: metrics.New(), redact: opts.Config.SecretValues()}
	ok := false
	defer func() {
		if !ok {
			s.closeAll()
		}
	}()
	if err := s.openBroker(ctx); err != nil {
		return nil, err
	}
	eng, err := pipeline.New(pipeline.Config{
		Store: s.Store, Broker: s.Broker, Metrics: s.Metrics, Logger: s.log,
		RunTimeout: opts.Settings.Pipeline.RunTimeout, ShutdownTimeout: opts.Settings.Pipeline.ShutdownTimeout,
		MaxCrashes: opts.Settings.Pipeline.MaxCrashes, NewRunner: s.newRunner,
	})
	if err != nil {
		return nil, err
	}
	s.Engine = eng
	s.accept = eng.Accept
	if err := s.openZapier(ctx); err != nil {
		return nil, err
	}
	if s.owner, err = s.pollOwner(ctx); err != nil {
		return nil, err
	}
	s.conns = &Connections{Config: opts.Config, Registry: opts.Registry, DataDir: opts.DataDir, Owner: s.owner,
		Store: func() (*store.Store, error) { return s.Store, nil },
		Hooks: connector.ClientHooks{
			Call: func(conn, caller, status string, _ time.Duration) {
				s.Metrics.ConnCalls.WithLabelValues(conn, caller, status).Inc()
			},
			Wait: func(conn, caller string, d time.Duration) {
				s.Metrics.ConnWait.WithLabelValues(conn, caller).Add(d.Seconds())
			},
		},
		Refreshed: func(conn, outcome string) { s.Metrics.ConnRefreshes.WithLabelValues(conn, outcome).Inc() }}
	s.reload = &reloader{dir: opts.RecipesDir, loader: &recipes.Loader{Registry: opts.Registry, Config: opts.Config},
		secrets: opts.Secrets, log: s.log, last: map[string]*recipes.Recipe{}}
	if opts.RecipesDir != "" {
		if _, err := os.Stat(opts.RecipesDir); err != nil {
			return nil, fmt.Errorf("recipes: %w", err)
		}
		s.Engine.SetIndex(s.reload.load())
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}
	s.listener = ln
	var apiKeys []string
	if opts.Config != nil {
		apiKeys = opts.Config.APIKeys
	}
	if len(apiKeys) == 0 {
		s.log.Warn("no api_keys in the config: the REST API refuses every request")
	}
	if dev, err := checkDevKey(apiKeys, ln.Addr()); err != nil {
		ln.Close()
		return nil, err
	} else if dev {
		s.log.Warn("the development API key is in use: it is published in examples/sous.yaml, so anyone on this machine can call the REST API; set SOUS_API_KEY or api_keys to a key of your own",
			"listen", ln.Addr().String())
	}
	var running sync.Once
	ready := make(chan struct{})
	go func() {
		<-s.Engine.Running()
		running.Do(func() { close(ready) })
	}()
	handler := server.New(server.Config{
		Engine: s.Engine, Store: s.Store, Metrics: s.Metrics, Logger: s.log, APIKeys: apiKeys,
		MaxBody: opts.Settings.Limits.MaxBody, Registry: opts.Registry, Connection: s.conns.Connection,
		Connections: s.connectionStatuses, Vault: s.conns.Vault, Zapier: s.Zapier, Paused: s.paused,
		Ready: func() bool {
			select {
			case <-ready:
				return true
			default:
				return false
			}
		},
	})
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	ok = true
	return s, nil
}

func (s *Service) openBroker(ctx context.Context) error {
	set := s.opts.Settings.Broker
	switch set.Type {
	case "postgres":
		// store and queue in one PostgreSQL database, shared by every process
		if set.URL == "" {
			return fmt.Errorf("broker postgres: set broker.url to the database's DSN")
		}
		db, err := store.OpenPostgres(ctx, set.URL)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, db.Close)
		s.Store = &store.Store{DB: db, Dialect: store.Postgres, Prefix: set.Prefix}
		// it migrates the store too, under a lock shared with the other processes
		b, err := postgres.New(ctx, s.Store, postgres.Config{
			Prefix:       set.Prefix,
			AckDeadline:  s.opts.Settings.Pipeline.RunTimeout + time.Minute,
			DrainTimeout: s.opts.Settings.Pipeline.ShutdownTimeout,
			Logger:       broker.NewWatermillLogger(s.log.With("component", "broker")),
		})
		if err != nil {
			return err
		}
		s.Broker = b
		s.closers = append([]func() error{b.Close}, s.closers...)
		return nil
	case "", "sqlite", "memory", "nats":
		write, read, err := store.OpenSQLite(ctx, s.opts.DataDir)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, read.Close, write.Close)
		s.Store = &store.Store{DB: read, Write: write, Dialect: store.SQLite, Prefix: set.Prefix}
		if err := s.Store.Migrate(ctx); err != nil {
			return err
		}
		if set.Type == "nats" {
			// events and runs in this process's SQLite store, messages on
			// JetStream, shared by every process
			b, err := natsbroker.New(ctx, s.Store, natsbroker.Config{
				URL:           set.URL,
				Prefix:        set.Prefix,
				AckWait:       set.AckWait,
				MaxAge:        set.MaxAge,
				MaxParked:     set.MaxParked,
				HandleTimeout: s.opts.Settings.Pipeline.RunTimeout + time.Minute,
				DedupTTL:      s.opts.Settings.Retention.Dedup,
				Concurrency:   s.opts.Settings.Pipeline.MaxInFlight,
				DrainTimeout:  s.opts.Settings.Pipeline.ShutdownTimeout,
				Logger:        broker.NewWatermillLogger(s.log.With("component", "broker")),
			})
			if err != nil {
				return err
			}
			s.Broker = b
			s.closers = append([]func() error{b.Close}, s.closers...)
			return nil
		}
		if set.Type == "memory" {
			b := memory.New(s.Store)
			s.Broker = b
			s.closers = append([]func() error{b.Close}, s.closers...)
			return nil
		}
		b, err := sqlite.New(ctx, s.Store, sqlqueue.Config{MaxInFlight: s.opts.Settings.Pipeline.MaxInFlight,
			CommitDelay: s.opts.Settings.Pipeline.CommitDelay})
		if err != nil {
			return err
		}
		// the embedded store belongs to this process alone: a lease left
		// in it can only come from a crash, so take those messages again now
		if err := b.Queue.ReleaseLeases(ctx); err != nil {
			return err
		}
		s.Broker = b
		s.closers = append([]func() error{b.Close}, s.closers...)
		s.registerWriterMetrics(b.Writer)
		return nil
	}
	return fmt.Errorf("broker %q is not available in this build yet", set.Type)
}

// paused says why the webhooks of a connection must wait: its OAuth token
// needs re-authorization (a refresh was refused). The state is read from
// the store at most once a second per connection, since another process
// may have marked it or a `sous connect` mended it.
func (s *Service) paused(ctx context.Context, c *connector.Connection) error {
	spec, ok := s.opts.Registry.Connection(c.Type)
	if !ok || !oauth.UsesOAuth(c, spec) {
		return nil
	}
	type seen struct {
		at    time.Time
		state oauth.State
	}
	if v, ok := s.reauth.Load(c.Name); ok && time.Since(v.(seen).at) < time.Second {
		return reauthErr(c.Name, v.(seen).state)
	}
	v, err := s.conns.Vault()
	if err != nil {
		return nil // the calls will say what is wrong
	}
	_, meta, err := v.Get(ctx, c.Name)
	if err != nil {
		return nil
	}
	s.reauth.Store(c.Name, seen{time.Now(), meta.State})
	return reauthErr(c.Name, meta.State)
}

func reauthErr(name string, state oauth.State) error {
	if state != oauth.StateNeedsReauth {
		return nil
	}
	return fmt.Errorf("connection %s needs re-authorization (run `sous connect %s`): its webhooks are refused until then, for the service to deliver them again", name, name)
}

// connectionStatuses is the state of the config's connections.
func (s *Service) connectionStatuses(ctx context.Context) ([]oauth.Status, error) {
	var conns []*connector.Connection
	if cfg := s.opts.Config; cfg != nil {
		for name := range cfg.Connections {
			c, err := cfg.Connection(name)
			if err != nil {
				return nil, err
			}
			conns = append(conns, c)
		}
	}
	return oauth.Statuses(ctx, s.Store, conns, s.opts.Registry)
}

// pollOwner names this process in the pollers' leases: the embedded
// store's instance id (the store is this process's alone, so a restart
// takes its pollers back at once), or an id of its own on a shared store.
func (s *Service) pollOwner(ctx context.Context) (string, error) {
	if s.Store.Dialect == store.Postgres {
		return pipeline.NewEventID(), nil
	}
	return s.Store.InstanceID(ctx)
}

func (s *Service) newRunner() *runner.Runner {
	return &runner.Runner{
		Secrets:       s.opts.Secrets,
		Redact:        s.redact,
		Connection:    s.conns.Connection,
		Invoke:        s.invoke,
		Logger:        s.log,
		MaxRetryAfter: s.opts.Settings.Pipeline.MaxRetryAfter,
	}
}

// Addr is the address the server listens on.
func (s *Service) Addr() string { return s.listener.Addr().String() }

// Run serves until ctx ends, then shuts down in order: stop taking
// requests, stop the scheduler, drain in-flight runs (up to the shutdown
// timeout), close the broker and the store.
func (s *Service) Run(ctx context.Context) error {
	defer s.closeAll()
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	errc := make(chan error, 2)
	go func() { errc <- s.Engine.Run(runCtx) }()
	go func() {
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(5)
	go func() {
		defer wg.Done()
		if err := s.Zapier.Run(bg); err != nil {
			s.log.Error("zapier deliveries stopped", "error", err)
		}
	}()
	go func() {
		defer wg.Done()
		s.Engine.RunPollers(bg, pipeline.PollConfig{Owner: s.owner, Connection: s.conns.Connection, Logger: s.log.With("component", "poller")})
	}()
	go func() { defer wg.Done(); s.scheduleLoop(bg) }()
	go func() { defer wg.Done(); s.reloadLoop(bg) }()
	go func() { defer wg.Done(); s.retentionLoop(bg) }()
	s.log.Info("sous is serving", "addr", s.Addr(), "broker", s.opts.Settings.Broker.Type, "recipes", len(s.Engine.Index().Recipes()))
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopBG()
	wg.Wait()
	shutdown, cancel := context.WithTimeout(context.Background(), s.opts.Settings.Pipeline.ShutdownTimeout)
	defer cancel()
	if herr := s.http.Shutdown(shutdown); herr != nil {
		s.log.Warn("http shutdown", "error", herr)
	}
	// the router drains in-flight handlers up to its close timeout
	if cerr := s.Engine.Close(); cerr != nil {
		s.log.Warn("pipeline shutdown", "error", cerr)
	}
	cancelRun()
	s.log.Info("sous stopped")
	return err
}

func (s *Service) closeAll() {
	for _, c := range s.closers {
		if err := c(); err != nil {
			s.log.Warn("close", "error", err)
		}
	}
	s.closers = nil
}

func (s *Service) retentionLoop(ctx context.Context) {
	r := s.opts.Settings.Retention
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		n, err := s.Store.Prune(ctx, time.Now(), store.Retention{Succeeded: r.Succeeded, Failed: r.Failed, Dedup: r.Dedup})
		if err != nil && ctx.Err() == nil {
			s.log.Warn("prune", "error", err)
		} else if n > 0 {
			s.log.Info("pruned runs", "count", n)
		}
		for _, topic := range []string{broker.TopicEvents, broker.TopicRuns, broker.TopicDeadLetters} {
			s.Metrics.QueueDepth.WithLabelValues(topic).Set(float64(s.Broker.Depth(ctx, topic)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scheduleLoop fires schedule triggers on time. Each tick is accepted with
// a dedup key naming the recipe and the tick, so that it runs once even
// with several processes or across a restart.
func (s *Service) scheduleLoop(ctx context.Context) {
	// retries end with ctx, before the store closes
	defer s.tickRetries.Wait()
	type entry struct {
		next  func(time.Time) time.Time
		at    time.Time
		recip *recipes.Recipe
		sched string // the trigger type and options it was computed from
	}
	// by recipe name: a reload parses every file again, and a recipe
	// whose schedule did not change keeps its next tick (computing it
	// again from now would skip a tick that fell due during the reload)
	entries := map[string]*entry{}
	var ix *pipeline.Index
	for {
		now := time.Now()
		if cur := s.Engine.Index(); cur != ix {
			ix = cur
			fresh := map[string]*entry{}
			for _, rec := range cur.Recipes() {
				if t := rec.Trigger.Spec.Trigger; t == nil || t.Kind != connector.Clock {
					continue
				}
				opts, err := rec.Trigger.Options(s.opts.Secrets)
				if err != nil {
					s.log.Warn("schedule", "recipe", rec.Name, "error", err)
					continue
				}
				raw, _ := json.Marshal(opts)
				sched := rec.Trigger.Type + " " + string(raw)
				if e, ok := entries[rec.Name]; ok && e.sched == sched {
					e.recip = rec
					fresh[rec.Name] = e
					continue
				}
				next, err := rec.Trigger.Spec.Schedule(opts)
				if err != nil {
					s.log.Warn("schedule", "recipe", rec.Name, "error", err)
					continue
				}
				fresh[rec.Name] = &entry{next: next, at: next(now), recip: rec, sched: sched}
			}
			entries = fresh
		}
		wait := time.Second
		for _, e := range entries {
			if !e.at.After(now) {
				next := e.next(now)
				s.fire(ctx, e.recip, e.at, now, next)
				e.at = next
			}
			if d := e.at.Sub(now); d < wait {
				wait = d
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, time.Millisecond)):
		}
	}
}

// Retries of a schedule tick that could not be stored (the store briefly
// unavailable): after tickRetryFirst, doubling up to tickRetryMax, while
// the tick is still relevant, that is until the recipe's next tick and at
// most tickRetryWindow after the tick. The tick's dedup key makes a retry
// safe even when an attempt reported an error but was stored.
const (
	tickRetryFirst  = 100 * time.Millisecond
	tickRetryMax    = 5 * time.Second
	tickRetryWindow = time.Minute
)

// tickRetry is the clock that paces the retries of a tick; the zero value
// is the real one.
type tickRetry struct {
	now func() time.Time
	// sleep waits for d, or returns ctx's error if ctx ends first.
	sleep func(ctx context.Context, d time.Duration) error
}

func (r tickRetry) withDefaults() tickRetry {
	if r.now == nil {
		r.now = time.Now
	}
	if r.sleep == nil {
		r.sleep = runner.SleepContext
	}
	return r
}

// fire accepts a schedule tick due at tick, fired at now; next is the
// recipe's following tick (zero when there is none). A tick that cannot be
// stored is retried in the background until it is stored, stops being
// relevant, or ctx ends.
func (s *Service) fire(ctx context.Context, rec *recipes.Recipe, tick, now, next time.Time) {
	payload, err := s.tickPayload(rec, tick, now)
	if err != nil {
		s.log.Error("schedule tick", "recipe", rec.Name, "error", err)
		return
	}
	ev := &store.Event{ID: pipeline.NewEventID(), Type: rec.Trigger.Type, Source: rec.Name, Recipes: []string{rec.Name},
		DedupKey: fmt.Sprintf("tick:%s:%d", rec.Name, tick.Unix()), ReceivedAt: now.UTC(), Payload: payload}
	err = s.acceptTick(ctx, ev)
	if err == nil {
		return
	}
	until := tick.Add(tickRetryWindow)
	if !next.IsZero() && next.Before(until) {
		until = next
	}
	if ctx.Err() != nil || !s.retry.withDefaults().now().Before(until) {
		s.log.Error("schedule tick not stored", "recipe", rec.Name, "tick", tick, "error", err)
		return
	}
	s.log.Warn("schedule tick not stored: retrying", "recipe", rec.Name, "tick", tick, "until", until, "error", err)
	s.tickRetries.Add(1)
	go func() {
		defer s.tickRetries.Done()
		s.retryTick(ctx, rec.Name, tick, ev, until)
	}()
}

// tickPayload is the event of a recipe's tick, as its trigger's spec
// makes it (looked up by type when the recipe carries none).
func (s *Service) tickPayload(rec *recipes.Recipe, tick, now time.Time) ([]byte, error) {
	spec := rec.Trigger.Spec
	if spec == nil {
		reg := s.opts.Registry
		if reg == nil {
			reg = connector.Default
		}
		spec, _ = reg.Lookup(rec.Trigger.Type)
	}
	if spec == nil || spec.Trigger == nil || spec.Trigger.Tick == nil {
		return nil, fmt.Errorf("trigger %s makes no schedule ticks", rec.Trigger.Type)
	}
	return json.Marshal(spec.Trigger.Tick(tick, now))
}

// retryTick tries to store a tick again, with a doubling delay, until it
// is stored, until passes or ctx ends.
func (s *Service) retryTick(ctx context.Context, recipe string, tick time.Time, ev *store.Event, until time.Time) {
	r := s.retry.withDefaults()
	delay := tickRetryFirst
	for attempt := 2; ; attempt++ {
		wait := min(delay, until.Sub(r.now()))
		if wait <= 0 {
			s.log.Error("schedule tick lost: not stored before it stopped being relevant",
				"recipe", recipe, "tick", tick, "attempts", attempt-1, "until", until)
			return
		}
		if err := r.sleep(ctx, wait); err != nil {
			s.log.Error("schedule tick lost: stopped while retrying", "recipe", recipe, "tick", tick, "attempts", attempt-1)
			return
		}
		err := s.acceptTick(ctx, ev)
		if err == nil {
			s.log.Info("schedule tick stored after a retry", "recipe", recipe, "tick", tick, "attempts", attempt)
			return
		}
		s.log.Debug("schedule tick not stored", "recipe", recipe, "tick", tick, "attempt", attempt, "error", err)
		delay = min(2*delay, tickRetryMax)
	}
}

// acceptTick stores a tick's event once; a duplicate (the tick stored
// before, by this process or another) is no error.
func (s *Service) acceptTick(ctx context.Context, ev *store.Event) error {
	fresh, err := s.accept(ctx, ev)
	if err != nil {
		return err
	}
	if fresh {
		s.Metrics.IntakeAccepted.WithLabelValues("schedule").Inc()
	}
	return nil
}

// registerWriterMetrics exports the group-commit writer's transactions
// and writes (their ratio is the batch size, what an fsync is shared by),
// and each transaction's duration and size: a webhook's answer waits for
// the end of the transaction under way, then for the next one.
func (s *Service) registerWriterMetrics(w *store.Writer) {
	txs := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sous_store_transactions_total",
		Help: "Transactions of the embedded store's group-commit writer."}, func() float64 { n, _ := w.Stats(); return float64(n) })
	ops := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sous_store_writes_total",
		Help: "Writes (intake, queue, run records) grouped into those transactions."}, func() float64 { _, n := w.Stats(); return float64(n) })
	took := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sous_store_transaction_seconds",
		Help:    "How long each transaction of the group-commit writer took, from its begin to its commit (fsync included).",
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 12)})
	size := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sous_store_transaction_writes",
		Help:    "Writes in each transaction of the group-commit writer.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	for _, c := range []prometheus.Collector{txs, ops, took, size} {
		if err := s.Metrics.Registry.Register(c); err != nil {
			s.log.Warn("register writer metrics", "error", err)
		}
	}
	w.Observe = func(n int, d time.Duration) {
		took.Observe(d.Seconds())
		size.Observe(float64(n))
	}
}
