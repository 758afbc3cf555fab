package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
)

// PollConfig configures the poller host (Engine.RunPollers).
type PollConfig struct {
	// Owner names this process in the pollers' leases. On a store of one
	// process's own (SQLite) it is the store's instance id, so that the
	// process takes its pollers back at once after a crash; on a shared one
	// (PostgreSQL), one id per process.
	Owner string
	// Connection resolves a recipe's connection by name.
	Connection func(name string) (*connector.Connection, error)
	// LeaseTTL is how long a lease lasts unrenewed: another process takes
	// a poller over that long after its poller died (DefaultLeaseTTL when
	// zero). A lease is renewed every third of it while the poller waits.
	LeaseTTL time.Duration
	// MaxBackoff bounds the wait after failed polls (DefaultPollBackoff
	// when zero); the first wait is a second, doubling, and never longer
	// than the poller's interval.
	MaxBackoff time.Duration
	Logger     *slog.Logger
}

// The poller host's defaults.
const (
	DefaultLeaseTTL    = 30 * time.Second
	DefaultPollBackoff = 5 * time.Minute
)

// RunPollers supervises the pollers the recipes need until ctx ends: one
// goroutine per poller (trigger, connection and options), started when a
// reload adds one and stopped when it goes. Each poller polls while this
// process holds its lease in the store, so that one process polls it at a
// time, and saves its cursor in the transaction that stores the events it
// produced: a crash between the two cannot lose an item or take one twice.
func (e *Engine) RunPollers(ctx context.Context, cfg PollConfig) {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultPollBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = e.log
	}
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	polls := map[string]*running{}
	var wg sync.WaitGroup
	defer func() {
		for _, r := range polls {
			r.cancel()
		}
		wg.Wait()
	}()
	var ix *Index
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if cur := e.Index(); cur != ix {
			ix = cur
			for key, r := range polls {
				if _, ok := ix.polls[key]; !ok {
					r.cancel()
					<-r.done
					delete(polls, key)
				}
			}
			for key := range ix.polls {
				if r, ok := polls[key]; ok {
					select {
					case <-r.done:
						// its loop ended by itself, having seen the key go
						// in an index between two of these looks: start it
						// again
						delete(polls, key)
					default:
						continue
					}
				}
				pctx, cancel := context.WithCancel(ctx)
				r := &running{cancel: cancel, done: make(chan struct{})}
				polls[key] = r
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer close(r.done)
					e.pollLoop(pctx, key, cfg)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollLoop runs one poller until ctx ends or the index no longer has it.
func (e *Engine) pollLoop(ctx context.Context, key string, cfg PollConfig) {
	log := cfg.Logger.With("poller", key)
	backoff := time.Duration(0)
	held := false
	defer func() {
		if held {
			// a clean stop: another process may take the poller at once
			if err := e.cfg.Store.ReleasePoll(context.WithoutCancel(ctx), key, cfg.Owner); err != nil {
				log.Warn("release the poller's lease", "error", err)
			}
		}
	}()
	for ctx.Err() == nil {
		p := e.Index().polls[key]
		if p == nil {
			return
		}
		interval := connector.DefaultPollInterval
		if f := p.Spec.Trigger.Interval; f != nil {
			if d := f(p.With); d > 0 {
				interval = d
			}
		}
		var cursor []byte
		var err error
		held, cursor, err = e.cfg.Store.LeasePoll(ctx, key, cfg.Owner, time.Now(), cfg.LeaseTTL)
		if err != nil {
			log.Warn("lease the poller", "error", err)
			e.pollWait(ctx, key, cfg, min(cfg.LeaseTTL/3, interval), false)
			continue
		}
		if !held {
			// another process polls it; take it over if its lease expires
			e.pollWait(ctx, key, cfg, cfg.LeaseTTL/3, false)
			continue
		}
		more, err := e.pollOnce(ctx, p, cursor, cfg, log)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrLeaseLost):
			log.Warn("the poller's lease was taken over: nothing of this poll was stored")
			e.cfg.Metrics.Polls.WithLabelValues(p.Spec.ID, "lease_lost").Inc()
			held = false
			continue
		case err != nil && !connector.Classify(err).Retryable && connector.Classify(err).Reason == connector.ReasonAuth:
			// the connection cannot authenticate until a person acts (a
			// refresh refused: needs_reauth): polling on would only fail
			log.Error("the poller is paused: its connection cannot authenticate", "retry_in", cfg.MaxBackoff, "error", err)
			e.cfg.Metrics.Polls.WithLabelValues(p.Spec.ID, "paused").Inc()
			e.pollWait(ctx, key, cfg, cfg.MaxBackoff, true)
			continue
		case err != nil:
			backoff = min(max(2*backoff, time.Second), cfg.MaxBackoff, interval)
			log.Warn("poll failed: retrying", "in", backoff, "error", err)
			e.cfg.Metrics.Polls.WithLabelValues(p.Spec.ID, "error").Inc()
			e.pollWait(ctx, key, cfg, backoff, true)
			continue
		}
		e.cfg.Metrics.Polls.WithLabelValues(p.Spec.ID, "ok").Inc()
		backoff = 0
		if more {
			continue
		}
		// up to a tenth more, so that pollers started together spread out
		jitter := time.Duration(rand.Int64N(int64(interval)/10 + 1))
		e.pollWait(ctx, key, cfg, interval+jitter, true)
	}
}

// pollWait waits for d or ctx, renewing the poller's lease every third of
// its TTL when renew (this process polls it).
func (e *Engine) pollWait(ctx context.Context, key string, cfg PollConfig, d time.Duration, renew bool) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		step := left
		if renew {
			step = min(left, cfg.LeaseTTL/3)
		}
		if runner.SleepContext(ctx, step) != nil {
			return
		}
		if renew && time.Until(deadline) > 0 {
			if ok, _, err := e.cfg.Store.LeasePoll(ctx, key, cfg.Owner, time.Now(), cfg.LeaseTTL); err != nil || !ok {
				return // the loop finds out who holds it now
			}
		}
	}
}

// pollOnce polls once from cursor and stores the events with the next
// cursor in one transaction. more reports that the poller asked to be
// polled again at once.
func (e *Engine) pollOnce(ctx context.Context, p *Poll, cursor []byte, cfg PollConfig, log *slog.Logger) (more bool, err error) {
	req := &connector.PollRequest{Type: p.Spec.ID, With: p.With, Cursor: cursor, Logger: log}
	if p.Connection != "" {
		if cfg.Connection == nil {
			return false, fmt.Errorf("connection %q: no connections are configured", p.Connection)
		}
		if req.Connection, err = cfg.Connection(p.Connection); err != nil {
			return false, err
		}
	}
	// a poll may take longer than a third of the lease: renew it meanwhile,
	// so that another process does not take over a poller at work
	renewCtx, stopRenew := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
				if ok, _, err := e.cfg.Store.LeasePoll(renewCtx, p.Key, cfg.Owner, time.Now(), cfg.LeaseTTL); err == nil && !ok {
					return // lost: SavePoll will say so
				}
			}
		}
	}()
	res, err := callPoller(ctx, p.Spec.Trigger.Poller, req)
	stopRenew()
	<-renewed
	if err != nil {
		return false, fmt.Errorf("poll %s: %w", p.Spec.ID, err)
	}
	if res == nil {
		res = &connector.PollResult{}
	}
	now := time.Now()
	evs := make([]*store.Event, 0, len(res.Events))
	ix := e.Index()
	for i := range res.Events {
		got := &res.Events[i]
		ev, err := polledEvent(ix, p, got, now)
		if err != nil {
			return false, err
		}
		if ev != nil {
			evs = append(evs, ev)
		}
	}
	next := []byte(res.Next)
	if next == nil {
		next = cursor
	}
	save := func(ctx context.Context, tx store.Execer) error {
		return e.cfg.Store.SavePoll(ctx, tx, p.Key, cfg.Owner, next, now)
	}
	n, err := e.cfg.Broker.AcceptAll(ctx, evs, save)
	if err != nil {
		return false, err
	}
	svc := p.Spec.Service()
	e.cfg.Metrics.IntakeAccepted.WithLabelValues(svc).Add(float64(n))
	if dups := len(evs) - n; dups > 0 {
		e.cfg.Metrics.IntakeDup.WithLabelValues(svc).Add(float64(dups))
	}
	if n > 0 || len(res.Events) > 0 {
		log.Debug("polled", "events", len(res.Events), "new", n)
	}
	return res.More, nil
}

// callPoller calls a connector's poller; a panic is an error of the
// poll, retried as any, rather than the end of the process.
func callPoller(ctx context.Context, p connector.Poller, req *connector.PollRequest) (res *connector.PollResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, fmt.Errorf("the poller panicked: %v", v)
		}
	}()
	// the connection's metrics count the poller's calls under its trigger
	return p.Poll(connector.WithCaller(ctx, req.Type), req)
}

// polledEvent is the stored event of an item a poller returned, for the
// recipes of the poller that match it; nil when none does.
func polledEvent(ix *Index, p *Poll, got *connector.Event, now time.Time) (*store.Event, error) {
	typ := cmp.Or(got.Type, p.Spec.ID)
	names := ix.Listeners(typ, p.Key, got)
	if len(names) == 0 {
		return nil, nil
	}
	ev, err := StoredEvent(typ, p.Key, names, got, now)
	if err != nil {
		return nil, fmt.Errorf("poll %s: %w", p.Spec.ID, err)
	}
	key := got.DedupKey
	if key == "" {
		key = ev.ID
	}
	ev.DedupKey = p.Key + ":" + key
	return ev, nil
}

// Listeners lists the recipes an event of type typ from key starts: the
// recipes indexed under them whose options match it (Trigger.Match).
func (ix *Index) Listeners(typ, key string, ev *connector.Event) []string {
	var names []string
	for _, rec := range ix.Match(typ, key) {
		if t := rec.Trigger.Spec.Trigger; t != nil && t.Match != nil && !t.Match(ix.Options(rec.Name), ev) {
			continue
		}
		names = append(names, rec.Name)
	}
	return names
}

// Respond is the immediate answer to a request whose event ev, of type typ
// from key, starts the recipes names (Listeners): the first answer a
// recipe's trigger gives from its options (Trigger.Respond), by name; nil
// when none does.
func (ix *Index) Respond(typ, key string, ev *connector.Event, names []string) (*connector.Reply, error) {
	for _, name := range names {
		rec := ix.Recipe(name)
		if rec == nil || rec.Trigger.Spec == nil || rec.Trigger.Spec.Trigger == nil || rec.Trigger.Spec.Trigger.Respond == nil {
			continue
		}
		reply, err := rec.Trigger.Spec.Trigger.Respond(ix.Options(name), ev)
		if err != nil {
			return nil, fmt.Errorf("recipe %s: %w", name, err)
		}
		if reply != nil {
			return reply, nil
		}
	}
	return nil, nil
}

// StoredEvent is the event to store of what a trigger reported, of type
// typ from source (its index key), for recipes: the payload's JSON as the
// trigger gave it or encoded, and the payload itself handed over to the
// matcher when it is what that JSON decodes to. The caller sets DedupKey.
func StoredEvent(typ, source string, recipes []string, got *connector.Event, now time.Time) (*store.Event, error) {
	ev := &store.Event{ID: NewEventID(), Type: typ, Source: source, ReceivedAt: now.UTC(), Recipes: recipes}
	ev.Payload = got.JSON
	if ev.Payload == nil {
		b, err := json.Marshal(got.Payload)
		if err != nil {
			return nil, fmt.Errorf("the event cannot be stored as JSON: %w", err)
		}
		ev.Payload = b
	}
	if got.Payload != nil && (got.JSON == nil || got.Exact) {
		ev.Decoded = got.Payload
	}
	return ev, nil
}
