package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ProbeWrite commits a tiny write transaction of the kind intake commits:
// a dedup key and an event inserted (by ClaimDedup and InsertEvent, as
// intake inserts them) and deleted again. Nothing is left and no reader
// sees it, but the commit goes to disk as an intake's does (into the WAL,
// on the embedded store), touching the same tables' pages: it fails when
// the disk is full or those pages are corrupt, as a webhook's intake
// would.
func (s *Store) ProbeWrite(ctx context.Context) error {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, ErrTxDone
	// unlike any event id or dedup key
	id := "readyz_" + uuid.NewString()
	now := time.Now()
	if _, err := s.ClaimDedup(ctx, tx, id, id, now); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	ev := &Event{ID: id, Type: "readyz.probe", DedupKey: id, ReceivedAt: now, Payload: json.RawMessage("{}")}
	if err := s.InsertEvent(ctx, tx, ev); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	for _, q := range []string{`DELETE FROM {events} WHERE id = $1`, `DELETE FROM {dedup} WHERE key = $1`} {
		if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
			return fmt.Errorf("probe write: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("probe write: commit: %w", err)
	}
	return nil
}
