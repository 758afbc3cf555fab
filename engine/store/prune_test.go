package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/sqlin"
)

// pruneFixture stores, at now minus their age, runs of each status with a
// step row each, events that no run references (some received in the same
// microsecond, more than a batch of them), and a dedup key per event.
type pruneFixture struct {
	oldOK, oldFailed, fresh, orphans int
}

func (f pruneFixture) store(t *testing.T, st *store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	day := 24 * time.Hour
	require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
		add := func(id, status string, at time.Time, withRun bool) error {
			ev := &store.Event{ID: "ev_" + id, Type: "webhook.received", Source: "/x", DedupKey: "key_" + id, ReceivedAt: at, Payload: []byte(`{}`)}
			if _, err := st.ClaimDedup(ctx, tx, ev.DedupKey, ev.ID, at); err != nil {
				return err
			}
			if err := st.InsertEvent(ctx, tx, ev); err != nil {
				return err
			}
			if !withRun {
				return nil
			}
			// a retried step: the run_steps table keeps it
			return st.SaveRunTx(ctx, tx, &store.Run{ID: "run_" + id, Recipe: "r", EventID: ev.ID, Status: status,
				StartedAt: at, FinishedAt: at, Attempt: 1, Steps: []store.RunStep{{Step: "s", Action: "http.request", Status: "succeeded", Attempts: 2}}})
		}
		old := now.Add(-3 * day)
		for i := range f.oldOK + f.oldFailed {
			// failed runs among the succeeded ones, in time: their events
			// stay in the windows the succeeded runs' events go from
			status, id := "succeeded", fmt.Sprintf("ok_%02d", i)
			if i%((f.oldOK+f.oldFailed)/f.oldFailed) == 0 && i/((f.oldOK+f.oldFailed)/f.oldFailed) < f.oldFailed {
				status, id = "failed", fmt.Sprintf("failed_%02d", i)
			}
			if err := add(id, status, old.Add(time.Duration(i)*time.Second), true); err != nil {
				return err
			}
		}
		for i := range f.fresh {
			if err := add(fmt.Sprintf("new_%02d", i), "succeeded", now.Add(-time.Hour), true); err != nil {
				return err
			}
		}
		tie := old.Add(-time.Hour)
		for i := range f.orphans {
			if err := add(fmt.Sprintf("orphan_%02d", i), "", tie, false); err != nil {
				return err
			}
		}
		return nil
	}))
}

func count(t *testing.T, st *store.Store, query string) int {
	t.Helper()
	var n int
	require.NoError(t, st.DB.QueryRow(fmt.Sprintf(query, st.Prefix)).Scan(&n))
	return n
}

// pruneRetention is what the prune tests keep: succeeded runs a day,
// failed ones a week, dedup keys and events two days.
var pruneRetention = store.Retention{Succeeded: 24 * time.Hour, Failed: 7 * 24 * time.Hour, Dedup: 48 * time.Hour}

// setUp stores the fixture, has st prune batch rows at a time and returns
// the time the fixture's ages count from.
func (f pruneFixture) setUp(t *testing.T, st *store.Store, batch int) time.Time {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	f.store(t, st, now)
	st.PruneBatch = batch
	return now
}

// requirePruned checks what a whole prune of the fixture leaves: the
// kept runs, their steps and events, and the fresh dedup keys.
func (f pruneFixture) requirePruned(t *testing.T, st *store.Store) {
	t.Helper()
	kept := f.oldFailed + f.fresh
	require.Equal(t, kept, count(t, st, `SELECT count(*) FROM %sruns`))
	require.Equal(t, kept, count(t, st, `SELECT count(*) FROM %srun_steps`), "the steps of the kept runs, no other")
	require.Equal(t, kept, count(t, st, `SELECT count(*) FROM %sevents`), "the events of the kept runs")
	require.Equal(t, f.fresh, count(t, st, `SELECT count(*) FROM %sdedup`), "the keys within the dedup window")
}

// TestPruneInBatches: Prune deletes at most PruneBatch runs, or a window
// of about as many events, per transaction, and in batches deletes what
// one statement did: the old succeeded runs and their steps, the events
// no kept run references (a batch's worth and more received in one
// microsecond included), and the old dedup keys.
func TestPruneInBatches(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		f := pruneFixture{oldOK: 22, oldFailed: 6, fresh: 3, orphans: 9}
		const batch = 4
		now := f.setUp(t, st, batch)
		require.Equal(t, f.oldFailed, count(t, st, `SELECT count(*) FROM %sruns WHERE status = 'failed'`), "the fixture")
		batches := map[string][]int64{}
		store.SetPruned(st, func(table string, n int64) { batches[table] = append(batches[table], n) })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := st.Prune(ctx, now, pruneRetention)
		require.NoError(t, err)
		require.EqualValues(t, f.oldOK, n, "the old succeeded runs")
		f.requirePruned(t, st)

		require.GreaterOrEqual(t, len(batches["runs"]), 2, "runs: more than one transaction")
		for _, m := range batches["runs"] {
			require.LessOrEqual(t, m, int64(batch), "runs: %v", batches["runs"])
		}
		// the orphans share a microsecond: their window holds them all
		require.GreaterOrEqual(t, len(batches["events"]), (f.oldOK+f.orphans)/batch, "events: %v", batches["events"])
		for _, m := range batches["events"] {
			require.LessOrEqual(t, m, int64(max(batch, f.orphans)), "events: %v", batches["events"])
		}
	})
}

// TestPruneCutShort: a prune ended by its context between batches leaves
// no step without its run, and the next prune finishes the work.
func TestPruneCutShort(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		f := pruneFixture{oldOK: 10, oldFailed: 2, fresh: 1, orphans: 1}
		now := f.setUp(t, st, 3)
		ctx, cancel := context.WithCancel(context.Background())
		store.SetPruned(st, func(string, int64) { cancel() })
		n, err := st.Prune(ctx, now, pruneRetention)
		require.ErrorIs(t, err, context.Canceled)
		require.EqualValues(t, 3, n, "one batch of runs")
		require.Zero(t, count(t, st, `SELECT count(*) FROM %srun_steps WHERE run_id NOT IN (SELECT id FROM %[1]sruns)`), "no step without its run")

		store.SetPruned(st, nil)
		n, err = st.Prune(context.Background(), now, pruneRetention)
		require.NoError(t, err)
		require.EqualValues(t, f.oldOK-3, n, "the rest")
		f.requirePruned(t, st)
	})
}

// TestPruneTwoAtOnce: two prunes of one store at the same time (on
// PostgreSQL, as two processes would) both end without an error, and
// between them delete what one would.
func TestPruneTwoAtOnce(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		f := pruneFixture{oldOK: 40, oldFailed: 4, fresh: 2, orphans: 3}
		now := f.setUp(t, st, 3)
		var wg sync.WaitGroup
		counts := make([]int64, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				counts[i], errs[i] = st.Prune(context.Background(), now, pruneRetention)
			}()
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.EqualValues(t, f.oldOK, counts[0]+counts[1], "each run deleted once")
		f.requirePruned(t, st)
	})
}

// TestPruneReclaimedKey: the dedup key of an event a kept run holds on to
// goes after the dedup window; a newer event may claim it again, and the
// next prune, meeting the old event again, leaves the new claim alone.
func TestPruneReclaimedKey(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		day := 24 * time.Hour
		claim := func(eventID string, at time.Time, withRun bool) bool {
			t.Helper()
			var fresh bool
			require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
				var err error
				if fresh, err = st.ClaimDedup(ctx, tx, "key_k", eventID, at); err != nil || !fresh {
					return err
				}
				if err := st.InsertEvent(ctx, tx, &store.Event{ID: eventID, Type: "webhook.received", Source: "/x", DedupKey: "key_k", ReceivedAt: at, Payload: []byte(`{}`)}); err != nil {
					return err
				}
				if !withRun {
					return nil
				}
				return st.SaveRunTx(ctx, tx, &store.Run{ID: "run_" + eventID, Recipe: "r", EventID: eventID, Status: "failed", StartedAt: at, FinishedAt: at, Attempt: 1})
			}))
			return fresh
		}
		require.True(t, claim("ev_old", now.Add(-3*day), true), "the old event, its run failed: kept for replay")
		_, err := st.Prune(ctx, now, pruneRetention)
		require.NoError(t, err)
		_, err = st.GetEvent(ctx, "ev_old")
		require.NoError(t, err, "kept for its failed run")
		require.True(t, claim("ev_new", now, false), "its key went after the dedup window")
		_, err = st.Prune(ctx, now, pruneRetention)
		require.NoError(t, err)
		require.False(t, claim("ev_dup", now, false), "the new event's claim stays")
	})
}

// TestMigrateDropsDedupIndex: a store made by an earlier version, with an
// index on dedup.created_at, loses it when migrated: dedup keys are pruned
// with their events now, and the index would cost a write per event.
func TestMigrateDropsDedupIndex(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		db := st.Write // nil on PostgreSQL, one handle for both
		if db == nil {
			db = st.DB
		}
		name := st.Prefix + "dedup_created"
		_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX %s ON %sdedup (created_at)`, name, st.Prefix))
		require.NoError(t, err)
		indexes := `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = $1`
		if st.Dialect == store.Postgres {
			indexes = `SELECT count(*) FROM pg_indexes WHERE indexname = $1`
		}
		var n int
		require.NoError(t, db.QueryRowContext(ctx, indexes, name).Scan(&n))
		require.Equal(t, 1, n, "the earlier version's index")
		require.NoError(t, st.Migrate(ctx))
		require.NoError(t, db.QueryRowContext(ctx, indexes, name).Scan(&n))
		require.Zero(t, n, "dropped")
	})
}

// TestPruneStepsOfALargeBatch: the steps of a batch of runs longer than
// one IN list takes are deleted, every list of them.
func TestPruneStepsOfALargeBatch(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		f := pruneFixture{oldOK: sqlin.Max + 10, oldFailed: 2, fresh: 1}
		now := f.setUp(t, st, 2*sqlin.Max)
		n, err := st.Prune(context.Background(), now, pruneRetention)
		require.NoError(t, err)
		require.EqualValues(t, f.oldOK, n)
		f.requirePruned(t, st)
	})
}
