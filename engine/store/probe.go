package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ProbeWrite commits a tiny write transaction of the kind intake commits:
// a dedup key and an event inserted and deleted again. Nothing is left
// and no reader sees it, but the commit goes to disk as an intake's does
// (into the WAL, on the embedded store), touching the same tables' pages:
// it fails when the disk is full or those pages are corrupt, as a
// webhook's intake would.
func (s *Store) ProbeWrite(ctx context.Context) error {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, ErrTxDone
	// unlike any event id or dedup key
	id := "readyz_" + uuid.NewString()
	now := time.Now()
	for _, st := range []struct {
		query string
		args  []any
	}{
		{`INSERT INTO {dedup} (key, event_id, created_at) VALUES ($1, $2, $3)`, []any{id, id, now.UnixMilli()}},
		{`INSERT INTO {events} (id, type, source, dedup_key, received_at, payload) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{id, "readyz.probe", "", id, now.UnixMicro(), []byte("{}")}},
		{`DELETE FROM {events} WHERE id = $1`, []any{id}},
		{`DELETE FROM {dedup} WHERE key = $1`, []any{id}},
	} {
		if _, err := tx.ExecContext(ctx, s.q(st.query), st.args...); err != nil {
			return fmt.Errorf("probe write: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("probe write: commit: %w", err)
	}
	return nil
}
