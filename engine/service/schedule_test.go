package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/nats/natstest"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/metrics"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
	"github.com/sous-run/sous/recipes"
)

func cronRecipe(name, cron, zone, sinkURL string) string {
	return fmt.Sprintf(`version: 1
name: %s
trigger: {type: schedule.cron, with: {cron: "%s", timezone: %s}}
steps:
  - id: call
    action: http.request
    with: {url: "%s/%s", json: {at: "{{ event.scheduled_at }}"}}
`, name, cron, zone, sinkURL, name)
}

// tickOf is a run's event: its scheduled and fired times.
type tickOf struct {
	run       *store.Run
	scheduled time.Time
	fired     time.Time
	raw       string // scheduled_at as stored
}

func ticks(t *testing.T, st *store.Store, recipe string) []tickOf {
	t.Helper()
	var out []tickOf
	for _, run := range runsOf(t, st, recipe) {
		ev, err := st.GetEvent(context.Background(), run.EventID)
		require.NoError(t, err)
		var p struct {
			ScheduledAt string `json:"scheduled_at"`
			FiredAt     string `json:"fired_at"`
		}
		require.NoError(t, json.Unmarshal(ev.Payload, &p))
		sched, err := time.Parse(time.RFC3339Nano, p.ScheduledAt)
		require.NoError(t, err)
		fired, err := time.Parse(time.RFC3339Nano, p.FiredAt)
		require.NoError(t, err)
		out = append(out, tickOf{run: run, scheduled: sched, fired: fired, raw: p.ScheduledAt})
	}
	return out
}

// onePerTick checks that no tick has more than one run, and returns the
// runs by tick.
func onePerTick(t *testing.T, ts []tickOf) map[int64]tickOf {
	t.Helper()
	by := map[int64]tickOf{}
	for _, tk := range ts {
		if prev, dup := by[tk.scheduled.Unix()]; dup {
			t.Fatalf("tick %s ran twice: runs %s and %s", tk.raw, prev.run.ID, tk.run.ID)
		}
		by[tk.scheduled.Unix()] = tk
	}
	return by
}

// TestScheduleEverySecond: @every 1s fires about once a second, on the
// second, one run per tick, each run calling the step once.
func TestScheduleEverySecond(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "@every 1s", "UTC", sk.srv.URL))
	r := start(t, dataDir, recipesDir)
	time.Sleep(3500 * time.Millisecond)
	require.NoError(t, r.stop(t))

	ts := ticks(t, openStore(t, dataDir), "tick")
	require.GreaterOrEqual(t, len(ts), 3, "3.5 s of @every 1s")
	require.LessOrEqual(t, len(ts), 4, "3.5 s of @every 1s")
	by := onePerTick(t, ts)
	var first, last int64
	for sec, tk := range by {
		require.Equal(t, "succeeded", tk.run.Status, "%s %s", tk.run.Reason, tk.run.Error)
		require.Zero(t, tk.scheduled.Nanosecond(), "scheduled_at is on the second")
		require.True(t, tk.raw[len(tk.raw)-1] == 'Z', "scheduled_at is in UTC: %s", tk.raw)
		d := tk.fired.Sub(tk.scheduled)
		require.True(t, d >= 0 && d < time.Second, "fired %s after its tick", d)
		if first == 0 || sec < first {
			first = sec
		}
		last = max(last, sec)
	}
	require.Equal(t, int64(len(by)-1), last-first, "the ticks are consecutive seconds")

	// the sink saw each tick once
	seen := map[string]int{}
	for _, c := range sk.snapshot() {
		seen[c.Body["at"].(string)]++
	}
	require.Len(t, seen, len(ts))
	for at, n := range seen {
		require.Equal(t, 1, n, "tick %s called the step %d times", at, n)
	}
}

// TestScheduleNoDoubleFireAcrossRestart: a service stopped right after a
// tick and another started on the same data in the same second do not
// run a tick twice, even when the second one fires that tick again.
func TestScheduleNoDoubleFireAcrossRestart(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "@every 1s", "UTC", sk.srv.URL))

	first := start(t, dataDir, recipesDir)
	require.Eventually(t, func() bool { return len(sk.snapshot()) >= 1 }, 5*time.Second, 2*time.Millisecond, "no tick")
	require.NoError(t, first.stop(t))
	firstTick, err := time.Parse(time.RFC3339, sk.snapshot()[0].Body["at"].(string))
	require.NoError(t, err)

	second := start(t, dataDir, recipesDir)
	// the second process fires the first one's tick once more, as a
	// process would whose clock or schedule saw it due again
	rec := second.svc.Engine.Index().Recipe("tick")
	require.NotNil(t, rec)
	second.svc.fire(context.Background(), rec, firstTick, time.Now(), time.Time{})
	time.Sleep(2200 * time.Millisecond)
	require.NoError(t, second.stop(t))

	ts := ticks(t, openStore(t, dataDir), "tick")
	by := onePerTick(t, ts)
	require.Contains(t, by, firstTick.Unix())
	require.GreaterOrEqual(t, len(by), 3, "both processes fired")
	seen := map[string]int{}
	for _, c := range sk.snapshot() {
		seen[c.Body["at"].(string)]++
	}
	for at, n := range seen {
		require.Equal(t, 1, n, "tick %s called the step %d times", at, n)
	}
}

// TestScheduleSeveralProcesses: two processes sharing a broker (and, on
// PostgreSQL, the store) both fire every tick of a schedule; each tick
// runs once, and its step is called once.
func TestScheduleSeveralProcesses(t *testing.T) {
	for _, tt := range []struct {
		name   string
		broker func(t *testing.T) BrokerSettings
		// stores opens, once the processes stopped, the stores they
		// recorded runs in
		stores func(t *testing.T, set BrokerSettings, dataDirs []string) []*store.Store
	}{
		{"postgres", func(t *testing.T) BrokerSettings {
			return BrokerSettings{Type: "postgres", URL: storetest.Postgres(t)}
		}, func(t *testing.T, set BrokerSettings, _ []string) []*store.Store {
			db, err := store.OpenPostgres(context.Background(), set.URL)
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return []*store.Store{{DB: db, Dialect: store.Postgres}}
		}},
		{"nats", func(t *testing.T) BrokerSettings {
			url, prefix := natstest.NATS(t)
			return BrokerSettings{Type: "nats", URL: url, Prefix: prefix, AckWait: 30 * time.Second}
		}, func(t *testing.T, set BrokerSettings, dataDirs []string) []*store.Store {
			var out []*store.Store
			for _, dir := range dataDirs {
				st := openStore(t, dir)
				st.Prefix = set.Prefix
				out = append(out, st)
			}
			return out
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sk := newSink(t, 0)
			recipesDir := t.TempDir()
			writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "@every 1s", "UTC", sk.srv.URL))
			set := testSettings()
			set.Broker = tt.broker(t)
			var procs []*running
			var dataDirs []string
			for range 2 {
				dataDirs = append(dataDirs, t.TempDir())
				procs = append(procs, startWith(t, dataDirs[len(dataDirs)-1], recipesDir, set))
			}
			time.Sleep(3500 * time.Millisecond)
			for _, p := range procs {
				require.NoError(t, p.stop(t))
			}
			seen := map[string]int{}
			for _, c := range sk.snapshot() {
				seen[c.Body["at"].(string)]++
			}
			require.GreaterOrEqual(t, len(seen), 3, "3.5 s of @every 1s")
			for at, n := range seen {
				require.Equal(t, 1, n, "tick %s called the step %d times", at, n)
			}
			runs := 0
			for _, st := range tt.stores(t, set.Broker, dataDirs) {
				for _, run := range runsOf(t, st, "tick") {
					require.Equal(t, "succeeded", run.Status, "%s %s", run.Reason, run.Error)
					runs++
				}
			}
			require.Equal(t, len(seen), runs, "one run per tick")
		})
	}
}

// TestScheduleTimeZone: a cron read in Asia/Tokyo computes its ticks in
// that zone, and scheduled_at carries the zone's offset.
func TestScheduleTimeZone(t *testing.T) {
	spec, ok := connector.Default.Lookup("schedule.cron")
	require.True(t, ok)
	src := cronRecipe("tokyo", "0 9 * * *", "Asia/Tokyo", "http://127.0.0.1:1")
	rec, diags := (&recipes.Loader{}).Parse("tokyo.yaml", []byte(src))
	require.False(t, diags.HasErrors(), "%v", diags)
	opts, err := rec.Trigger.Options(nil)
	require.NoError(t, err)
	next, err := spec.Schedule(opts)
	require.NoError(t, err)
	// 09:00 in Tokyo is 00:00 UTC
	got := next(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	require.True(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Equal(got), "got %s", got)
	require.Equal(t, "2026-03-02T09:00:00+09:00", got.Format(time.RFC3339))

	// in the service: every minute, fired by hand rather than waited for
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tokyo.yaml", cronRecipe("tokyo", "* * * * *", "Asia/Tokyo", sk.srv.URL))
	r := start(t, dataDir, recipesDir)
	live := r.svc.Engine.Index().Recipe("tokyo")
	require.NotNil(t, live)
	opts, err = live.Trigger.Options(nil)
	require.NoError(t, err)
	next, err = spec.Schedule(opts)
	require.NoError(t, err)
	tick := next(time.Now())
	_, offset := tick.Zone()
	require.Equal(t, 9*3600, offset)
	require.Zero(t, tick.Second())
	r.svc.fire(context.Background(), live, tick, time.Now(), time.Time{})
	require.Eventually(t, func() bool { return len(sk.snapshot()) >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))

	want := tick.Format(time.RFC3339)
	require.Regexp(t, `T\d\d:\d\d:00\+09:00$`, want)
	require.Equal(t, want, sk.snapshot()[0].Body["at"], "the step saw the tick in Tokyo time")
	var found bool
	for _, tk := range ticks(t, openStore(t, dataDir), "tokyo") {
		if tk.raw == want {
			found = true
			require.Equal(t, "succeeded", tk.run.Status)
		}
	}
	require.True(t, found, "no run for the tick %s", want)
}

// TestScheduleSurvivesReloads: reloading the recipes folder (here for a
// file unrelated to the schedule) does not skip ticks.
func TestScheduleSurvivesReloads(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "@every 1s", "UTC", sk.srv.URL))
	r := start(t, dataDir, recipesDir)
	stop := time.Now().Add(3500 * time.Millisecond)
	for i := 0; time.Now().Before(stop); i++ {
		writeRecipe(t, recipesDir, "other.yaml", hookRecipe("other", "/other", sk.srv.URL, fmt.Sprintf("/other-%d", i)))
		time.Sleep(120 * time.Millisecond)
	}
	require.NoError(t, r.stop(t))
	require.Greater(t, r.log.count("recipes reloaded"), 10)

	ts := ticks(t, openStore(t, dataDir), "tick")
	by := onePerTick(t, ts)
	require.GreaterOrEqual(t, len(by), 3, "ticks were skipped while the folder reloaded")
}

// fakeStore is an Accept that fails the first fails calls (all of them
// when fails < 0), then stores; it can end a context at a given call.
type fakeStore struct {
	mu       sync.Mutex
	fails    int
	cancelAt int // the call that ends cancel's context (0: none)
	cancel   context.CancelFunc
	calls    []*store.Event
	stored   map[string]bool // by dedup key
}

func (f *fakeStore) accept(_ context.Context, ev *store.Event) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ev)
	if len(f.calls) == f.cancelAt {
		f.cancel()
	}
	if f.fails < 0 || len(f.calls) <= f.fails {
		return false, errors.New("database is locked")
	}
	if f.stored[ev.DedupKey] {
		return false, nil
	}
	f.stored[ev.DedupKey] = true
	return true, nil
}

// fakeClock stands for time in tickRetry: a sleep returns at once and
// moves the clock on.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) retry() tickRetry {
	return tickRetry{
		now: func() time.Time {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.now
		},
		sleep: func(ctx context.Context, d time.Duration) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.sleeps = append(c.sleeps, d)
			c.now = c.now.Add(d)
			return nil
		},
	}
}

func ms(ns ...int) []time.Duration {
	var out []time.Duration
	for _, n := range ns {
		out = append(out, time.Duration(n)*time.Millisecond)
	}
	return out
}

// TestScheduleTickRetry: a tick whose Accept fails is tried again with a
// doubling delay (100 ms up to 5 s) under the same event and dedup key,
// until it is stored, the recipe's next tick comes, a minute has passed
// since the tick, or the context ends. The clock is a fake: nothing waits.
func TestScheduleTickRetry(t *testing.T) {
	tick := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rec := &recipes.Recipe{Name: "tick", Trigger: recipes.Trigger{Type: "schedule.cron"}}
	tests := []struct {
		name     string
		fails    int // -1: always
		now      time.Time
		next     time.Time
		cancelAt int
		attempts int
		sleeps   []time.Duration
		stored   bool
		log      string
	}{
		{name: "stored at once", fails: 0, attempts: 1, sleeps: ms(), stored: true},
		{name: "stored at the fourth attempt", fails: 3, next: tick.Add(time.Hour),
			attempts: 4, sleeps: ms(100, 200, 400), stored: true, log: "schedule tick stored after a retry"},
		{name: "the delay stops doubling at 5 s", fails: 9, next: tick.Add(time.Hour),
			attempts: 10, sleeps: ms(100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000), stored: true},
		{name: "no next tick: retried for a minute", fails: -1,
			attempts: 18, sleeps: ms(100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 3700),
			log: "schedule tick lost: not stored before it stopped being relevant"},
		{name: "until the next tick", fails: -1, next: tick.Add(time.Second),
			attempts: 5, sleeps: ms(100, 200, 400, 300), log: "schedule tick lost: not stored before it stopped being relevant"},
		{name: "stored just before the next tick", fails: 4, next: tick.Add(time.Second),
			attempts: 5, sleeps: ms(100, 200, 400, 300), stored: true},
		{name: "a next tick after a minute: the minute is the bound", fails: -1, next: tick.Add(2 * time.Minute),
			attempts: 18, sleeps: ms(100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 3700)},
		{name: "fired late: retried until a minute after the tick", fails: -1, now: tick.Add(50 * time.Second),
			attempts: 8, sleeps: ms(100, 200, 400, 800, 1600, 3200, 3700)},
		{name: "fired after the window: not retried", fails: -1, now: tick.Add(time.Minute),
			attempts: 1, sleeps: ms(), log: "schedule tick not stored"},
		{name: "fired at its next tick: not retried", fails: -1, now: tick.Add(time.Second), next: tick.Add(time.Second),
			attempts: 1, sleeps: ms()},
		{name: "the context ends while retrying", fails: -1, cancelAt: 3,
			attempts: 3, sleeps: ms(100, 200), log: "schedule tick lost: stopped while retrying"},
		{name: "the context ends with the first attempt", fails: -1, cancelAt: 1,
			attempts: 1, sleeps: ms(), log: "schedule tick not stored"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fs := &fakeStore{fails: tc.fails, cancelAt: tc.cancelAt, cancel: cancel, stored: map[string]bool{}}
			now := tc.now
			if now.IsZero() {
				now = tick
			}
			clock := &fakeClock{now: now}
			lb := &logBuffer{}
			s := &Service{Metrics: metrics.New(), log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
				accept: fs.accept, retry: clock.retry()}

			s.fire(ctx, rec, tick, now, tc.next)
			s.tickRetries.Wait()

			require.Len(t, fs.calls, tc.attempts, "log:\n%s", lb.String())
			require.Equal(t, tc.sleeps, clock.sleeps)
			for _, ev := range fs.calls {
				require.Same(t, fs.calls[0], ev, "every attempt stores the same event")
			}
			require.Equal(t, fmt.Sprintf("tick:tick:%d", tick.Unix()), fs.calls[0].DedupKey)
			want := 0.0
			if tc.stored {
				want = 1
			}
			require.Equal(t, tc.stored, fs.stored[fs.calls[0].DedupKey])
			require.Equal(t, want, counterValue(t, s.Metrics.IntakeAccepted.WithLabelValues("schedule")))
			if tc.log != "" {
				require.Contains(t, lb.String(), tc.log)
			}
			if !tc.stored {
				require.Contains(t, lb.String(), "level=ERROR", "a lost tick is an error")
			}
		})
	}
}

// TestScheduleTickRetryStore: on the real store, a tick stored at its
// third attempt is stored once, and firing it again is a duplicate.
func TestScheduleTickRetryStore(t *testing.T) {
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "* * * * *", "UTC", "http://127.0.0.1:1"))
	svc, err := Open(context.Background(), Options{RecipesDir: recipesDir, Listen: "127.0.0.1:0", DataDir: dataDir, Settings: testSettings()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.listener.Close(); svc.closeAll() })
	rec := svc.Engine.Index().Recipe("tick")
	require.NotNil(t, rec)

	tick := time.Now().Truncate(time.Minute)
	tests := []struct {
		name     string
		fails    int
		attempts int
		fresh    float64 // the accepted counter after the call
	}{
		{name: "stored at the third attempt", fails: 2, attempts: 3, fresh: 1},
		{name: "fired again: a duplicate", fails: 1, attempts: 2, fresh: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []*store.Event
			svc.accept = func(ctx context.Context, ev *store.Event) (bool, error) {
				calls = append(calls, ev)
				if len(calls) <= tc.fails {
					return false, errors.New("store unavailable")
				}
				return svc.Engine.Accept(ctx, ev)
			}
			clock := &fakeClock{now: tick}
			svc.retry = clock.retry()
			svc.fire(context.Background(), rec, tick, tick, tick.Add(time.Minute))
			svc.tickRetries.Wait()
			require.Len(t, calls, tc.attempts)
			require.Equal(t, tc.fresh, counterValue(t, svc.Metrics.IntakeAccepted.WithLabelValues("schedule")))
			var n int
			require.NoError(t, svc.Store.DB.QueryRow(`SELECT COUNT(*) FROM events WHERE dedup_key = ?`,
				fmt.Sprintf("tick:tick:%d", tick.Unix())).Scan(&n))
			require.Equal(t, 1, n, "the tick is stored once")
		})
	}
}

// counterValue reads a counter.
func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	require.NoError(tb, c.Write(&m))
	return m.GetCounter().GetValue()
}
