package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// savePoll saves owner's cursor of key in a transaction of its own.
func savePoll(t *testing.T, st *store.Store, key, owner string, cursor []byte, now time.Time) error {
	t.Helper()
	return inTx(t, st, func(tx *sql.Tx) error { return st.SavePoll(context.Background(), tx, key, owner, cursor, now) })
}

func requireCursor(t *testing.T, st *store.Store, key string, want []byte) {
	t.Helper()
	got, err := st.PollCursor(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestLeasePoll: one owner at a time holds a poller's lease; another takes
// it only once it expired, and renewing keeps it.
func TestLeasePoll(t *testing.T) {
	const ttl = time.Minute
	// the steps run in order on one key; at is the time of the step after
	// the first lease
	steps := []struct {
		name  string
		owner string
		at    time.Duration
		held  bool
	}{
		{name: "A takes a free lease", owner: "A", at: 0, held: true},
		{name: "B cannot while it is live", owner: "B", at: time.Second, held: false},
		{name: "A holds it still", owner: "A", at: 2 * time.Second, held: true},
		{name: "A renews it", owner: "A", at: 10 * time.Second, held: true},
		// A's first lease ran until 60s: only the renewal keeps B out now
		{name: "B cannot after the first lease's end", owner: "B", at: ttl + 5*time.Second, held: false},
		{name: "B takes it once it expired", owner: "B", at: ttl + 11*time.Second, held: true},
		{name: "A cannot take it back", owner: "A", at: ttl + 12*time.Second, held: false},
		{name: "B renews it", owner: "B", at: ttl + 13*time.Second, held: true},
	}
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		start := time.Now()
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				held, cursor, err := st.LeasePoll(ctx, "poll:svc.items:acme:1", s.owner, start.Add(s.at), ttl)
				require.NoError(t, err)
				require.Equal(t, s.held, held)
				require.Nil(t, cursor, "no cursor was saved")
			})
		}
		// another key is leased apart
		held, _, err := st.LeasePoll(ctx, "poll:svc.items:acme:2", "A", start.Add(ttl+12*time.Second), ttl)
		require.NoError(t, err)
		require.True(t, held, "another key is free")
	})
}

// TestSavePoll: the holder's cursor round-trips; a process that does not
// hold the lease saves nothing (ErrLeaseLost); a save rolled back with its
// transaction leaves the old cursor.
func TestSavePoll(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const key, ttl = "poll:svc.items:acme:1", time.Minute
		now := time.Now()

		requireCursor(t, st, key, nil) // no row
		held, cursor, err := st.LeasePoll(ctx, key, "A", now, ttl)
		require.NoError(t, err)
		require.True(t, held)
		require.Nil(t, cursor, "nil before the first save")
		requireCursor(t, st, key, nil)

		cursors := []struct {
			name   string
			cursor []byte
		}{
			{name: "json", cursor: []byte(`{"after":41,"page":"p=2"}`)},
			{name: "binary", cursor: []byte{0, 1, 0xfe, 0xff, '\''}},
			{name: "another json", cursor: []byte(`"2026-12-07T19:00:00Z"`)},
		}
		for _, c := range cursors {
			t.Run("round-trips "+c.name, func(t *testing.T) {
				require.NoError(t, savePoll(t, st, key, "A", c.cursor, now))
				requireCursor(t, st, key, c.cursor)
				held, cursor, err := st.LeasePoll(ctx, key, "A", now.Add(time.Second), ttl)
				require.NoError(t, err)
				require.True(t, held)
				require.Equal(t, c.cursor, cursor, "the lease hands the saved cursor back")
			})
		}
		saved := cursors[len(cursors)-1].cursor

		lost := []struct {
			name  string
			key   string
			owner string
		}{
			{name: "another owner", key: key, owner: "B"},
			{name: "an owner of no lease", key: "poll:svc.items:acme:none", owner: "A"},
		}
		for _, l := range lost {
			t.Run("lease lost: "+l.name, func(t *testing.T) {
				err := savePoll(t, st, l.key, l.owner, []byte(`"theirs"`), now)
				require.ErrorIs(t, err, store.ErrLeaseLost)
				requireCursor(t, st, key, saved)
				requireCursor(t, st, "poll:svc.items:acme:none", nil)
			})
		}

		t.Run("rolled back", func(t *testing.T) {
			abort := errors.New("abort")
			err := inTx(t, st, func(tx *sql.Tx) error {
				require.NoError(t, st.SavePoll(ctx, tx, key, "A", []byte(`"rolled back"`), now))
				return abort
			})
			require.ErrorIs(t, err, abort)
			requireCursor(t, st, key, saved)
		})

		t.Run("taken over after expiry", func(t *testing.T) {
			later := now.Add(2 * ttl)
			held, cursor, err := st.LeasePoll(ctx, key, "B", later, ttl)
			require.NoError(t, err)
			require.True(t, held)
			require.Equal(t, saved, cursor, "the new holder goes on from the saved cursor")
			// A, whose poll began before it lost the lease, commits nothing
			require.ErrorIs(t, savePoll(t, st, key, "A", []byte(`"stale"`), later), store.ErrLeaseLost)
			requireCursor(t, st, key, saved)
			require.NoError(t, savePoll(t, st, key, "B", []byte(`"b1"`), later))
			requireCursor(t, st, key, []byte(`"b1"`))
		})
	})
}

// TestReleasePoll: a released lease is free at once, and keeps its
// cursor; only the holder releases it.
func TestReleasePoll(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const key, ttl = "poll:svc.items::1", time.Hour
		now := time.Now()
		lease := func(owner string) bool {
			t.Helper()
			held, _, err := st.LeasePoll(ctx, key, owner, now, ttl)
			require.NoError(t, err)
			return held
		}
		require.True(t, lease("A"))
		require.NoError(t, savePoll(t, st, key, "A", []byte(`7`), now))
		require.False(t, lease("B"))

		// a release by another owner changes nothing
		require.NoError(t, st.ReleasePoll(ctx, key, "B"))
		require.False(t, lease("B"))
		// nor one of a key never leased
		require.NoError(t, st.ReleasePoll(ctx, "poll:none", "A"))

		require.NoError(t, st.ReleasePoll(ctx, key, "A"))
		held, cursor, err := st.LeasePoll(ctx, key, "B", now, ttl)
		require.NoError(t, err)
		require.True(t, held, "B takes a released lease at once")
		require.Equal(t, []byte(`7`), cursor)
		require.False(t, lease("A"), "B holds it now")
		require.ErrorIs(t, savePoll(t, st, key, "A", []byte(`8`), now), store.ErrLeaseLost)
		requireCursor(t, st, key, []byte(`7`))
	})
}

// TestLeasePollRace: owners asking for a free lease at once: one gets it.
func TestLeasePollRace(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now()
		const owners = 8
		held := make([]bool, owners)
		errs := make([]error, owners)
		var wg sync.WaitGroup
		for i := range owners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				held[i], _, errs[i] = st.LeasePoll(ctx, "poll:race", fmt.Sprintf("owner-%d", i), now, time.Minute)
			}()
		}
		wg.Wait()
		n := 0
		for i := range owners {
			require.NoError(t, errs[i])
			if held[i] {
				n++
			}
		}
		require.Equal(t, 1, n, "one owner holds the lease")
	})
}
