package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
)

// testPostgres gives the test a PostgreSQL database of its own.
func testPostgres(t *testing.T) string { return storetest.Postgres(t) }

// backends runs a test against a fresh store on SQLite and on PostgreSQL.
func backends(t *testing.T, test func(t *testing.T, st *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		write, read, err := store.OpenSQLite(ctx, t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { read.Close(); write.Close() })
		st := &store.Store{DB: read, Write: write, Dialect: store.SQLite, Prefix: "t_"}
		require.NoError(t, st.Migrate(ctx))
		require.NoError(t, brokerTables(ctx, st))
		test(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db, err := store.OpenPostgres(ctx, testPostgres(t))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		st := &store.Store{DB: db, Dialect: store.Postgres, Prefix: "t_"}
		require.NoError(t, st.Migrate(ctx))
		require.NoError(t, brokerTables(ctx, st))
		// migrating again changes nothing
		require.NoError(t, st.Migrate(ctx))
		require.NoError(t, brokerTables(ctx, st))
		test(t, st)
	})
}

// inTx runs fn in a transaction on the store's write handle.
func inTx(t testing.TB, st *store.Store, fn func(tx *sql.Tx) error) error {
	t.Helper()
	db := st.Write
	if db == nil {
		db = st.DB
	}
	tx, err := db.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	if err := fn(tx); err != nil {
		require.NoError(t, tx.Rollback())
		return err
	}
	return tx.Commit()
}

func TestDedupAndEvents(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		ev := &store.Event{ID: "ev_1", Type: "webhook.received", Source: "/orders", DedupKey: "hook:/orders:42",
			ReceivedAt: now, Payload: []byte(`{"body":{"order_id":42}}`)}
		claim := func(key, id string) bool {
			var ok bool
			require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
				var err error
				ok, err = st.ClaimDedup(ctx, tx, key, id, now)
				return err
			}))
			return ok
		}
		require.True(t, claim(ev.DedupKey, ev.ID), "first claim")
		require.False(t, claim(ev.DedupKey, "ev_2"), "second claim of the same key")
		require.True(t, claim("hook:/orders:43", "ev_3"), "another key")

		// a claim rolled back with its transaction leaves the key free
		err := inTx(t, st, func(tx *sql.Tx) error {
			ok, err := st.ClaimDedup(ctx, tx, "hook:/orders:44", "ev_4", now)
			require.NoError(t, err)
			require.True(t, ok)
			return fmt.Errorf("abort")
		})
		require.EqualError(t, err, "abort")
		require.True(t, claim("hook:/orders:44", "ev_4"), "claim after a rollback")

		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.InsertEvent(ctx, tx, ev) }))
		got, err := st.GetEvent(ctx, ev.ID)
		require.NoError(t, err)
		require.Equal(t, ev, got)
		_, err = st.GetEvent(ctx, "ev_missing")
		require.ErrorIs(t, err, store.ErrNotFound)

		// a broker that could not publish releases the claim and the event
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.ReleaseDedup(ctx, tx, ev.DedupKey, ev.ID) }))
		_, err = st.GetEvent(ctx, ev.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.True(t, claim(ev.DedupKey, "ev_5"), "claim after release")
		// releasing on behalf of another event leaves the claim
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.ReleaseDedup(ctx, tx, ev.DedupKey, ev.ID) }))
		require.False(t, claim(ev.DedupKey, "ev_6"))
	})
}

func TestRuns(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
		runs := []*store.Run{
			{ID: "run_a", Recipe: "orders", EventID: "ev_1", Status: "succeeded", StartedAt: base, Duration: 120 * time.Millisecond,
				Attempt: 1, Record: []byte(`{"status":"succeeded"}`),
				Steps: []store.RunStep{{Step: "post", Action: "http.request", Status: "succeeded", Attempts: 1, Duration: 100 * time.Millisecond}}},
			{ID: "run_b", Recipe: "orders", EventID: "ev_2", Status: "failed", StartedAt: base.Add(time.Minute), Duration: time.Second,
				ErrorStep: "post", Reason: "server_error", Error: "503 from the server", Attempt: 1, Retries: 2},
			{ID: "run_c", Recipe: "nightly", EventID: "ev_3", Status: "succeeded", StartedAt: base.Add(2 * time.Minute), Attempt: 1},
			{ID: "run_d", Recipe: "orders", EventID: "ev_4", Status: "running", StartedAt: base.Add(3 * time.Minute), Attempt: 1},
		}
		for _, r := range runs {
			r.FinishedAt = r.StartedAt.Add(r.Duration)
			require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.SaveRunTx(ctx, tx, r) }))
		}

		got, err := st.GetRun(ctx, "run_b")
		require.NoError(t, err)
		require.Equal(t, "orders", got.Recipe)
		require.Equal(t, "ev_2", got.EventID)
		require.Equal(t, "failed", got.Status)
		require.Equal(t, base.Add(time.Minute), got.StartedAt)
		require.Equal(t, base.Add(time.Minute+time.Second), got.FinishedAt)
		require.Equal(t, time.Second, got.Duration)
		require.Equal(t, "post", got.ErrorStep)
		require.Equal(t, "server_error", got.Reason)
		require.Equal(t, "503 from the server", got.Error)
		require.Equal(t, 2, got.Retries)
		require.Nil(t, got.Record)
		got, err = st.GetRun(ctx, "run_a")
		require.NoError(t, err)
		require.JSONEq(t, `{"status":"succeeded"}`, string(got.Record))
		_, err = st.GetRun(ctx, "run_missing")
		require.ErrorIs(t, err, store.ErrNotFound)

		for id, want := range map[string]bool{"run_a": true, "run_b": true, "run_d": false, "run_missing": false} {
			done, _, err := st.RunState(ctx, id)
			require.NoError(t, err)
			require.Equal(t, want, done, id)
		}

		ids := func(f store.RunFilter) []string {
			t.Helper()
			list, err := st.ListRuns(ctx, f)
			require.NoError(t, err)
			out := []string{}
			for _, r := range list {
				require.Nil(t, r.Record, "a listed run comes without its record")
				out = append(out, r.ID)
			}
			return out
		}
		for _, tc := range []struct {
			name   string
			filter store.RunFilter
			want   []string
		}{
			{"all, newest first", store.RunFilter{}, []string{"run_d", "run_c", "run_b", "run_a"}},
			{"recipe", store.RunFilter{Recipe: "orders"}, []string{"run_d", "run_b", "run_a"}},
			{"status", store.RunFilter{Status: "succeeded"}, []string{"run_c", "run_a"}},
			{"recipe and status", store.RunFilter{Recipe: "orders", Status: "failed"}, []string{"run_b"}},
			{"since", store.RunFilter{Since: base.Add(time.Minute)}, []string{"run_d", "run_c", "run_b"}},
			{"until", store.RunFilter{Until: base.Add(time.Minute)}, []string{"run_a"}},
			{"window", store.RunFilter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, []string{"run_c", "run_b"}},
			{"limit", store.RunFilter{Limit: 2}, []string{"run_d", "run_c"}},
			{"nothing", store.RunFilter{Recipe: "nope"}, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, ids(tc.filter)) })
		}

		// saving a run again replaces it: the running run finishes
		done := *runs[3]
		done.Status, done.Duration = "succeeded", 3*time.Second
		done.FinishedAt = done.StartedAt.Add(done.Duration)
		done.Replace = true
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.SaveRunTx(ctx, tx, &done) }))
		got, err = st.GetRun(ctx, "run_d")
		require.NoError(t, err)
		require.Equal(t, "succeeded", got.Status)
		require.Equal(t, 3*time.Second, got.Duration)
		require.Equal(t, []string{"run_d", "run_c", "run_a"}, ids(store.RunFilter{Status: "succeeded"}))

		// SaveRun is SaveRunTx in a transaction of its own
		require.NoError(t, st.SaveRun(ctx, &store.Run{ID: "run_e", Recipe: "nightly", EventID: "ev_5", Status: "dead",
			StartedAt: base.Add(4 * time.Minute), FinishedAt: base.Add(4 * time.Minute), Attempt: 1}))
		require.Equal(t, []string{"run_e"}, ids(store.RunFilter{Status: "dead"}))
	})
}

func TestStats(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		since := now.Add(-time.Hour)
		var all []*store.Run
		// 100 succeeded runs of 1..100 ms
		for i := 1; i <= 100; i++ {
			all = append(all, &store.Run{ID: fmt.Sprintf("run_ok_%03d", i), Recipe: "orders", Status: "succeeded",
				StartedAt: now.Add(-time.Duration(i) * time.Second), Duration: time.Duration(i) * time.Millisecond,
				Steps: []store.RunStep{{Step: "post", Action: "http.request", Status: "succeeded", Attempts: 1}}})
		}
		// 3 failed at post (server_error), 1 of them after a rate limit; 1
		// failed at lookup (auth); 2 dead; 1 filtered
		for i := range 3 {
			all = append(all, &store.Run{ID: fmt.Sprintf("run_fail_post_%d", i), Recipe: "orders", Status: "failed",
				StartedAt: now.Add(-time.Minute), Duration: time.Hour, Retries: 2, ErrorStep: "post", Reason: "server_error",
				Steps: []store.RunStep{
					{Step: "lookup", Action: "http.request", Status: "succeeded", Attempts: 1},
					{Step: "post", Action: "slack.post_message", Status: "failed", Reason: "server_error", Attempts: 3, RateLimited: min(i, 1)},
				}})
		}
		all = append(all,
			&store.Run{ID: "run_fail_lookup", Recipe: "orders", Status: "failed", StartedAt: now.Add(-time.Minute), Retries: 1,
				Steps: []store.RunStep{{Step: "lookup", Action: "http.request", Status: "failed", Reason: "auth", Attempts: 2, RateLimited: 1}}},
			&store.Run{ID: "run_dead_1", Recipe: "orders", Status: "dead", StartedAt: now.Add(-time.Minute)},
			&store.Run{ID: "run_dead_2", Recipe: "orders", Status: "dead", StartedAt: now.Add(-time.Minute)},
			&store.Run{ID: "run_filtered", Recipe: "orders", Status: "filtered", StartedAt: now.Add(-time.Minute)},
			// succeeded after a rate limit: not among the failures, but a hit
			&store.Run{ID: "run_ok_limited", Recipe: "orders", Status: "succeeded", StartedAt: now.Add(-time.Minute), Retries: 1,
				Duration: 50 * time.Millisecond,
				Steps:    []store.RunStep{{Step: "post", Action: "slack.post_message", Status: "succeeded", Attempts: 2, RateLimited: 1}}},
			// another recipe, and a run before the window
			&store.Run{ID: "run_nightly", Recipe: "nightly", Status: "failed", StartedAt: now.Add(-time.Minute), Retries: 5,
				Steps: []store.RunStep{{Step: "report", Action: "http.request", Status: "failed", Reason: "timeout", Attempts: 1}}},
			&store.Run{ID: "run_old", Recipe: "orders", Status: "failed", StartedAt: now.Add(-2 * time.Hour), Retries: 7,
				Steps: []store.RunStep{{Step: "post", Action: "slack.post_message", Status: "failed", Reason: "server_error", Attempts: 1}}},
		)
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			for _, r := range all {
				r.Attempt, r.FinishedAt = 1, r.StartedAt.Add(r.Duration)
				if err := st.SaveRunTx(ctx, tx, r); err != nil {
					return err
				}
			}
			return nil
		}))

		s, err := st.Stats(ctx, "orders", since)
		require.NoError(t, err)
		require.Equal(t, int64(108), s.Runs)
		require.Equal(t, map[string]int64{"succeeded": 101, "failed": 4, "dead": 2, "filtered": 1}, s.ByStatus)
		require.InDelta(t, 101.0/107.0, s.SuccessRate, 1e-9)
		// percentiles of the succeeded runs only: nearest rank over 1..100 ms and 50 ms
		require.Equal(t, 50*time.Millisecond, s.P50)
		require.Equal(t, 95*time.Millisecond, s.P95)
		require.Equal(t, 99*time.Millisecond, s.P99)
		require.Equal(t, int64(3*2+1+1), s.Retries)
		require.Equal(t, int64(2+1+1), s.RateLimited)
		require.ElementsMatch(t, []store.FailureCount{
			{Key: "orders/post", Reason: "server_error", Count: 3},
			{Key: "orders/lookup", Reason: "auth", Count: 1},
		}, s.StepFailures)
		require.Equal(t, "orders/post", s.StepFailures[0].Key, "the most frequent failure first")
		require.ElementsMatch(t, []store.FailureCount{
			{Key: "slack.post_message", Reason: "server_error", Count: 3},
			{Key: "http.request", Reason: "auth", Count: 1},
		}, s.ConnectorFailures)
		// the calls per action and connection are read from the records,
		// which these runs lack (TestStatsCalls)
		require.Empty(t, s.Actions)
		require.NotNil(t, s.Actions, "an empty breakdown is [], not null")
		require.Empty(t, s.Connections)
		require.NotNil(t, s.Connections)

		// every recipe
		s, err = st.Stats(ctx, "", since)
		require.NoError(t, err)
		require.Equal(t, int64(109), s.Runs)
		require.Equal(t, int64(5), s.ByStatus["failed"])
		require.Equal(t, int64(13), s.Retries)
		require.ElementsMatch(t, []store.FailureCount{
			{Key: "orders/post", Reason: "server_error", Count: 3},
			{Key: "orders/lookup", Reason: "auth", Count: 1},
			{Key: "nightly/report", Reason: "timeout", Count: 1},
		}, s.StepFailures)
		require.ElementsMatch(t, []store.FailureCount{
			{Key: "slack.post_message", Reason: "server_error", Count: 3},
			{Key: "http.request", Reason: "auth", Count: 1},
			{Key: "http.request", Reason: "timeout", Count: 1},
		}, s.ConnectorFailures)

		// only the steps that failed, were retried or rate limited have a
		// row: the 100 runs that succeeded at once wrote none
		var rows int
		require.NoError(t, st.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM t_run_steps`).Scan(&rows))
		require.Equal(t, 3+1+1+1+1, rows)

		// an empty window
		s, err = st.Stats(ctx, "none", since)
		require.NoError(t, err)
		require.Zero(t, s.Runs)
		require.Zero(t, s.SuccessRate)
		require.Zero(t, s.P99)
		require.Empty(t, s.StepFailures)
		require.NotNil(t, s.StepFailures, "an empty breakdown is [], not null")
	})
}

func TestPrune(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		ret := store.Retention{Succeeded: 24 * time.Hour, Failed: 7 * 24 * time.Hour, Dedup: 48 * time.Hour}
		day := 24 * time.Hour
		type item struct {
			id, status string
			age        time.Duration
			kept       bool
		}
		items := []item{
			{"ok_new", "succeeded", time.Hour, true},
			{"ok_30h", "succeeded", 30 * time.Hour, false}, // its event and key stay for the dedup window
			{"ok_old", "succeeded", 3 * day, false},
			{"filtered_old", "filtered", 3 * day, false},
			{"failed_3d", "failed", 3 * day, true}, // failures are kept longer
			{"dead_4d", "dead", 4 * day, true},
			{"failed_8d", "failed", 8 * day, false},
			{"dead_9d", "dead", 9 * day, false},
		}
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			for _, it := range items {
				at := now.Add(-it.age)
				ev := &store.Event{ID: "ev_" + it.id, Type: "webhook.received", Source: "/x", DedupKey: "key_" + it.id, ReceivedAt: at, Payload: []byte(`{}`)}
				if _, err := st.ClaimDedup(ctx, tx, ev.DedupKey, ev.ID, at); err != nil {
					return err
				}
				if err := st.InsertEvent(ctx, tx, ev); err != nil {
					return err
				}
				err := st.SaveRunTx(ctx, tx, &store.Run{ID: "run_" + it.id, Recipe: "r", EventID: ev.ID, Status: it.status,
					StartedAt: at, FinishedAt: at, Attempt: 1, Steps: []store.RunStep{{Step: "s", Action: "http.request", Status: it.status, Attempts: 1}}})
				if err != nil {
					return err
				}
			}
			return nil
		}))
		checkpoints := map[string]time.Duration{"cp_new": time.Hour, "cp_6d": 6 * day, "cp_8d": 8 * day}
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			for id, age := range checkpoints {
				if err := st.SaveCheckpoint(ctx, tx, id, []byte(`{"next":1}`), now.Add(-age)); err != nil {
					return err
				}
			}
			return nil
		}))
		n, err := st.Prune(ctx, now, ret)
		require.NoError(t, err)
		// a checkpoint left behind goes after the failed runs' retention
		// (7 days here), never before a retry's longest wait
		for id, age := range checkpoints {
			cp, err := st.Checkpoint(ctx, id)
			require.NoError(t, err)
			require.Equal(t, age < ret.Failed, cp != nil, "checkpoint %s (age %s)", id, age)
		}
		removed := 0
		for _, it := range items {
			_, err := st.GetRun(ctx, "run_"+it.id)
			if it.kept {
				require.NoError(t, err, "run %s is kept", it.id)
			} else {
				removed++
				require.ErrorIs(t, err, store.ErrNotFound, "run %s is pruned", it.id)
			}
		}
		// Prune's doc: it "returns how many runs it removed", not the events
		require.Equal(t, int64(removed), n, "Prune counts the runs it removed")

		// the steps of pruned runs go with them: only kept runs' steps count
		s, err := st.Stats(ctx, "", now.Add(-30*day))
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"succeeded": 1, "failed": 1, "dead": 1}, s.ByStatus)
		require.ElementsMatch(t, []store.FailureCount{{Key: "r/s", Reason: "", Count: 1}}, s.StepFailures, "the failed_8d step went with its run")

		// events past the dedup window go unless a kept run needs them for
		// a replay; their dedup keys go, so the key is accepted again
		for _, it := range items {
			_, err := st.GetEvent(ctx, "ev_"+it.id)
			if it.kept || it.age <= ret.Dedup {
				require.NoError(t, err, "event of %s is kept", it.id)
			} else {
				require.ErrorIs(t, err, store.ErrNotFound, "event of %s is pruned", it.id)
			}
			var fresh bool
			require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
				var err error
				fresh, err = st.ClaimDedup(ctx, tx, "key_"+it.id, "ev_again", now)
				return err
			}))
			require.Equal(t, it.age > ret.Dedup, fresh, "dedup key of %s (age %s)", it.id, it.age)
		}

		// failures kept a day: a checkpoint stays as long as a retry may wait
		_, err = st.Prune(ctx, now.Add(12*time.Hour), store.Retention{Succeeded: day, Failed: day})
		require.NoError(t, err)
		cp, err := st.Checkpoint(ctx, "cp_6d")
		require.NoError(t, err)
		require.NotNil(t, cp, "6.5 days old, kept for a retry's longest wait although failures are kept a day")
		_, err = st.Prune(ctx, now.Add(36*time.Hour), store.Retention{Succeeded: day, Failed: day})
		require.NoError(t, err)
		cp, err = st.Checkpoint(ctx, "cp_6d")
		require.NoError(t, err)
		require.Nil(t, cp, "7.5 days old")
	})
}

func TestCheckpoints(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now()
		state, err := st.Checkpoint(ctx, "run_1")
		require.NoError(t, err)
		require.Nil(t, state, "no checkpoint yet")
		for _, s := range []string{`{"step":1}`, `{"step":2}`} {
			require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.SaveCheckpoint(ctx, tx, "run_1", []byte(s), now) }))
			state, err = st.Checkpoint(ctx, "run_1")
			require.NoError(t, err)
			require.JSONEq(t, s, string(state), "the latest checkpoint")
		}
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.SaveCheckpoint(ctx, tx, "run_2", []byte(`{}`), now) }))
		// the run's final save, replacing what the unfinished run left,
		// drops its checkpoint and no other
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			return st.SaveRunTx(ctx, tx, &store.Run{ID: "run_1", Recipe: "r", EventID: "ev", Status: "succeeded",
				StartedAt: now, FinishedAt: now, Attempt: 1, Replace: true})
		}))
		state, err = st.Checkpoint(ctx, "run_1")
		require.NoError(t, err)
		require.Nil(t, state)
		state, err = st.Checkpoint(ctx, "run_2")
		require.NoError(t, err)
		require.Equal(t, []byte(`{}`), state)
	})
}

func TestOutbox(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		t0 := time.Now().Add(-time.Hour)
		evs := []*store.Event{{ID: "ev_1", Recipes: []string{"a", "b"}}, {ID: "ev_2"}, {ID: "ev_3", Recipes: []string{"c"}}}
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			for i, ev := range evs {
				if err := st.AddOutbox(ctx, tx, ev, t0.Add(time.Duration(i)*time.Minute)); err != nil {
					return err
				}
			}
			return nil
		}))
		entries, err := st.Outbox(ctx, t0.Add(90*time.Second), 10)
		require.NoError(t, err)
		require.Len(t, entries, 2, "only those created before")
		require.Equal(t, "ev_1", entries[0].EventID, "oldest first")
		require.Equal(t, []string{"a", "b"}, entries[0].Recipes)
		require.Nil(t, entries[1].Recipes)
		require.Equal(t, t0.UnixMilli(), entries[0].CreatedAt.UnixMilli())
		entries, err = st.Outbox(ctx, time.Now(), 1)
		require.NoError(t, err)
		require.Len(t, entries, 1, "at most limit")

		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.DeleteOutbox(ctx, tx, "ev_1", "ev_3", "ev_9") }))
		entries, err = st.Outbox(ctx, time.Now(), 10)
		require.NoError(t, err)
		require.Len(t, entries, 1)
		require.Equal(t, "ev_2", entries[0].EventID)
	})
}

func TestRunStepIncident(t *testing.T) {
	for _, tc := range []struct {
		name string
		step store.RunStep
		want bool
	}{
		{"succeeded at once", store.RunStep{Status: "succeeded", Attempts: 1}, false},
		{"skipped", store.RunStep{Status: "skipped"}, false},
		{"failed", store.RunStep{Status: "failed", Attempts: 1}, true},
		{"succeeded on a retry", store.RunStep{Status: "succeeded", Attempts: 2}, true},
		{"rate limited", store.RunStep{Status: "succeeded", Attempts: 1, RateLimited: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, tc.step.Incident()) })
	}
}

// TestSQLiteKeyedTablesWithoutRowid: the dedup keys and run steps, small
// rows written for every event, live in their key's b-tree alone.
func TestSQLiteKeyedTablesWithoutRowid(t *testing.T) {
	st := openSQLite(t)
	read := st.DB
	for _, table := range []string{"dedup", "run_steps", "outbox"} {
		t.Run(table, func(t *testing.T) {
			// a table without rowid has no automatic index for its key
			var n int
			require.NoError(t, read.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND name LIKE 'sqlite_autoindex_%'`, table).Scan(&n))
			require.Zero(t, n, "%s has a separate index for its primary key", table)
			var ddl string
			require.NoError(t, read.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1`, table).Scan(&ddl))
			require.Contains(t, ddl, "WITHOUT ROWID")
		})
	}
}

// TestFinishing: a journalled run comes back as it was, every field
// (durations to the nanosecond) included, until its entry is deleted.
func TestFinishing(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(time.Microsecond)
		runs := []*store.Run{
			{ID: "run_1", Recipe: "a", EventID: "ev_1", Status: "succeeded", StartedAt: t0, FinishedAt: t0.Add(time.Second),
				Duration: 1234567 * time.Nanosecond, Attempt: 1, Record: []byte(`{"steps":[]}`),
				Steps: []store.RunStep{{Step: "s", Action: "http.request", Status: "succeeded", Attempts: 2, Duration: 5 * time.Millisecond}}},
			{ID: "run_2", Recipe: "b", EventID: "ev_2", Status: "failed", ErrorStep: "s", Reason: "server_error", Error: "boom", Retries: 2},
		}
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			for i, r := range runs {
				if err := st.AddFinishing(ctx, tx, r, t0.Add(time.Duration(i)*time.Second)); err != nil {
					return err
				}
			}
			return nil
		}))
		got, err := st.Finishing(ctx)
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.True(t, runs[0].StartedAt.Equal(got[0].StartedAt))
		got[0].StartedAt, got[0].FinishedAt = runs[0].StartedAt, runs[0].FinishedAt
		require.Equal(t, runs, got, "oldest first, as they were")

		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.DeleteFinishing(ctx, tx, "run_1") }))
		got, err = st.Finishing(ctx)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "run_2", got[0].ID)
	})
}

// TestInstanceID: a store's instance id is made up once and stays.
func TestInstanceID(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		id, err := st.InstanceID(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, id)
		again, err := st.InstanceID(ctx)
		require.NoError(t, err)
		require.Equal(t, id, again)
	})
}

// openSQLite opens and migrates a fresh embedded store, with no prefix.
func openSQLite(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { read.Close(); write.Close() })
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.Migrate(ctx))
	require.NoError(t, brokerTables(ctx, st))
	return st
}

// brokerTables creates the tables the brokers create beside the engine's
// (the scheduled messages, the outbox...), whose methods the store has.
func brokerTables(ctx context.Context, st *store.Store) error {
	if err := st.CreateTables(ctx, store.ScheduledTables...); err != nil {
		return err
	}
	return st.CreateTables(ctx, store.OwnStoreTables...)
}
