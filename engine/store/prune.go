package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sous-run/sous/internal/sqlin"
)

// DefaultPruneBatch is how many rows of a table one transaction of Prune
// deletes at most. On SQLite the writer has a single connection, which
// intake needs for every webhook: a prune holds it for one batch (a few
// milliseconds), not for the whole backlog. Pruning 100,000 runs with
// their events and dedup keys in a statement per table held it for up to
// 1.8 s (BenchmarkPruneStall), and the first prune after a retention
// change for as long as its days of records took.
const DefaultPruneBatch = 1000

// Prune deletes records older than the retention allows and returns how
// many runs it removed. It deletes in batches, each in a transaction of
// its own, so that the writes of intake and of the runs go on meanwhile;
// a prune cut short by ctx leaves consistent records and resumes at the
// next one.
func (s *Store) Prune(ctx context.Context, now time.Time, r Retention) (int64, error) {
	batch := s.PruneBatch
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	// on PostgreSQL, processes pruning at the same time share the rows
	// rather than wait for each other's
	lock := ""
	if s.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var total int64
	for _, c := range []struct {
		statuses string
		before   time.Time
	}{
		{`'succeeded', 'filtered'`, now.Add(-r.Succeeded)},
		{`'failed', 'dead'`, now.Add(-r.Failed)},
	} {
		runs := `SELECT id FROM {runs} WHERE status IN (` + c.statuses + `) AND started_at < $1 LIMIT $2` + lock
		before := c.before.UnixMicro()
		n, err := s.pruneBatches(ctx, "runs", func(tx *sql.Tx) (int64, bool, error) {
			// the steps of the runs deleted, by id: on PostgreSQL another
			// process may save an old run between two statements
			ids, err := deletedIDs(tx.QueryContext(ctx, s.q(`DELETE FROM {runs} WHERE id IN (`+runs+`) RETURNING id`), before, batch))
			if err != nil || len(ids) == 0 {
				return 0, false, err
			}
			if err := s.deleteSteps(ctx, tx, ids); err != nil {
				return 0, false, err
			}
			return int64(len(ids)), len(ids) == batch, nil
		})
		total += n
		if err != nil {
			return total, err
		}
	}
	// a checkpoint is dropped when its run is saved, but one can stay
	// behind (a NATS retry delivered to another process finishes the run
	// there): one untouched for longer than any retry waits (at most
	// MaxCheckpointWait) and than failures are kept is stale. The table
	// holds unfinished runs only: one statement.
	if _, err := s.w().ExecContext(ctx, s.q(`DELETE FROM {checkpoints} WHERE updated_at < $1`),
		now.Add(-max(r.Failed, MaxCheckpointWait)).UnixMilli()); err != nil {
		return total, fmt.Errorf("prune checkpoints: %w", err)
	}
	if r.Dedup <= 0 {
		return total, nil
	}
	// dedup keys go with their events (each is stored with one, at the
	// same time), those of events still referenced by a kept run too.
	// Events that kept runs reference stay, for replay. They would be met
	// again by every batch taken from the oldest, so the batches are
	// windows of received_at, each of about batch events, walked once.
	from, end := int64(math.MinInt64), now.Add(-r.Dedup).UnixMicro()
	_, err := s.pruneBatches(ctx, "events", func(tx *sql.Tx) (int64, bool, error) {
		to := end
		err := tx.QueryRowContext(ctx, s.q(`SELECT received_at FROM {events} WHERE received_at >= $1 AND received_at < $2
			ORDER BY received_at LIMIT 1 OFFSET $3`), from, end, batch).Scan(&to)
		switch {
		case errors.Is(err, sql.ErrNoRows): // the last window
		case err != nil:
			return 0, false, err
		case to == from: // more than a batch received in the same microsecond
			to = from + 1
		}
		// by key and event: a key pruned with a kept event's may have been
		// claimed again since, by a newer event
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {dedup} WHERE (key, event_id) IN
			(SELECT dedup_key, id FROM {events} WHERE received_at >= $1 AND received_at < $2)`), from, to); err != nil {
			return 0, false, err
		}
		n, err := rowsAffected(tx.ExecContext(ctx, s.q(`DELETE FROM {events} WHERE received_at >= $1 AND received_at < $2
			AND NOT EXISTS (SELECT 1 FROM {runs} WHERE {runs}.event_id = {events}.id)`), from, to))
		from = to
		return n, to < end, err
	})
	return total, err
}

// pruneBatches runs del, each time in a transaction of its own, as long as
// it says there is more, and returns the rows it deleted.
func (s *Store) pruneBatches(ctx context.Context, table string, del func(tx *sql.Tx) (n int64, more bool, err error)) (int64, error) {
	var total int64
	for {
		tx, err := s.w().BeginTx(ctx, nil)
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", table, err)
		}
		n, more, err := del(tx)
		if err != nil {
			_ = tx.Rollback()
			return total, fmt.Errorf("prune %s: %w", table, err)
		}
		if err := tx.Commit(); err != nil {
			return total, fmt.Errorf("prune %s: %w", table, err)
		}
		total += n
		if s.pruned != nil {
			s.pruned(table, n)
		}
		if !more {
			return total, nil
		}
	}
}

// deletedIDs reads the ids a DELETE ... RETURNING id gives.
func deletedIDs(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// deleteSteps deletes the step rows of the runs ids, sqlin.Max ids a
// statement (SQLite takes 32,766 parameters at most).
func (s *Store) deleteSteps(ctx context.Context, tx *sql.Tx, ids []string) error {
	for chunk := range slices.Chunk(ids, sqlin.Max) {
		list, args := sqlin.List(nil, chunk)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {run_steps} WHERE run_id IN `+list), args...); err != nil {
			return err
		}
	}
	return nil
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
