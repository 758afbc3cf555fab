package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/gob"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// AddFinishing journals, inside tx, run r, finished but not yet recorded,
// for a broker whose processes keep stores of their own and share the
// runs' ends (NATS): the run is journalled here, then marked finished for
// the others, then recorded with SaveRunTx and its entry deleted
// (DeleteFinishing) in one transaction. An entry a crash left behind
// tells the process, when it starts again, which runs it may have marked
// but not recorded (Finishing): it records those the mark names it for,
// and only those, so that each run is recorded once, by the process that
// ran it.
func (s *Store) AddFinishing(ctx context.Context, tx Execer, r *Run, now time.Time) error {
	var b bytes.Buffer
	// gob keeps every field as it is, the durations included
	if err := gob.NewEncoder(&b).Encode(r); err != nil {
		return fmt.Errorf("journal a finished run: %w", err)
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO {finishing} (run_id, run, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (run_id) DO UPDATE SET run = excluded.run, created_at = excluded.created_at`), r.ID, b.Bytes(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("journal a finished run: %w", err)
	}
	return nil
}

// DeleteFinishing removes the journal entry of run id inside tx.
func (s *Store) DeleteFinishing(ctx context.Context, tx Execer, id string) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {finishing} WHERE run_id = $1`), id); err != nil {
		return fmt.Errorf("delete a finished run's journal entry: %w", err)
	}
	return nil
}

// Finishing returns the runs journalled by AddFinishing and not deleted
// since, oldest first.
func (s *Store) Finishing(ctx context.Context) ([]*Run, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT run FROM {finishing} ORDER BY created_at`))
	if err != nil {
		return nil, fmt.Errorf("read the finished runs' journal: %w", err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("read the finished runs' journal: %w", err)
		}
		var r Run
		if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&r); err != nil {
			return nil, fmt.Errorf("read the finished runs' journal: %w", err)
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the finished runs' journal: %w", err)
	}
	return out, nil
}

// InstanceID is the id of the process that keeps this store (one of its
// own, as on NATS), the same across its restarts: made up and stored the
// first time it is asked for.
func (s *Store) InstanceID(ctx context.Context) (string, error) {
	var id string
	err := s.w().QueryRowContext(ctx, s.q(`SELECT id FROM {instance}`)).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read the instance id: %w", err)
	}
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("store the instance id: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// another caller may have stored one meanwhile: the first one stays
	if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM {instance}`)).Scan(&id); errors.Is(err, sql.ErrNoRows) {
		id = uuid.NewString()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO {instance} (id) VALUES ($1)`), id); err != nil {
			return "", fmt.Errorf("store the instance id: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("store the instance id: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("store the instance id: %w", err)
	}
	return id, nil
}
