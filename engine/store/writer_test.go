package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/sous-run/sous/engine/store"
)

// openWriterDB opens a file database with one connection, as the service
// does, with a table for the writer's ops.
func openWriterDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "q.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
	require.NoError(t, err)
	return db
}

func withTimeout(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not finish within %s (deadlock?)", d)
	}
}

// TestWriterReusesStatementsWithOneConnection is the regression test of a
// deadlock: preparing a statement inside the batch's transaction waited
// for a connection the transaction itself held.
func TestWriterReusesStatementsWithOneConnection(t *testing.T) {
	db := openWriterDB(t)
	w := store.NewWriter(db, 64)
	defer w.Close()
	withTimeout(t, 10*time.Second, func() {
		for i := 0; i < 50; i++ {
			err := w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, fmt.Sprint(i), i)
				return err
			})
			require.NoError(t, err)
		}
	})
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n))
	require.Equal(t, 50, n)
}

func TestWriterIsolatesAFailingOp(t *testing.T) {
	db := openWriterDB(t)
	w := store.NewWriter(db, 64)
	defer w.Close()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
				if i == 7 {
					return errors.New("op 7 fails")
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, fmt.Sprint(i), i)
				return err
			})
		}(i)
	}
	withTimeout(t, 10*time.Second, wg.Wait)
	for i, err := range errs {
		if i == 7 {
			require.EqualError(t, err, "op 7 fails")
			continue
		}
		require.NoError(t, err, "op %d", i)
	}
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n))
	require.Equal(t, 39, n, "every op but the failing one is committed")
}

// TestWriterDetached: a detached writer runs an Op's statements even if
// the Op's context ends while it runs; an attached one stops them.
func TestWriterDetached(t *testing.T) {
	for _, detached := range []bool{true, false} {
		t.Run(fmt.Sprintf("detached=%v", detached), func(t *testing.T) {
			w := store.NewWriter(openWriterDB(t), 8)
			w.Detached = detached
			defer w.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var execErr error
			err := w.Do(ctx, func(ctx context.Context, tx store.Execer) error {
				cancel() // the caller gives up once the op has started
				_, execErr = tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ('a', 1)`)
				return execErr
			})
			if detached {
				require.NoError(t, execErr)
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, execErr, context.Canceled)
			}
		})
	}
}

func TestWriterAfterClose(t *testing.T) {
	w := store.NewWriter(openWriterDB(t), 8)
	require.NoError(t, w.Close())
	require.ErrorIs(t, w.Do(context.Background(), func(context.Context, store.Execer) error { return nil }), store.ErrClosed)
}

// TestWriterLingers checks the commit delay: an idle writer commits a
// lone op at once, and a busy one gathers the ops of concurrent writers
// into one transaction rather than one each.
func TestWriterLingers(t *testing.T) {
	t.Run("idle: at once", func(t *testing.T) {
		w := store.NewWriter(openWriterDB(t), 64)
		defer w.Close()
		w.Linger = 10 * time.Second
		withTimeout(t, 5*time.Second, func() {
			require.NoError(t, w.Do(context.Background(), func(context.Context, store.Execer) error { return nil }))
		})
	})
	t.Run("busy: gathered", func(t *testing.T) {
		w := store.NewWriter(openWriterDB(t), 64)
		defer w.Close()
		w.Linger = 100 * time.Millisecond
		const writers, rounds = 8, 5
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				for i := 0; i < rounds; i++ {
					err := w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
						_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, fmt.Sprint(g, "-", i), i)
						return err
					})
					require.NoError(t, err)
				}
			}(g)
		}
		close(start)
		withTimeout(t, 20*time.Second, wg.Wait)
		txs, ops := w.Stats()
		require.Equal(t, int64(writers*rounds), ops)
		// without the delay, each round's ops would mostly commit apart
		require.LessOrEqual(t, txs, int64(rounds+4), "%d ops in %d transactions", ops, txs)
	})
}

// TestWriterStatementCacheEvicts: a full statement cache makes room for
// a new statement by closing the one used least recently, and keeps the
// one in constant use. A cache that kept its first statements left every
// later one unprepared for the life of the process.
func TestWriterStatementCacheEvicts(t *testing.T) {
	w := store.NewWriter(openWriterDB(t), 64)
	t.Cleanup(func() { w.Close() })
	query := func(q string) {
		t.Helper()
		require.NoError(t, w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
			var n int
			return tx.QueryRowContext(ctx, q, 1).Scan(&n)
		}))
	}
	const hot = "SELECT $1 + 0 -- hot"
	for i := range 400 {
		query(hot)
		query(fmt.Sprintf("SELECT $1 + %d", i))
	}
	const late = "SELECT $1 + 1000 -- late"
	query(late)
	query(late) // prepared after its first run
	got := w.Statements()
	require.LessOrEqual(t, len(got), 256)
	require.Contains(t, got, late, "a statement met after the cache filled is cached")
	require.Contains(t, got, hot, "the statement in constant use stays")
	require.NotContains(t, got, "SELECT $1 + 0", "the oldest went")
}
