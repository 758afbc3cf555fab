package store_test

import (
	"context"
	"database/sql"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// TestScheduled: messages held until due are claimed earliest first, once,
// with what they were stored with.
func TestScheduled(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now()
		_, ok, err := st.NextDue(ctx)
		require.NoError(t, err)
		require.False(t, ok, "nothing scheduled")

		msgs := []*store.Scheduled{
			{Topic: "runs", Key: "run_b", UUID: "b", Payload: []byte(`{"n":2}`), Metadata: map[string]string{"k": "v"}, DueAt: now.Add(-time.Second)},
			{Topic: "runs", UUID: "a", Payload: []byte(`{"n":1}`), DueAt: now.Add(-2 * time.Second)},
			{Topic: "runs", UUID: "later", Payload: []byte(`{}`), DueAt: now.Add(time.Hour)},
			{Topic: "other", UUID: "c", Payload: []byte(`{}`), DueAt: now.Add(-time.Second)},
		}
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			for _, m := range msgs {
				if err := st.Schedule(ctx, tx, m); err != nil {
					return err
				}
			}
			return nil
		}))
		due, ok, err := st.NextDue(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		require.WithinDuration(t, now.Add(-2*time.Second), due, time.Millisecond)
		n, err := st.CountScheduled(ctx, "runs")
		require.NoError(t, err)
		require.Equal(t, int64(3), n)

		isScheduled := func(key string) bool {
			ok, err := st.IsScheduled(ctx, "runs", key)
			require.NoError(t, err)
			return ok
		}
		require.True(t, isScheduled("run_b"))
		require.False(t, isScheduled("run_x"))

		claim := func(at time.Time, limit int) []*store.Scheduled {
			var got []*store.Scheduled
			require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
				var err error
				got, err = st.ClaimDue(ctx, tx, at, limit)
				return err
			}))
			return got
		}
		// a claim rolled back leaves the messages scheduled
		require.ErrorIs(t, inTx(t, st, func(tx *sql.Tx) error {
			got, err := st.ClaimDue(ctx, tx, now, 10)
			require.NoError(t, err)
			require.Len(t, got, 3)
			return sql.ErrTxDone
		}), sql.ErrTxDone)

		got := claim(now, 1)
		require.Len(t, got, 1)
		require.Equal(t, "a", got[0].UUID, "earliest first")
		got = claim(now, 10)
		require.Len(t, got, 2)
		require.Equal(t, "b", got[0].UUID)
		require.Equal(t, "runs", got[0].Topic)
		require.JSONEq(t, `{"n":2}`, string(got[0].Payload))
		require.Equal(t, map[string]string{"k": "v"}, got[0].Metadata)
		require.Equal(t, "run_b", got[0].Key)
		require.Equal(t, "c", got[1].UUID)
		require.Empty(t, claim(now, 10), "claimed once")
		require.False(t, isScheduled("run_b"), "no longer scheduled once claimed")

		// a due time is kept rounded up to the millisecond: never due early
		at := time.UnixMilli(now.Add(time.Minute).UnixMilli()).Add(300 * time.Microsecond)
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			return st.Schedule(ctx, tx, &store.Scheduled{Topic: "runs", UUID: "ms", Payload: []byte(`{}`), DueAt: at})
		}))
		require.Empty(t, claim(at.Truncate(time.Millisecond), 10), "not before its time")
		got = claim(at.Add(time.Millisecond), 10)
		require.Len(t, got, 1)
		require.Equal(t, "ms", got[0].UUID)
		require.False(t, got[0].DueAt.Before(at))
		got = claim(now.Add(2*time.Hour), 10)
		require.Len(t, got, 1)
		require.Equal(t, "later", got[0].UUID)
	})
}

// TestScheduledClaimSkipsLocked: on PostgreSQL, two transactions claiming
// at once take different messages, and the second does not wait for the
// first.
func TestScheduledClaimSkipsLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, testPostgres(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	st := &store.Store{DB: db, Dialect: store.Postgres}
	require.NoError(t, st.Migrate(ctx))
	require.NoError(t, brokerTables(ctx, st))
	now := time.Now()
	require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
		for _, id := range []string{"a", "b"} {
			if err := st.Schedule(ctx, tx, &store.Scheduled{Topic: "runs", UUID: id, Payload: []byte(`{}`), DueAt: now.Add(-time.Second)}); err != nil {
				return err
			}
		}
		return nil
	}))
	tx1, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx1.Rollback() //nolint:errcheck
	first, err := st.ClaimDue(ctx, tx1, now, 1)
	require.NoError(t, err)
	require.Len(t, first, 1)

	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tx2, err := db.BeginTx(wait, nil)
	require.NoError(t, err)
	defer tx2.Rollback() //nolint:errcheck
	second, err := st.ClaimDue(wait, tx2, now, 10)
	require.NoError(t, err, "the second claim does not wait for the first")
	require.Len(t, second, 1, "the message the first holds is skipped")
	require.NotEqual(t, first[0].UUID, second[0].UUID)
	require.NoError(t, tx2.Commit())
	require.NoError(t, tx1.Commit())
	n, err := st.CountScheduled(ctx, "runs")
	require.NoError(t, err)
	require.Zero(t, n)
}

// A retry hundreds of years away (a huge Retry-After) is not due now: its
// due time must not overflow into the past.
func TestScheduleFarFuture(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now()
		far := now.Add(time.Duration(math.MaxInt64))
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			return st.Schedule(ctx, tx, &store.Scheduled{Topic: "runs", UUID: "far", Payload: []byte(`{}`), DueAt: far})
		}))
		due, ok, err := st.NextDue(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, due.After(now.Add(100*365*24*time.Hour)), "due %s", due)
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			got, err := st.ClaimDue(ctx, tx, now, 10)
			require.Empty(t, got)
			return err
		}))
	})
}
