package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/broker"
	natsbroker "github.com/sous-run/sous/engine/broker/nats"
	"github.com/sous-run/sous/engine/broker/postgres"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

// This file holds the harness the broker tests share (a sink, a recipe,
// engines, a load of events and the checks) and the PostgreSQL tests.

// brokerSink is the HTTP service the recipe's step calls: it counts the
// requests by Idempotency-Key, which the runner sets to run id + ":" +
// step, so a run executed twice shows as a key seen twice.
type brokerSink struct {
	srv   *httptest.Server
	delay time.Duration
	mu    sync.Mutex
	seen  map[string]int
}

func newBrokerSink(t *testing.T, delay time.Duration) *brokerSink {
	s := &brokerSink{delay: delay, seen: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		s.mu.Lock()
		s.seen[key]++
		s.mu.Unlock()
		time.Sleep(s.delay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *brokerSink) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.seen))
	for k, v := range s.seen {
		out[k] = v
	}
	return out
}

const brokerRecipe = `version: 1
name: broker-load
trigger:
  type: webhook.received
  with:
    path: /load
steps:
  - id: notify
    action: http.request
    with:
      url: "%s/notify"
      method: POST
      json:
        n: "{{ event.body.n }}"
`

func brokerIndex(t *testing.T, sinkURL string) *pipeline.Index {
	t.Helper()
	rec, diags := (&recipes.Loader{}).Parse("broker-load.yaml", fmt.Appendf(nil, brokerRecipe, sinkURL))
	require.False(t, diags.HasErrors(), "%v", diags)
	ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
	require.Empty(t, errs)
	return ix
}

// startEngine runs an engine over the broker until the test ends.
func startEngine(t *testing.T, st *store.Store, b broker.Broker, ix *pipeline.Index, owner string) *pipeline.Engine {
	t.Helper()
	eng, err := pipeline.New(pipeline.Config{Store: st, Broker: b, RunTimeout: 30 * time.Second,
		NewRunner: func() *runner.Runner { return &runner.Runner{} }})
	require.NoError(t, err)
	eng.SetIndex(ix)
	done := make(chan error, 1)
	go func() { done <- eng.Run(context.Background()) }()
	select {
	case <-eng.Running():
	case err := <-done:
		t.Fatalf("engine %s stopped at start: %v", owner, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("engine %s did not start", owner)
	}
	t.Cleanup(func() {
		require.NoError(t, eng.Close())
		require.NoError(t, <-done)
	})
	return eng
}

// brokerLoad is the events a test accepts: n events over distinct keys,
// every fifth one repeating an earlier key.
type brokerLoad struct {
	events []*store.Event
	fresh  map[string]bool // event id -> accepted as new
}

func newBrokerLoad(n int) *brokerLoad {
	l := &brokerLoad{fresh: map[string]bool{}}
	now := time.Now().UTC()
	for i := range n {
		key := i
		if i%5 == 4 {
			key = i - 3 // a duplicate of an earlier event
		}
		body, _ := json.Marshal(map[string]any{"body": map[string]any{"n": i}, "method": "POST", "path": "/load"})
		l.events = append(l.events, &store.Event{ID: pipeline.NewEventID(), Type: "webhook.received", Source: "/load",
			DedupKey: fmt.Sprintf("hook:/load:%d", key), ReceivedAt: now, Payload: body})
	}
	return l
}

func (l *brokerLoad) distinct() int {
	keys := map[string]bool{}
	for _, ev := range l.events {
		keys[ev.DedupKey] = true
	}
	return len(keys)
}

// accept sends the events concurrently, event i through accepters[i%len].
func (l *brokerLoad) accept(t *testing.T, accepters ...func(context.Context, *store.Event) (bool, error)) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, len(l.events))
	for i, ev := range l.events {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fresh, err := accepters[i%len(accepters)](context.Background(), ev)
			if err != nil {
				errs <- fmt.Errorf("accept %s: %w", ev.DedupKey, err)
				return
			}
			mu.Lock()
			l.fresh[ev.ID] = fresh
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.False(t, t.Failed())
	accepted := map[string]string{}
	for _, ev := range l.events {
		if l.fresh[ev.ID] {
			require.NotContains(t, accepted, ev.DedupKey, "key %s accepted twice", ev.DedupKey)
			accepted[ev.DedupKey] = ev.ID
		}
	}
	require.Len(t, accepted, l.distinct(), "one event accepted per dedup key")
}

// wait polls until every accepted event has its run recorded in the
// stores and the sink saw each run, then checks that nothing ran twice
// and that duplicates produced no run.
func (l *brokerLoad) wait(t *testing.T, sink *brokerSink, stores ...*store.Store) {
	t.Helper()
	ctx := context.Background()
	want := l.distinct()
	runs := map[string]*store.Run{}
	deadline := time.Now().Add(40 * time.Second)
	for {
		clear(runs)
		for _, st := range stores {
			list, err := st.ListRuns(ctx, store.RunFilter{Limit: 1000})
			require.NoError(t, err)
			for _, r := range list {
				require.NotContains(t, runs, r.ID, "run %s recorded by two stores", r.ID)
				runs[r.ID] = r
			}
		}
		if len(runs) >= want && len(sink.counts()) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 40s: %d runs recorded and %d seen by the sink, want %d", len(runs), len(sink.counts()), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// a late duplicate would show up now
	time.Sleep(500 * time.Millisecond)
	seen := sink.counts()
	require.Len(t, seen, want, "distinct idempotency keys at the sink")
	for key, n := range seen {
		require.Equal(t, 1, n, "run step %s executed %d times", key, n)
	}
	byEvent := map[string]string{}
	for _, ev := range l.events {
		runID := pipeline.RunID(ev.ID, "broker-load")
		if !l.fresh[ev.ID] {
			require.NotContains(t, runs, runID, "duplicate event %s has a run", ev.ID)
			continue
		}
		r, ok := runs[runID]
		require.True(t, ok, "event %s has no run", ev.ID)
		require.Equal(t, "succeeded", r.Status, "run %s: %s %s", r.ID, r.Reason, r.Error)
		require.Equal(t, ev.ID, r.EventID)
		require.Equal(t, 1, seen[runID+":notify"], "the sink saw run %s once", runID)
		byEvent[ev.ID] = runID
	}
	require.Len(t, byEvent, want)
	require.Len(t, runs, want, "one run per distinct event")
}

// testPostgres gives the test a PostgreSQL database of its own.
func testPostgres(t *testing.T) string { return storetest.Postgres(t) }

// openPostgresBroker opens a pool, a store and a broker on the database,
// as one `sous serve` process would; the caller closes them.
func openPostgresBroker(ctx context.Context, dsn, prefix string) (*store.Store, *postgres.Broker, error) {
	db, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	st := &store.Store{DB: db, Dialect: store.Postgres, Prefix: prefix}
	b, err := postgres.New(ctx, st, postgres.Config{Prefix: prefix, AckDeadline: time.Minute, PollInterval: 50 * time.Millisecond})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return st, b, nil
}

func closePostgresBroker(t *testing.T, st *store.Store, b *postgres.Broker) {
	t.Cleanup(func() {
		require.NoError(t, b.Close())
		require.NoError(t, st.DB.Close())
	})
}

func TestPostgresBroker(t *testing.T) {
	t.Parallel()
	dsn := testPostgres(t)
	ctx := context.Background()
	st, b, err := openPostgresBroker(ctx, dsn, "p_")
	require.NoError(t, err)
	closePostgresBroker(t, st, b)
	sink := newBrokerSink(t, 0)
	load := newBrokerLoad(200)

	// accept before the engine runs: the messages wait in their table,
	// one per distinct event, none for a duplicate
	start := time.Now()
	load.accept(t, b.Accept)
	acceptTime := time.Since(start)
	var published int64
	require.NoError(t, st.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM "p_watermill_events"`).Scan(&published))
	require.Equal(t, int64(load.distinct()), published, "one message per accepted event")
	require.Equal(t, int64(load.distinct()), b.Depth(ctx, broker.TopicEvents))
	for _, ev := range load.events {
		if load.fresh[ev.ID] {
			got, err := st.GetEvent(ctx, ev.ID)
			require.NoError(t, err)
			require.JSONEq(t, string(ev.Payload), string(got.Payload))
		} else {
			_, err := st.GetEvent(ctx, ev.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "a duplicate is not stored")
		}
	}

	start = time.Now()
	startEngine(t, st, b, brokerIndex(t, sink.srv.URL), "engine-1")
	load.wait(t, sink, st)
	t.Logf("postgres: accepted %d events in %s (%.0f/s); ran %d runs in %s (%.0f/s, including start and the 500ms settle)",
		len(load.events), acceptTime, float64(len(load.events))/acceptTime.Seconds(),
		load.distinct(), time.Since(start), float64(load.distinct())/time.Since(start).Seconds())

	// every message acknowledged: nothing waits, and compaction removes them
	require.Eventually(t, func() bool {
		return b.Depth(ctx, broker.TopicEvents) == 0 && b.Depth(ctx, broker.TopicRuns) == 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Zero(t, b.Depth(ctx, broker.TopicDeadLetters))
	n, err := b.Compact(ctx)
	require.NoError(t, err)
	require.Positive(t, n)

	// a duplicate accepted now, while everything ran, still runs nothing
	dup := *load.events[0]
	dup.ID = pipeline.NewEventID()
	fresh, err := b.Accept(ctx, &dup)
	require.NoError(t, err)
	require.False(t, fresh)
	require.Zero(t, b.Depth(ctx, broker.TopicEvents))
}

// TestPostgresBrokerTwoEngines runs two engines, each with its own pool as
// two processes would, on one database: they share the work, and no run
// executes twice.
func TestPostgresBrokerTwoEngines(t *testing.T) {
	t.Parallel()
	dsn := testPostgres(t)
	ctx := context.Background()
	// the sink takes a little time, as a real service would, so that the
	// runs overlap
	sink := newBrokerSink(t, 2*time.Millisecond)
	ix := brokerIndex(t, sink.srv.URL)
	type proc struct {
		st  *store.Store
		b   *postgres.Broker
		eng *pipeline.Engine
	}
	// both start at once: their migrations must not race
	procs := make([]*proc, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &proc{}
			p.st, p.b, errs[i] = openPostgresBroker(ctx, dsn, "two_")
			procs[i] = p
		}()
	}
	wg.Wait()
	for i, p := range procs {
		require.NoError(t, errs[i])
		closePostgresBroker(t, p.st, p.b)
	}
	for i, p := range procs {
		p.eng = startEngine(t, p.st, p.b, ix, fmt.Sprintf("engine-%d", i+1))
	}

	load := newBrokerLoad(200)
	start := time.Now()
	// events alternate between the processes, as behind a load balancer;
	// a key and its duplicate often reach different processes
	load.accept(t, procs[0].b.Accept, procs[1].b.Accept)
	load.wait(t, sink, procs[0].st)
	elapsed := time.Since(start)
	d1, d2 := procs[0].eng.Delivered.Load(), procs[1].eng.Delivered.Load()
	t.Logf("postgres, two engines: %d runs in %s (%.0f/s, including the 500ms settle); engine-1 ran %d, engine-2 ran %d",
		load.distinct(), elapsed, float64(load.distinct())/elapsed.Seconds(), d1, d2)
	require.Equal(t, int64(load.distinct()), d1+d2, "each run finished once")
	require.Positive(t, d1, "engine-1 took part")
	require.Positive(t, d2, "engine-2 took part")
	require.Eventually(t, func() bool { return procs[0].b.Depth(ctx, broker.TopicRuns) == 0 }, 10*time.Second, 50*time.Millisecond)
}

// The shared broker suite (suite_test.go) runs on PostgreSQL too: each
// open is one process on a database that outlives it.
func init() {
	extraSuiteBrokers = append(extraSuiteBrokers, brokerCase{name: "postgres", durable: true,
		backing: func(t *testing.T) func(t *testing.T) opened {
			dsn := testPostgres(t)
			return func(t *testing.T) opened {
				st, b, err := openPostgresBroker(context.Background(), dsn, "s_")
				require.NoError(t, err)
				return opened{st: st, b: b, close: func() {
					require.NoError(t, b.Close())
					require.NoError(t, st.DB.Close())
				}}
			}
		}})
}

// retrySink is the service of the durable retry tests: it answers the
// first call of each run step (by Idempotency-Key) 503 with Retry-After,
// and every later one 200; calls under /fast always succeed. It records
// when each call came.
type retrySink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls map[string][]time.Time
}

func newRetrySink(t *testing.T, retryAfter string) *retrySink {
	s := &retrySink{calls: map[string][]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		s.mu.Lock()
		s.calls[key] = append(s.calls[key], time.Now())
		n := len(s.calls[key])
		s.mu.Unlock()
		if n == 1 && r.URL.Path != "/fast" {
			w.Header().Set("Retry-After", retryAfter)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *retrySink) times(key string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls[key]...)
}

// retryIndex holds recipe "retried" (path /retry), whose one step meets
// the sink's 503 first, and recipe "fast" (path /fast), which succeeds.
func retryIndex(t *testing.T, sinkURL string) *pipeline.Index {
	t.Helper()
	var recs []*recipes.Recipe
	for _, name := range []string{"retried", "fast"} {
		path := "/retry"
		if name == "fast" {
			path = "/fast"
		}
		recs = append(recs, parseRecipe(t, fmt.Sprintf(`version: 1
name: %s
trigger: {type: webhook.received, with: {path: %s}}
steps:
  - id: call
    action: http.request
    with: {url: "%s%s"}
`, name, path, sinkURL, path)))
	}
	ix, errs := pipeline.BuildIndex(recs, nil)
	require.Empty(t, errs)
	return ix
}

// checkRetried checks a run of recipe "retried": it succeeded at its
// second attempt, made no sooner than Retry-After (wait) after the first,
// and the sink saw its step exactly twice.
func checkRetried(t *testing.T, run *store.Run, sink *retrySink, wait time.Duration) {
	t.Helper()
	require.Equal(t, "succeeded", run.Status, "run %s: %s %s", run.ID, run.Reason, run.Error)
	require.Equal(t, 1, run.Retries, "run %s", run.ID)
	var res runner.Result
	require.NoError(t, json.Unmarshal(run.Record, &res))
	require.Len(t, res.Steps, 1)
	att := res.Steps[0].Attempts
	require.Len(t, att, 2, "run %s: both attempts recorded", run.ID)
	require.Equal(t, "server_error", att[0].Reason)
	require.GreaterOrEqual(t, att[1].Started.Sub(att[0].Started), wait, "run %s: retried before its time", run.ID)
	calls := sink.times(run.ID + ":call")
	require.Len(t, calls, 2, "run %s: the step was called twice, no more", run.ID)
}

// TestPostgresDurableRetryTwoEngines: two processes on one database take
// the due retries up between them, each once, on time.
func TestPostgresDurableRetryTwoEngines(t *testing.T) {
	t.Parallel()
	dsn := testPostgres(t)
	ctx := context.Background()
	sink := newRetrySink(t, "1")
	ix := retryIndex(t, sink.srv.URL)
	var procs []opened
	var engines []*engineRun
	for i := range 2 {
		st, b, err := openPostgresBroker(ctx, dsn, "dr_")
		require.NoError(t, err)
		o := opened{st: st, b: b, close: func() {
			require.NoError(t, b.Close())
			require.NoError(t, st.DB.Close())
		}}
		t.Cleanup(o.close)
		er := runEngine(t, o, ix, fmt.Sprintf("engine-%d", i+1))
		t.Cleanup(func() { er.stop(t) })
		procs, engines = append(procs, o), append(engines, er)
	}
	const n = 24
	var runIDs []string
	for i := range n {
		ev := webhookEvent(t, "/retry", map[string]any{"n": i})
		fresh, err := procs[i%2].b.Accept(ctx, ev)
		require.NoError(t, err)
		require.True(t, fresh)
		runIDs = append(runIDs, pipeline.RunID(ev.ID, "retried"))
	}
	runs := map[string]*store.Run{}
	for _, id := range runIDs {
		runs[id] = waitRun(t, procs[0].st, id)
	}
	// a retry taken up twice would show up now
	time.Sleep(1500 * time.Millisecond)
	for _, id := range runIDs {
		checkRetried(t, runs[id], sink, time.Second)
	}
	d1, d2 := engines[0].eng.Delivered.Load(), engines[1].eng.Delivered.Load()
	t.Logf("postgres, two engines: %d durable retries; engine-1 finished %d runs, engine-2 %d", n, d1, d2)
	require.Equal(t, int64(n), d1+d2, "each run finished once")
	left, err := procs[0].st.CountScheduled(ctx, broker.TopicRuns)
	require.NoError(t, err)
	require.Zero(t, left, "every scheduled retry was published")
	require.Eventually(t, func() bool { return procs[0].b.Depth(ctx, broker.TopicRuns) == 0 },
		10*time.Second, 20*time.Millisecond)
}

// TestDurableRetryHoldsNoWorker: a run waiting for its retry holds no
// partition (PostgreSQL), worker or place of MaxAckPending (NATS): with
// room for one run at a time and two deliveries pending, a run accepted
// after three others paused finishes before their retries.
func TestDurableRetryHoldsNoWorker(t *testing.T) {
	cases := []struct {
		name string
		open func(t *testing.T) opened
	}{
		{"postgres", func(t *testing.T) opened {
			ctx := context.Background()
			db, err := store.OpenPostgres(ctx, testPostgres(t))
			require.NoError(t, err)
			st := &store.Store{DB: db, Dialect: store.Postgres}
			b, err := postgres.New(ctx, st, postgres.Config{RunPartitions: 1, AckDeadline: time.Minute, PollInterval: 50 * time.Millisecond})
			require.NoError(t, err)
			return opened{st: st, b: b, close: func() {
				require.NoError(t, b.Close())
				require.NoError(t, db.Close())
			}}
		}},
		{"nats", func(t *testing.T) opened {
			u, prefix := testNATS(t)
			st := openOwnStore(t)
			b, err := natsbroker.New(context.Background(), st, natsbroker.Config{URL: u, Prefix: prefix, AckWait: time.Minute,
				Concurrency: 1, MaxAckPending: 2})
			require.NoError(t, err)
			return opened{st: st, b: b, close: func() { require.NoError(t, b.Close()) }}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			sink := newRetrySink(t, "3")
			o := c.open(t)
			t.Cleanup(o.close)
			er := runEngine(t, o, retryIndex(t, sink.srv.URL), "one")
			t.Cleanup(func() { er.stop(t) })

			var slowIDs []string
			for i := range 3 {
				slow := webhookEvent(t, "/retry", map[string]any{"n": i})
				_, err := o.b.Accept(ctx, slow)
				require.NoError(t, err)
				slowIDs = append(slowIDs, pipeline.RunID(slow.ID, "retried"))
			}
			require.Eventually(t, func() bool {
				for _, id := range slowIDs {
					if cp, err := o.st.Checkpoint(ctx, id); err != nil || cp == nil {
						return false
					}
				}
				return true
			}, 10*time.Second, 10*time.Millisecond, "the runs did not pause")
			fast := webhookEvent(t, "/fast", map[string]any{})
			_, err := o.b.Accept(ctx, fast)
			require.NoError(t, err)

			fastRun := waitRun(t, o.st, pipeline.RunID(fast.ID, "fast"))
			require.Equal(t, "succeeded", fastRun.Status)
			for _, id := range slowIDs {
				slowRun := waitRun(t, o.st, id)
				checkRetried(t, slowRun, sink, 3*time.Second)
				retried := sink.times(id + ":call")[1]
				require.True(t, fastRun.FinishedAt.Before(retried),
					"the run accepted during the wait finished at %s, after a retry at %s", fastRun.FinishedAt, retried)
			}
			require.Eventually(t, func() bool { return o.b.Depth(ctx, broker.TopicRuns) == 0 },
				10*time.Second, 20*time.Millisecond, "nothing is left waiting")
		})
	}
}
