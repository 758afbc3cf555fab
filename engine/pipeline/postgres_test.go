package pipeline_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
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
func startEngine(t *testing.T, st *store.Store, b pipeline.Broker, ix *pipeline.Index, owner string) *pipeline.Engine {
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testPostgres gives the test a PostgreSQL database of its own.
func testPostgres(t *testing.T) string { return storetest.Postgres(t) }

// openPostgresBroker opens a pool, a store and a broker on the database,
// as one `sous serve` process would; the caller closes them.
func openPostgresBroker(ctx context.Context, dsn, prefix string) (*store.Store, *pipeline.PostgresBroker, error) {
	db, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	st := &store.Store{DB: db, Dialect: store.Postgres, Prefix: prefix}
	b, err := pipeline.NewPostgresBroker(ctx, st, pipeline.PostgresConfig{Prefix: prefix, AckDeadline: time.Minute, PollInterval: 50 * time.Millisecond})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return st, b, nil
}

func closePostgresBroker(t *testing.T, st *store.Store, b *pipeline.PostgresBroker) {
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
	require.Equal(t, int64(load.distinct()), b.Depth(ctx, pipeline.TopicEvents))
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
		return b.Depth(ctx, pipeline.TopicEvents) == 0 && b.Depth(ctx, pipeline.TopicRuns) == 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Zero(t, b.Depth(ctx, pipeline.TopicDeadLetters))
	n, err := b.Compact(ctx)
	require.NoError(t, err)
	require.Positive(t, n)

	// a duplicate accepted now, while everything ran, still runs nothing
	dup := *load.events[0]
	dup.ID = pipeline.NewEventID()
	fresh, err := b.Accept(ctx, &dup)
	require.NoError(t, err)
	require.False(t, fresh)
	require.Zero(t, b.Depth(ctx, pipeline.TopicEvents))
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
		b   *pipeline.PostgresBroker
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
	require.Eventually(t, func() bool { return procs[0].b.Depth(ctx, pipeline.TopicRuns) == 0 }, 10*time.Second, 50*time.Millisecond)
}

// TestPostgresBrokerPrefix checks the broker refuses a prefix that would
// reach into SQL, and a store of another dialect.
func TestPostgresBrokerPrefix(t *testing.T) {
	ctx := context.Background()
	_, err := pipeline.NewPostgresBroker(ctx, &store.Store{Dialect: store.Postgres}, pipeline.PostgresConfig{Prefix: `x"; DROP TABLE y; --`})
	require.ErrorContains(t, err, "prefix")
	_, err = pipeline.NewPostgresBroker(ctx, &store.Store{Dialect: store.SQLite}, pipeline.PostgresConfig{})
	require.ErrorContains(t, err, "dialect")
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
